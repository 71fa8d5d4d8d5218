"""Cross-origin iframes are never stored unless the project records them.

rrweb sends a frame's document as a mutation add under the iframe element's id
(`isAttachIframe`); with `recordCrossOriginIframes` the child page's own snapshot is
turned into such an add in the parent's stream, and its later mutations follow with
ids in the parent's id space. A frame rrweb could not read carries its URL as
`rr_src` (rrweb-snapshot drops `src` by default).
"""

from __future__ import annotations

import copy
import doctest
import importlib
import json
import pkgutil
from typing import Any

import pytest

from privacy import scrub
from privacy.models import PrivacySettings
from privacy.scrub import MaskRules, ScrubReport, ScrubState, compile_rules
from privacy.scrub.iframes import is_cross_origin_frame
from recordings.models import Recording
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.capture import send_rrweb

Event = dict[str, Any]
PAGE = "https://shop.test"
T0 = 1_795_340_661_000


def el(
    node_id: int, tag: str, attributes: dict[str, Any] | None = None, *kids: Any
) -> dict[str, Any]:
    return {
        "type": 2,
        "tagName": tag,
        "attributes": attributes or {},
        "childNodes": list(kids),
        "id": node_id,
    }


def txt(node_id: int, content: str) -> dict[str, Any]:
    return {"type": 3, "textContent": content, "id": node_id}


def meta(href: str = PAGE + "/checkout") -> Event:
    return {
        "type": 4,
        "data": {"href": href, "width": 800, "height": 600},
        "timestamp": T0,
    }


def snapshot(*body: Any) -> Event:
    html = el(3, "html", {}, el(4, "head"), el(5, "body", {}, *body))
    document = {"type": 0, "childNodes": [html], "id": 1}
    return {
        "type": 2,
        "data": {"node": document, "initialOffset": {"left": 0, "top": 0}},
        "timestamp": T0 + 1,
    }


def frame_document(root_id: int, secret: str) -> dict[str, Any]:
    """A frame's document as rrweb serialises it, its ids in the parent's space."""
    body = el(root_id + 3, "body", {}, txt(root_id + 4, secret))
    html = el(root_id + 1, "html", {}, el(root_id + 2, "head"), body)
    return {"type": 0, "childNodes": [html], "id": root_id, "rootId": root_id}


def mutation(**changes: Any) -> Event:
    data: dict[str, Any] = {
        "source": 0,
        "texts": [],
        "attributes": [],
        "removes": [],
        "adds": [],
    }
    data.update(changes)
    return {"type": 3, "data": data, "timestamp": T0 + 10}


def attach(frame_id: int, document: dict[str, Any]) -> Event:
    add = {"parentId": frame_id, "nextId": None, "node": document}
    return mutation(adds=[add], isAttachIframe=True)


def interaction(source: int, node_id: int, **extra: Any) -> Event:
    return {
        "type": 3,
        "data": {"source": source, "id": node_id, **extra},
        "timestamp": T0 + 20,
    }


def run(
    events: list[Event], rules: MaskRules | None = None, state: ScrubState | None = None
) -> tuple[list[Event], ScrubReport]:
    return scrub.scrub_events(
        events, compile_rules(rules or MaskRules()), state or ScrubState()
    )


def dumped(events: list[Event]) -> str:
    return json.dumps(events)


