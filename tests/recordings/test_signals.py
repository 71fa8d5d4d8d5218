"""What happened in a recording: markers and counts from rrweb events (pure)."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from recordings.ingest import events as analytics_parse
from recordings.ingest.frustration import (
    DEAD_CLICK_WAIT_MS,
    RAGE_CLICK_GAP_MS,
    THRASH_SPAN_MS,
)
from recordings.ingest.parse import decode_body
from recordings.ingest.signal_scan import (
    ERROR_CLICK_MS,
    SDK_MATCH_MS,
    U_TURN_MS,
    AnalyticsEvent,
    Kind,
    Marker,
    Signals,
    signals_of,
)
from tests.capture import full_session, posthog_dir, session_events
from tests.fixtures import fixtures_dir

T0 = 1_800_000_000_000
W = "window-1"
# The page of every hand-made window: a button (10) with a label span (11) and
# text (12), a text input (20), a link (30) and a plain div (40).
BUTTON, SPAN, INPUT, LINK, DIV = 10, 11, 20, 30, 40


def element(
    node_id: int, tag: str, children: list[Any] | None = None, **attrs: str
) -> dict[str, Any]:
    return {
        "type": 2,
        "id": node_id,
        "tagName": tag,
        "attributes": attrs,
        "childNodes": children or [],
    }


def text(node_id: int, value: str) -> dict[str, Any]:
    return {"type": 3, "id": node_id, "textContent": value}


def page(ts: int = T0, href: str = "https://shop.test/") -> list[dict[str, Any]]:
    """Meta + FullSnapshot of the test page."""
    span = element(SPAN, "span", [text(12, "Pay now")])
    body = element(
        2,
        "body",
        [
            element(BUTTON, "button", [span], id="pay", **{"class": "btn primary"}),
            element(INPUT, "input", type="text"),
            element(LINK, "a", [text(31, "Home")], href="/"),
            element(DIV, "div", [text(41, "Just text")]),
        ],
    )
    node = {"type": 0, "id": 1, "childNodes": [body]}
    return [
        {
            "type": 4,
            "timestamp": ts,
            "data": {"href": href, "width": 1280, "height": 800},
        },
        {"type": 2, "timestamp": ts, "data": {"node": node}},
    ]


def incremental(ts: int, source: int, **data: Any) -> dict[str, Any]:
    return {"type": 3, "timestamp": ts, "data": {"source": source, **data}}


def click(
    ts: int, node_id: int = BUTTON, x: float = 100, y: float = 100
) -> dict[str, Any]:
    return incremental(ts, 2, type=2, id=node_id, x=x, y=y)


def move(ts: int, x: float = 5, y: float = 5) -> dict[str, Any]:
    return incremental(ts, 1, positions=[{"x": x, "y": y, "id": 1, "timeOffset": 0}])


def mutation(ts: int, **changes: Any) -> dict[str, Any]:
    data = {"adds": [], "removes": [], "texts": [], "attributes": []} | changes
    return incremental(ts, 0, **data)


def custom(ts: int, tag: str, payload: Any = None) -> dict[str, Any]:
    return {"type": 5, "timestamp": ts, "data": {"tag": tag, "payload": payload or {}}}


def console(ts: int, level: str, *args: str) -> dict[str, Any]:
    payload = {"level": level, "trace": [], "payload": [json.dumps(a) for a in args]}
    return {
        "type": 6,
        "timestamp": ts,
        "data": {"plugin": "rrweb/console@1", "payload": payload},
    }


def network(ts: int, *requests: dict[str, Any]) -> dict[str, Any]:
    payload = {"requests": list(requests)}
    return {
        "type": 6,
        "timestamp": ts,
        "data": {"plugin": "rrweb/network@1", "payload": payload},
    }


def request(
    url: str, status: int, method: str | None = "GET", **more: Any
) -> dict[str, Any]:
    entry = {"name": url, "method": method, "responseStatus": status}
    return entry | {"initiatorType": "fetch", "startTime": 10, "endTime": 30} | more


def analytics(
    name: str, ts: int, props: dict[str, Any] | None = None, window_id: str = W
) -> AnalyticsEvent:
    return AnalyticsEvent(
        name, ts, window_id, {"$window_id": window_id, **(props or {})}
    )


def one_window(*events: dict[str, Any], **kwargs: Any) -> Signals:
    return signals_of({W: [*page(), *events]}, **kwargs)


def stamps(signals: Signals, kind: str) -> list[int]:
    return [m.timestamp_ms - T0 for m in signals.markers if m.kind == kind]


def only(signals: Signals, kind: str) -> Marker:
    (marker,) = [m for m in signals.markers if m.kind == kind]
    return marker


# -- rage clicks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clicks", "expected"),
    [
        pytest.param([(0, BUTTON, 100, 100)] * 1, [], id="one click"),
        pytest.param([(t, BUTTON, 100, 100) for t in (0, 300)], [], id="two clicks"),
        pytest.param([(t, BUTTON, 100, 100) for t in (0, 300, 600)], [0], id="three"),
        pytest.param(
            [(t, BUTTON, 100, 100) for t in (0, 900, 1800)], [0], id="each within 1 s"
        ),
        pytest.param(
            [(t, BUTTON, 100, 100) for t in (0, RAGE_CLICK_GAP_MS, 2000)],
            [],
            id="a full second between clicks",
        ),
        pytest.param(
            [(0, BUTTON, 100, 100), (300, DIV, 110, 115), (600, LINK, 105, 105)],
            [0],
            id="different elements within 30 px",
        ),
        pytest.param(
            [(0, DIV, 100, 100), (300, LINK, 130, 100), (600, DIV, 100, 100)],
            [],
            id="different elements 30 px apart",
        ),
        pytest.param(
            [(t, BUTTON, 100 + t, 100) for t in (0, 300, 600)],
            [0],
            id="same element, pointer moving",
        ),
        pytest.param(
            [(t, BUTTON, 100, 100) for t in (0, 200, 400, 3000, 3200, 3400)],
            [0, 3000],
            id="two bursts",
        ),
    ],
)
def test_it_finds_rage_clicks(
    clicks: list[tuple[int, int, int, int]], expected: list[int]
) -> None:
    events = [click(T0 + t, node, x, y) for t, node, x, y in clicks]
    signals = one_window(*events, move(T0 + 20_000))
    assert stamps(signals, Kind.RAGE_CLICK) == expected
    assert signals.rage_click_count == len(expected)


def test_it_describes_a_rage_click_at_its_first_click() -> None:
    events = [click(T0 + t, SPAN) for t in (100, 400, 700, 1000, 1300)]
    marker = only(one_window(*events), Kind.RAGE_CLICK)
    assert marker.timestamp_ms == T0 + 100
    assert marker.window_id == W
    assert marker.details["clicks"] == 5
    assert marker.details["element"] == {
        "node_id": SPAN,
        "tag": "span",
        "id": "",
        "classes": [],
        "text": "Pay now",
    }
    assert marker.label == 'Rage click (5×) on span "Pay now"'


# -- dead clicks ------------------------------------------------------------------

LATER = DEAD_CLICK_WAIT_MS + 500  # an event after the wait: the click can be judged


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([click(1000), move(1000 + LATER)], [1000], id="nothing happens"),
        pytest.param(
            [click(1000), mutation(2000, texts=[{"id": 12, "value": "Paid"}])],
            [],
            id="the page changes",
        ),
        pytest.param(
            [click(1000), mutation(1000 + DEAD_CLICK_WAIT_MS + 100, texts=[])],
            [1000],
            id="the page changes too late",
        ),
        pytest.param([click(1000), move(2000)], [], id="the window ends: no verdict"),
        pytest.param(
            [click(1000), incremental(1100, 3, id=1, x=0, y=400), move(1000 + LATER)],
            [],
            id="it scrolls",
        ),
        pytest.param(
            [click(1000), incremental(1100, 14, ranges=[]), move(1000 + LATER)],
            [],
            id="it selects",
        ),
        pytest.param(
            [click(1000), *page(1500, "https://shop.test/next"), move(1000 + LATER)],
            [],
            id="it navigates",
        ),
        pytest.param(
            [
                click(1000),
                custom(1500, "$pageview", {"href": "https://shop.test/spa"}),
                move(1000 + LATER),
            ],
            [],
            id="an SPA navigation",
        ),
        pytest.param(
            [click(1000), custom(1200, "window hidden"), move(1000 + LATER)],
            [],
            id="it opens a tab",
        ),
        pytest.param(
            [click(1000, SPAN), move(1000 + LATER)], [1000], id="inside a button"
        ),
        pytest.param([click(1000, LINK), move(1000 + LATER)], [1000], id="a link"),
        pytest.param(
            [click(1000, INPUT), move(1000 + LATER)], [], id="a text field: focus"
        ),
        pytest.param([click(1000, DIV), move(1000 + LATER)], [], id="not a control"),
        pytest.param(
            [click(1000), click(1300), move(1000 + LATER)], [1000], id="double click"
        ),
        pytest.param(
            [*(click(t) for t in (1000, 1300, 1600)), move(1000 + LATER)],
            [],
            id="a rage click is not also dead",
        ),
        pytest.param(
            [click(1000), move(1000 + LATER), click(9000), move(9000 + LATER)],
            [1000, 9000],
            id="two",
        ),
    ],
)
def test_it_finds_dead_clicks(
    events: list[dict[str, Any]], expected: list[int]
) -> None:
    for event in events:
        event["timestamp"] += T0
    signals = one_window(*events)
    assert stamps(signals, Kind.DEAD_CLICK) == expected
    assert signals.dead_click_count == len(expected)


def test_it_names_the_control_of_a_dead_click() -> None:
    marker = only(one_window(click(T0 + 5, SPAN), move(T0 + LATER)), Kind.DEAD_CLICK)
    assert marker.details["element"] == {
        "node_id": BUTTON,
        "tag": "button",
        "id": "pay",
        "classes": ["btn", "primary"],
        "text": "",
    }
    assert marker.label == "Dead click on button#pay"


def test_it_follows_the_page_through_mutations() -> None:
    added = element(50, "button", [text(51, "Retry")], id="retry")
    events = [
        mutation(T0 + 10, adds=[{"parentId": 2, "nextId": None, "node": added}]),
        mutation(T0 + 20, texts=[{"id": 51, "value": "Try again"}]),
        mutation(T0 + 30, attributes=[{"id": 50, "attributes": {"class": "big"}}]),
        click(T0 + 100, 50),
        move(T0 + 100 + LATER),
        mutation(T0 + 4000, removes=[{"parentId": 2, "id": BUTTON}]),
        click(T0 + 5000, SPAN),  # removed with its button: unknown now
        move(T0 + 5000 + LATER),
    ]
    markers = [m for m in one_window(*events).markers if m.kind == Kind.DEAD_CLICK]
    assert [m.details["element"] for m in markers] == [
        {
            "node_id": 50,
            "tag": "button",
            "id": "retry",
            "classes": ["big"],
            "text": "Try again",
        }
    ]


# -- mouse thrashing --------------------------------------------------------------


def shake(
    start: int, legs: int, leg_ms: int, left: int = 100, right: int = 400
) -> Iterator[dict[str, Any]]:
    """A move event per leg end, alternating between `left` and `right`."""
    for leg in range(legs + 1):
        x = left if leg % 2 == 0 else right
        yield incremental(
            start + leg * leg_ms,
            1,
            positions=[{"x": x, "y": 300, "id": 2, "timeOffset": 0}],
        )


@pytest.mark.parametrize(
    ("moves", "expected"),
    [
        pytest.param(list(shake(1000, 6, 150)), [1300], id="shaking"),
        pytest.param(list(shake(1000, 6, 150, 100, 140)), [], id="jitter"),
        pytest.param(list(shake(1000, 6, 600)), [], id="slow back and forth"),
        pytest.param(list(shake(1000, 3, 150)), [], id="too few turns"),
        pytest.param(list(shake(1000, 12, 150)), [1300], id="one long episode"),
        pytest.param(
            [
                *shake(1000, 6, 150),
                *shake(1000 + 6 * 150 + THRASH_SPAN_MS + 500, 6, 150),
            ],
            [1300, 3550],
            id="two episodes",
        ),
    ],
)
def test_it_finds_mouse_thrashing(
    moves: list[dict[str, Any]], expected: list[int]
) -> None:
    for event in moves:
        event["timestamp"] += T0
    signals = one_window(*moves)
    assert stamps(signals, Kind.MOUSE_THRASH) == expected
    assert signals.mouse_thrash_count == len(expected)


def test_it_reads_positions_at_their_time_offsets() -> None:
    positions = [
        {"x": 100 if i % 2 == 0 else 400, "y": 10, "id": 2, "timeOffset": -450 + i * 75}
        for i in range(7)
    ]
    signals = one_window(incremental(T0 + 2000, 1, positions=positions))
    # The first turn is at the third position: 2000 - 450 + 2 * 75.
    assert stamps(signals, Kind.MOUSE_THRASH) == [1700]


# -- U-turns ----------------------------------------------------------------------

A, B, C = "https://shop.test/a", "https://shop.test/b", "https://shop.test/c"


def meta(ts: int, href: str) -> dict[str, Any]:
    return {"type": 4, "timestamp": T0 + ts, "data": {"href": href}}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([meta(0, A), meta(1000, B), meta(3000, A)], [3000], id="full"),
        pytest.param(
            [meta(0, A), meta(1000, B), meta(1000 + U_TURN_MS, A)], [], id="B was read"
        ),
        pytest.param([meta(0, A), meta(1000, B), meta(3000, C)], [], id="onwards"),
        pytest.param(
            [
                meta(0, A),
                custom(1000, "$url_changed", {"href": B}),
                custom(2000, "$pageview", {"href": A}),
            ],
            [2000],
            id="SPA",
        ),
        pytest.param(
            [meta(0, A), meta(1000, B), meta(1500, B), meta(3000, A)],
            [3000],
            id="B re-snapshotted",
        ),
    ],
)
def test_it_finds_u_turns(events: list[dict[str, Any]], expected: list[int]) -> None:
    for event in events:
        if event["type"] == 5:
            event["timestamp"] += T0
    signals = signals_of({W: events})
    assert stamps(signals, Kind.U_TURN) == expected
    assert signals.u_turn_count == len(expected)


def test_it_finds_u_turns_in_analytics_pageviews() -> None:
    views = [
        analytics("$pageview", T0 + t, {"$current_url": u})
        for t, u in [(1000, B), (2500, A)]
    ]
    signals = signals_of({W: [meta(0, A), move(T0 + 3000)]}, views)
    marker = only(signals, Kind.U_TURN)
    assert marker.timestamp_ms == T0 + 2500
    assert marker.details == {"url": B, "back_to": A, "shown_ms": 1500}


def test_it_keeps_each_windows_pages_apart() -> None:
    signals = signals_of({"w1": [meta(0, A), meta(3000, A)], "w2": [meta(1000, B)]})
    assert signals.u_turn_count == 0
    assert [(p.url, p.window_id) for p in signals.pages] == [(A, "w1"), (B, "w2")]
    assert (signals.page_count, signals.first_url, signals.last_url) == (2, A, B)
    assert signals.window_count == 2


# -- error clicks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(console(T0 + 1500, "error", "boom"), [1000], id="console error"),
        pytest.param(
            console(T0 + 1000 + ERROR_CLICK_MS + 1, "error", "boom"), [], id="too late"
        ),
        pytest.param(console(T0 + 900, "error", "boom"), [], id="before the click"),
        pytest.param(console(T0 + 1500, "warn", "hm"), [], id="a warning"),
        pytest.param(
            network(T0 + 1500, request("https://api.test/pay", 500, "POST")),
            [1000],
            id="a 500",
        ),
        pytest.param(
            network(T0 + 1500, request("https://api.test/pay", 0, "POST")),
            [1000],
            id="no response",
        ),
        pytest.param(
            network(T0 + 1500, request("https://cdn.test/a.js", 0, None)),
            [],
            id="status 0 of resource timing",
        ),
    ],
)
def test_it_finds_error_clicks(error: dict[str, Any], expected: list[int]) -> None:
    signals = one_window(click(T0 + 1000, DIV), error)
    assert stamps(signals, Kind.ERROR_CLICK) == expected
    assert signals.error_click_count == len(expected)


def test_it_blames_an_exception_on_the_click_before_it() -> None:
    exception = analytics(
        "$exception",
        T0 + 1200,
        {"$exception_list": [{"type": "TypeError", "value": "x is undefined"}]},
    )
    signals = one_window(click(T0 + 1000, SPAN), move(T0 + 1100), analytics=[exception])
    marker = only(signals, Kind.ERROR_CLICK)
    assert marker.timestamp_ms == T0 + 1000
    assert (
        marker.label == 'Error after click on span "Pay now": TypeError: x is undefined'
    )
    assert only(signals, Kind.EXCEPTION).label == "TypeError: x is undefined"


# -- activity, console, network, custom events ------------------------------------


def test_it_measures_active_time_as_posthog_does() -> None:
    events = [
        move(T0 + 1000),
        move(T0 + 4000),
        mutation(T0 + 8000),  # within 5 s of the last input: still active
        mutation(T0 + 15_000),  # a new, inactive stretch
        click(T0 + 30_000, DIV),
        mutation(T0 + 40_000),
    ]
    signals = signals_of({W: [meta(0, A), *events]})
    assert signals.active_ms == (8000 - 1000) + 1
    assert signals.inactive_ms == 40_000 - signals.active_ms
    assert signals.duration_ms == 40_000


def test_it_counts_overlapping_windows_once() -> None:
    signals = signals_of(
        {"w1": [move(T0), move(T0 + 2000)], "w2": [move(T0 + 1000), move(T0 + 3000)]}
    )
    assert signals.active_ms == 3000


def test_it_counts_user_input() -> None:
    events = [
        move(T0 + 1),
        click(T0 + 2, DIV),
        incremental(T0 + 3, 2, type=1, id=DIV),
        incremental(T0 + 4, 3, id=1, x=0, y=10),
        incremental(T0 + 5, 5, text="a", isChecked=False, id=INPUT),
        incremental(T0 + 6, 5, text="ab", isChecked=False, id=INPUT),
        incremental(T0 + 7, 6, positions=[]),
    ]
    signals = one_window(*events)
    assert (signals.mouse_activity_count, signals.click_count) == (4, 1)
    assert (signals.scroll_count, signals.keypress_count) == (1, 2)


def test_it_counts_console_calls() -> None:
    events = [
        console(T0 + 1, "log", "a"),
        console(T0 + 2, "info", "b"),
        console(T0 + 3, "debug", "c"),
        console(T0 + 4, "warn", "d"),
        console(T0 + 5, "error", "Uncaught TypeError: x", "{}"),
        console(T0 + 6, "table", "ignored"),
    ]
    signals = one_window(*events)
    counts = signals.console_log_count, signals.console_warn_count
    assert counts + (signals.console_error_count,) == (3, 1, 1)
    marker = only(signals, Kind.CONSOLE_ERROR)
    assert (marker.timestamp_ms, marker.label) == (T0 + 5, "Uncaught TypeError: x {}")


def test_it_counts_network_requests() -> None:
    events = [
        network(
            T0 + 10,
            request(
                "https://shop.test/",
                200,
                None,
                initiatorType="navigation",
                duration=900,
            ),
            request("https://api.test/slow", 200, startTime=0, endTime=750),
            request("https://api.test/missing", 404, timestamp=T0 + 5),
        ),
        network(T0 + 20, request("https://api.test/pay?x=1", 503, "post", duration=40)),
    ]
    signals = one_window(*events)
    assert signals.network_request_count == 4
    assert (signals.network_4xx_count, signals.network_5xx_count) == (1, 1)
    assert signals.slowest_request_ms == 750
    assert signals.slowest_request_url == "https://api.test/slow"
    markers = [m for m in signals.markers if m.kind == Kind.NETWORK_ERROR]
    assert [(m.timestamp_ms - T0, m.label) for m in markers] == [
        (5, "GET /missing 404"),
        (20, "POST /pay 503"),
    ]
    assert markers[1].details == {
        "url": "https://api.test/pay?x=1",
        "method": "POST",
        "status": 503,
        "duration_ms": 20,
    }


def test_it_marks_custom_events_but_not_posthogs_own() -> None:
    events = [
        custom(T0 + 1, "$recording_started", {"reason": "x"}),
        custom(T0 + 2, "sessionIdle"),
        custom(T0 + 3, "checkout started", {"cart": 3}),
    ]
    sent = [analytics("signed_up", T0 + 4), analytics("$autocapture", T0 + 5)]
    signals = one_window(*events, analytics=sent)
    markers = [m for m in signals.markers if m.kind == Kind.CUSTOM_EVENT]
    assert [(m.timestamp_ms - T0, m.label) for m in markers] == [
        (3, "checkout started"),
        (4, "signed_up"),
    ]


# -- posthog-js's own reports ------------------------------------------------------


def rage_burst() -> list[dict[str, Any]]:
    return [click(T0 + t) for t in (1000, 1200, 1400)] + [move(T0 + 9000)]


@pytest.mark.parametrize(
    ("sent", "rage", "dead", "sources"),
    [
        pytest.param([], [1000], [], ["replay"], id="ours alone"),
        pytest.param(
            [analytics("$rageclick", T0 + 1400)], [1000], [], ["both"], id="same burst"
        ),
        pytest.param(
            [analytics("$rageclick", T0 + 1400 + SDK_MATCH_MS + 1)],
            [1000, 3401],
            [],
            ["replay", "posthog-js"],
            id="another burst",
        ),
        pytest.param(
            [analytics("$rageclick", T0 + 1400, window_id="other-window")],
            [1000],
            [],
            ["both"],
            id="unknown window: placed by time",
        ),
        pytest.param(
            [
                analytics(
                    "$dead_click",
                    T0 + 3600,
                    {"$dead_click_event_timestamp": T0 + 1000},
                )
            ],
            [1000],
            [],
            ["both"],
            id="posthog-js's dead first click of the burst",
        ),
        pytest.param(
            [
                analytics(
                    "$dead_click",
                    T0 + 8000,
                    {"$dead_click_event_timestamp": T0 + 6000},
                )
            ],
            [1000],
            [6000],
            ["replay", "posthog-js"],
            id="a dead click we did not see",
        ),
    ],
)
def test_it_merges_posthogs_rage_and_dead_clicks(
    sent: list[AnalyticsEvent], rage: list[int], dead: list[int], sources: list[str]
) -> None:
    signals = one_window(*rage_burst(), analytics=sent)
    assert stamps(signals, Kind.RAGE_CLICK) == rage
    assert stamps(signals, Kind.DEAD_CLICK) == dead
    clicks = (Kind.RAGE_CLICK, Kind.DEAD_CLICK)
    assert [m.details["source"] for m in signals.markers if m.kind in clicks] == sources
    assert (signals.rage_click_count, signals.dead_click_count) == (
        len(rage),
        len(dead),
    )


def test_it_merges_a_dead_click_posthog_also_saw() -> None:
    sent = [
        analytics("$dead_click", T0 + 4000, {"$dead_click_event_timestamp": T0 + 1003})
    ]
    signals = one_window(click(T0 + 1000), move(T0 + 1000 + LATER), analytics=sent)
    assert [
        m.details["source"] for m in signals.markers if m.kind == Kind.DEAD_CLICK
    ] == ["both"]


def test_it_takes_the_element_of_a_report_from_posthog() -> None:
    elements = [
        {"tag_name": "button", "attr__id": "go", "attr__class": "a b", "$el_text": "Go"}
    ]
    sent = [analytics("$rageclick", T0 + 500, {"$elements": elements})]
    marker = only(signals_of({W: [move(T0)]}, sent), Kind.RAGE_CLICK)
    assert marker.details["element"] == {
        "node_id": None,
        "tag": "button",
        "id": "go",
        "classes": ["a", "b"],
        "text": "Go",
    }


# -- odd input --------------------------------------------------------------------


ODD_EVENTS: list[Any] = [
    None,
    "text",
    42,
    {},
    {"type": 3},
    {"type": 3, "timestamp": "soon", "data": {"source": 2}},
    {"type": 3, "timestamp": T0, "data": None},
    {"type": 3, "timestamp": T0, "data": {"source": 99}},
    {"type": 3, "timestamp": T0, "data": {"source": 2, "type": 2, "id": "x", "x": "1"}},
    {"type": 3, "timestamp": T0, "data": {"source": 1, "positions": [None, {"x": 1}]}},
    {"type": 3, "timestamp": T0, "data": {"source": 1, "positions": {"x": 1}}},
    {
        "type": 3,
        "timestamp": T0,
        "data": {"source": 0, "adds": [{"node": None}], "removes": 3},
    },
    {"type": 3, "timestamp": T0, "data": {"source": 0, "texts": [{"id": True}]}},
    {
        "type": 3,
        "timestamp": T0,
        "data": {"source": 0, "attributes": [{"id": 1, "attributes": []}]},
    },
    {"type": 2, "timestamp": T0, "data": {"node": "not a node"}},
    {
        "type": 2,
        "timestamp": T0,
        "data": {"node": {"type": 2, "id": 5, "childNodes": [7]}},
    },
    {"type": 4, "timestamp": T0, "data": {"href": None}},
    {"type": 5, "timestamp": T0, "data": {"tag": None}},
    {"type": 5, "timestamp": T0, "data": {"tag": "$pageview", "payload": "x"}},
    {
        "type": 6,
        "timestamp": T0,
        "data": {"plugin": "rrweb/console@1", "payload": None},
    },
    {
        "type": 6,
        "timestamp": T0,
        "data": {
            "plugin": "rrweb/console@1",
            "payload": {"level": "error", "payload": ['"unterminated', 5, None]},
        },
    },
    {
        "type": 6,
        "timestamp": T0,
        "data": {
            "plugin": "rrweb/network@1",
            "payload": {
                "requests": [
                    None,
                    {"name": 3, "responseStatus": "500"},
                    {
                        "name": "http://[bad",
                        "status": 500,
                        "duration": -1,
                        "timestamp": "x",
                    },
                ]
            },
        },
    },
    {
        "type": 6,
        "timestamp": T0,
        "data": {"plugin": "rrweb/network@1", "payload": {"requests": "x"}},
    },
    {"type": 9, "timestamp": T0 + 1.5, "data": {}},
    {"type": True, "timestamp": T0, "data": {"source": True}},
]


def test_it_reads_odd_events_without_raising() -> None:
    odd_analytics: list[Any] = [
        None,
        AnalyticsEvent("$exception", T0, W, {"$exception_list": "nope"}),
        AnalyticsEvent("$exception", T0, W, {"$exception_list": [None]}),
        AnalyticsEvent("$rageclick", T0, W, {"$elements": [None]}),
        AnalyticsEvent("$dead_click", T0, W, {"$dead_click_event_timestamp": "x"}),
        AnalyticsEvent("$pageview", T0, W, {"$current_url": 5}),
        AnalyticsEvent("", T0, W, {}),
        AnalyticsEvent("x", "soon", W, {}),  # type: ignore[arg-type]
    ]
    windows: dict[str, Any] = {W: ODD_EVENTS, "empty": [], "junk": [None]}
    signals = signals_of(windows, odd_analytics)
    assert signals.window_count == 1
    assert all(len(m.label) <= 200 and m.window_id == W for m in signals.markers)
    json.dumps([m.details for m in signals.markers])


def test_it_reads_events_out_of_order() -> None:
    events = [click(T0 + 1400), click(T0 + 1000), click(T0 + 1200), move(T0 + 9000)]
    assert stamps(signals_of({W: [*page(), *events]}), Kind.RAGE_CLICK) == [1000]


def test_it_does_not_change_the_events() -> None:
    events = [*page(), *rage_burst(), console(T0 + 5, "error", "x")]
    before = json.dumps(events)
    signals_of({W: events})
    assert json.dumps(events) == before


def test_it_cuts_long_labels() -> None:
    signals = one_window(console(T0 + 1, "error", "x" * 5000))
    assert len(only(signals, Kind.CONSOLE_ERROR).label) == 200


def test_it_reads_a_long_recording_in_linear_time() -> None:
    events: list[dict[str, Any]] = list(page())
    for i in range(50_000):
        ts = T0 + i * 40
        events.append(move(ts, x=i % 500, y=(i * 7) % 300))
        if i % 10 == 0:
            events.append(click(ts + 1, (BUTTON, DIV, LINK)[i % 3], x=i % 700, y=5))
        if i % 25 == 0:
            events.append(mutation(ts + 2, texts=[{"id": 12, "value": str(i)}]))
    started = time.monotonic()
    signals = signals_of({W: events})
    assert signals.click_count == 5000
    assert time.monotonic() - started < 20  # seconds; quadratic would be hours


# -- the captured fixtures ---------------------------------------------------------


def rrweb_fixture(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        (fixtures_dir() / "rrweb" / name).read_text()
    )
    return events


def clicks_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["type"] == 3 and e["data"]["source"] == 2 and e["data"]["type"] == 2
    ]


def all_fixture_windows() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for path in sorted((fixtures_dir() / "rrweb").glob("*.json")):
        yield path.name, json.loads(path.read_text())
    for path in sorted((posthog_dir() / "sessions").glob("*.rrweb.json")):
        yield path.name, json.loads(path.read_text())


def test_it_finds_what_happened_in_the_browse_flow() -> None:
    events = rrweb_fixture("browse.json")
    clicks = clicks_of(events)
    # The scenario clicks the dead button 5 times in a row, then once more.
    dead_button = next(
        c["data"]["id"]
        for i, c in enumerate(clicks[:-4])
        if all(d["data"]["id"] == c["data"]["id"] for d in clicks[i : i + 5])
    )
    on_dead_button = [c["timestamp"] for c in clicks if c["data"]["id"] == dead_button]
    assert len(on_dead_button) == 6
    errors = [
        e for e in events if e["type"] == 6 and e["data"]["payload"]["level"] == "error"
    ]
    error_click = max(
        c["timestamp"] for c in clicks if c["timestamp"] <= errors[0]["timestamp"]
    )
    metas = [e for e in events if e["type"] == 4]

    signals = signals_of({W: events})

    assert stamps_abs(signals, Kind.RAGE_CLICK) == [on_dead_button[0]]
    assert only(signals, Kind.RAGE_CLICK).details["clicks"] == 5
    assert only(signals, Kind.RAGE_CLICK).details["element"]["id"] == "dead-btn"
    assert stamps_abs(signals, Kind.DEAD_CLICK) == [on_dead_button[5]]
    assert stamps_abs(signals, Kind.ERROR_CLICK) == [error_click]
    assert stamps_abs(signals, Kind.CONSOLE_ERROR) == [e["timestamp"] for e in errors]
    assert stamps_abs(signals, Kind.U_TURN) == [
        metas[2]["timestamp"]
    ]  # signup and back
    assert [p.url for p in signals.pages] == [m["data"]["href"] for m in metas]
    assert signals.mouse_thrash_count == 0
    counts = (
        signals.console_log_count,
        signals.console_warn_count,
        signals.console_error_count,
    )
    assert counts == (2, 1, 2)  # log + info; the 500's warning; the crash's two errors
    assert (signals.click_count, signals.scroll_count) == (len(clicks), 12)
    assert signals.network_request_count == 0  # plain rrweb records no network
    first_input = min(
        e["timestamp"] for e in events if e["type"] == 3 and e["data"]["source"] == 1
    )
    assert (
        signals.inactive_ms == first_input - events[0]["timestamp"]
    )  # before the first move


def stamps_abs(signals: Signals, kind: str) -> list[int]:
    return [m.timestamp_ms for m in signals.markers if m.kind == kind]


def main_session_analytics() -> list[AnalyticsEvent]:
    """The analytics events posthog-js sent during the main session, as rows."""
    rows = []
    for captured in full_session():
        if captured.path not in ("/e/", "/i/v0/e/"):
            continue
        compression = urllib.parse.parse_qs(captured.query).get("compression", [""])[0]
        payload = decode_body(
            captured.body,
            content_type=captured.headers.get("content-type", ""),
            compression=compression,
            max_decompressed=10**8,
        )
        for event in analytics_parse.parse_event_request(payload):
            window_id = event.properties.get("$window_id", "")
            stamp = int(event.timestamp.timestamp() * 1000)
            rows.append(AnalyticsEvent(event.name, stamp, window_id, event.properties))
    return rows


def test_it_merges_posthogs_reports_in_the_main_session() -> None:
    events = session_events("main")
    sent = main_session_analytics()
    (window_id,) = {e.window_id for e in sent}
    named = {
        name: [e for e in sent if e.name == name]
        for name in ("$rageclick", "$dead_click", "$exception")
    }
    assert [len(v) for v in named.values()] == [1, 4, 1]

    signals = signals_of({window_id: events}, sent)

    clicks = clicks_of(events)
    rage = only(signals, Kind.RAGE_CLICK)
    # posthog-js reports the burst at its third click; we mark its first.
    third = next(
        c for c in clicks if c["timestamp"] >= named["$rageclick"][0].timestamp_ms - 10
    )
    assert rage.timestamp_ms == clicks[clicks.index(third) - 2]["timestamp"]
    assert (rage.details["source"], rage.details["clicks"]) == ("both", 5)
    dead = [m for m in signals.markers if m.kind == Kind.DEAD_CLICK]
    # posthog-js's four: the burst's first click (merged into the rage click),
    # the single dead click (seen by both), and two on the checkout coupon that
    # the replay shows answered by the user's own typing within 2.5 s.
    assert [m.details["source"] for m in dead] == ["both", "posthog-js", "posthog-js"]
    assert signals.dead_click_count == 3
    exception = only(signals, Kind.EXCEPTION)
    assert exception.label == "Error: Demo failure: cannot read cart total"
    assert exception.timestamp_ms == named["$exception"][0].timestamp_ms
    assert signals.error_click_count == 2  # the crash button and the 500 button
    assert only(signals, Kind.NETWORK_ERROR).label == "POST /api/fail 500"
    assert signals.network_5xx_count == 1
    customs = [m.label for m in signals.markers if m.kind == Kind.CUSTOM_EVENT]
    assert customs == [
        "product_searched",
        "viewed_promo",
        "signed_up",
        "checkout_completed",
    ]
    assert [p.url.split("?")[0].rsplit("/", 1)[1] for p in signals.pages] == [
        "index.html",
        "signup.html",
        "checkout.html",
    ]
    assert signals.u_turn_count == 0


@pytest.mark.parametrize("name", [name for name, _ in all_fixture_windows()])
def test_it_finds_no_thrashing_in_ordinary_mouse_moves(name: str) -> None:
    events = dict(all_fixture_windows())[name]
    assert signals_of({W: events}).mouse_thrash_count == 0