# --- which frames are cross-origin -------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "page", "foreign"),
    [
        ({"rr_src": "https://pay.test/card"}, PAGE, True),
        ({"src": "https://pay.test/card"}, PAGE, True),
        ({"src": "https://shop.test/help"}, PAGE, False),
        ({"src": "HTTPS://Shop.Test:443/help"}, PAGE, False),
        ({"src": "http://shop.test/help"}, PAGE, True),  # another scheme
        ({"src": "https://shop.test:8443/"}, PAGE, True),  # another port
        ({"src": "https://help.shop.test/"}, PAGE, True),  # a subdomain is foreign
        ({"src": "/help?q=1"}, PAGE, False),  # relative: the page's origin
        ({"src": "//pay.test/card"}, PAGE, True),  # scheme-relative
        ({}, PAGE, False),  # about:blank, filled by the page itself
        ({"src": "about:blank"}, PAGE, False),
        ({"src": "javascript:void(0)"}, PAGE, False),
        ({"srcdoc": "<p>hi</p>", "src": "https://pay.test/"}, PAGE, False),
        ({"src": "data:text/html,<p>hi</p>"}, PAGE, True),  # opaque origin
        ({"src": "blob:https://shop.test/0f3c"}, PAGE, False),
        ({"src": "blob:https://pay.test/0f3c"}, PAGE, True),
        ({"src": "/help", "sandbox": ""}, PAGE, True),  # sandboxed: opaque origin
        ({"src": "/help", "sandbox": "allow-scripts"}, PAGE, True),
        ({"src": "/help", "sandbox": "allow-scripts allow-same-origin"}, PAGE, False),
        ({"src": "https://[::1"}, PAGE, True),  # unparsable: fail closed
        ({"src": "https://shop.test/help"}, "", True),  # page unknown: fail closed
        ({}, "", False),
        ({"src": "http://[::1]:8080/x"}, "http://[::1]:8080", False),
    ],
)
def test_it_tells_cross_origin_frames(
    attributes: dict[str, Any], page: str, foreign: bool
) -> None:
    assert is_cross_origin_frame(attributes, page) is foreign


@pytest.mark.parametrize(
    ("href", "origin"),
    [
        ("https://shop.test/checkout?card=1", "https://shop.test"),
        ("http://shop.test:80/", "http://shop.test"),
        ("http://shop.test:8765/index.html", "http://shop.test:8765"),
        ("not a url", ""),
        ("", ""),
    ],
)
def test_the_page_origin_comes_from_the_meta_event(href: str, origin: str) -> None:
    state = ScrubState()
    run([meta(href)], state=state)
    assert state.page_origin == origin


# --- what is kept ------------------------------------------------------------------

FOREIGN = {"rr_src": "https://pay.test/card", "width": "300"}


def test_a_cross_origin_frames_document_is_not_kept() -> None:
    events = [
        meta(),
        snapshot(el(10, "iframe", dict(FOREIGN))),
        attach(10, frame_document(100, "Card holder JANE")),
    ]
    out, report = run(events)
    assert "JANE" not in dumped(out)
    assert len(out) == 2  # the attach mutation had nothing else: dropped
    frame = out[1]["data"]["node"]["childNodes"][0]["childNodes"][1]["childNodes"][0]
    assert frame["tagName"] == "iframe"
    assert frame["attributes"] == FOREIGN  # the element stays, a hole in the page
    assert frame["childNodes"] == []
    assert report.frames_dropped == 1


def test_a_frame_document_inside_the_snapshot_is_cut_too() -> None:
    frame = el(10, "iframe", dict(FOREIGN), frame_document(100, "JANE"))
    out, report = run([meta(), snapshot(frame)])
    assert "JANE" not in dumped(out)
    assert report.frames_dropped == 1


def test_a_same_origin_frame_is_recorded_and_scrubbed_like_the_page() -> None:
    card = "4242 4242 4242 4242"
    events = [
        meta(),
        snapshot(el(10, "iframe", {})),
        attach(10, frame_document(100, f"Help centre, card {card}")),
    ]
    out, report = run(events)
    assert "Help centre" in dumped(out)
    assert card not in dumped(out)
    assert report.frames_dropped == 0


def test_a_project_may_record_cross_origin_frames() -> None:
    events = [
        meta(),
        snapshot(el(10, "iframe", dict(FOREIGN))),
        attach(10, frame_document(100, "JANE")),
    ]
    out, report = run(events, MaskRules(record_cross_origin_iframes=True))
    assert "JANE" in dumped(out)
    assert report.frames_dropped == 0


def test_later_events_inside_the_frame_are_dropped_across_batches() -> None:
    state = ScrubState()
    run(
        [
            meta(),
            snapshot(el(10, "iframe", dict(FOREIGN))),
            attach(10, frame_document(100, "x")),
        ],
        state=state,
    )
    # The state goes through the database as JSON between batches.
    state = ScrubState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert state.page_origin == PAGE
    later = [
        mutation(adds=[{"parentId": 103, "nextId": None, "node": txt(150, "JANE 2")}]),
        mutation(texts=[{"id": 104, "value": "JANE 3"}]),
        mutation(attributes=[{"id": 103, "attributes": {"title": "JANE 4"}}]),
        mutation(removes=[{"parentId": 10, "id": 100}]),
        interaction(5, 150, text="JANE 5", isChecked=False),  # typed into the frame
        interaction(2, 104, type=2, x=1, y=1),  # a click in the frame
        interaction(3, 100, x=0, y=40),  # the frame's document scrolled
        {
            "type": 3,
            "data": {
                "source": 1,
                "positions": [{"x": 5, "y": 5, "id": 104, "timeOffset": 0}],
            },
            "timestamp": T0 + 30,
        },
    ]
    out, _ = run(later, state=state)
    assert "JANE" not in dumped(out)
    assert [e["data"]["source"] for e in out] == [1]  # only the mouse position


def test_the_page_around_the_frame_still_records() -> None:
    state = ScrubState()
    run([meta(), snapshot(el(10, "iframe", dict(FOREIGN)), el(11, "p"))], state=state)
    add = {"parentId": 11, "nextId": None, "node": txt(20, "Order placed")}
    out, _ = run(
        [
            mutation(adds=[add]),
            mutation(attributes=[{"id": 10, "attributes": {"width": "400"}}]),
            mutation(removes=[{"parentId": 5, "id": 10}]),  # the frame itself goes
        ],
        state=state,
    )
    assert len(out) == 3
    assert "Order placed" in dumped(out)


def test_a_frame_added_later_is_judged_by_its_own_url() -> None:
    state = ScrubState()
    run([meta(), snapshot()], state=state)
    added = [
        # The frame's document listed before the frame: adds are not ordered.
        {"parentId": 30, "nextId": None, "node": frame_document(300, "JANE")},
        {
            "parentId": 5,
            "nextId": None,
            "node": el(30, "iframe", {"src": "https://pay.test/"}),
        },
        {"parentId": 5, "nextId": None, "node": el(31, "iframe", {"src": "/help"})},
        {"parentId": 31, "nextId": None, "node": frame_document(400, "Help centre")},
    ]
    out, report = run([mutation(adds=added)], state=state)
    assert "JANE" not in dumped(out)
    assert "Help centre" in dumped(out)
    assert report.frames_dropped == 1


def test_a_frame_navigating_to_another_origin_is_not_kept_from_then_on() -> None:
    state = ScrubState()
    run([meta(), snapshot(el(10, "iframe", {"src": "/help"}))], state=state)
    navigated = mutation(
        attributes=[{"id": 10, "attributes": {"rr_src": "https://pay.test/card"}}]
    )
    out, _ = run([navigated, attach(10, frame_document(100, "JANE"))], state=state)
    assert "JANE" not in dumped(out)
    assert len(out) == 1  # the src change itself is kept
    # ...and a change back does not let it in before the next snapshot.
    back = mutation(attributes=[{"id": 10, "attributes": {"rr_src": "/help"}}])
    out, _ = run([back, attach(10, frame_document(200, "JANE"))], state=state)
    assert "JANE" not in dumped(out)


def test_the_page_origin_follows_navigation() -> None:
    pay_frame = el(10, "iframe", {"rr_src": "https://pay.test/card"})
    out, _ = run(
        [
            meta("https://pay.test/checkout"),
            snapshot(pay_frame),
            attach(10, frame_document(100, "Pay form")),
        ]
    )
    assert "Pay form" in dumped(out)  # the frame is same-origin on pay.test


def test_a_page_of_unknown_origin_keeps_no_frame_with_a_url() -> None:
    # No Meta seen for this window (a state lost, a client that sent none).
    out, _ = run(
        [
            snapshot(el(10, "iframe", {"src": "https://shop.test/help"})),
            attach(10, frame_document(100, "JANE")),
        ]
    )
    assert "JANE" not in dumped(out)


def test_a_full_snapshot_forgets_frames_but_not_the_page_origin() -> None:
    state = ScrubState()
    run([meta(), snapshot(el(10, "iframe", dict(FOREIGN)))], state=state)
    assert state.foreign_frames == {10}
    # rrweb numbers nodes again: id 10 is now a plain paragraph.
    out, _ = run(
        [
            snapshot(el(10, "p")),
            mutation(adds=[{"parentId": 10, "nextId": None, "node": txt(20, "Hi")}]),
        ],
        state=state,
    )
    assert "Hi" in dumped(out)
    assert state.page_origin == PAGE


def test_a_state_saved_before_frames_were_tracked_still_loads() -> None:
    old = {
        "blocked": [7],
        "masked": [],
        "unmasked": [],
        "styles": [],
        "saturated": False,
    }
    state = ScrubState.from_dict(old)
    assert (state.page_origin, state.frames, state.foreign_frames) == ("", set(), set())
    assert state.blocked == {7}
    junk = ScrubState.from_dict({"page_origin": 42, "foreign_frames": "x"})
    assert (junk.page_origin, junk.foreign_frames) == ("", set())


def test_the_input_events_are_not_changed_when_no_frame_is_involved() -> None:
    events = [meta(), snapshot(el(10, "p", {}, txt(11, "Hello")))]
    out, report = run(copy.deepcopy(events))
    assert out == events
    assert report.frames_dropped == 0


# --- through capture ---------------------------------------------------------------


class CrossOriginFrameIngestTests(ReplayTestCase):
    def send(self, batch_id: str, events: list[Event]) -> None:
        send_rrweb(self.client, self.project.token, batch_id, events)

    def record_checkout(self) -> str:
        page = snapshot(el(10, "iframe", dict(FOREIGN)), el(11, "iframe", {}))
        self.send("1", [meta(), page, attach(11, frame_document(200, "Help centre"))])
        self.send("2", [attach(10, frame_document(100, "Card holder JANE"))])
        grown = {"parentId": 103, "nextId": None, "node": txt(150, "JANE again")}
        self.send("3", [mutation(adds=[grown])])
        recording = Recording.objects.get()
        return dumped(recording_events(recording=recording))

    def test_it_stores_no_cross_origin_frame_whatever_the_client_sent(self) -> None:
        stored = self.record_checkout()
        self.assertNotIn("JANE", stored)
        self.assertIn("Help centre", stored)
        self.assertIn("https://pay.test/card", stored)  # the frame element stays
        self.assertNotIn("JANE", str(self.stored_events()))

    def test_it_stores_them_when_the_project_records_cross_origin_frames(self) -> None:
        PrivacySettings.objects.create(
            project=self.project, record_cross_origin_iframes=True
        )
        self.assertIn("JANE again", self.record_checkout())


def test_the_doctests_hold() -> None:
    modules = [scrub] + [
        importlib.import_module(f"{scrub.__name__}.{module.name}")
        for module in pkgutil.iter_modules(scrub.__path__)
    ]
    results = [doctest.testmod(module) for module in modules]
    assert sum(result.failed for result in results) == 0
    # luhn_valid, url_origin and is_cross_origin_frame have examples.
    assert sum(result.attempted for result in results) >= 6
