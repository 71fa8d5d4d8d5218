"""URL triggers and the linked flag, enforced when a recording is finished.

posthog-js obeys them in the browser; the server checks again at compaction, so a
client that ignores the remote config (or plain rrweb) does not get a recording kept
that the project's rules say not to record.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from privacy.models import PrivacySettings
from privacy.rules import flag_active, page_urls, url_triggered
from recordings.models import Project, Recording, SessionLedger
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, full_session, send_rrweb

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
T0 = 1_790_000_000_000


# --- pure rules --------------------------------------------------------------------


def custom(tag: str, payload: Any) -> dict[str, Any]:
    return {"type": 5, "timestamp": T0, "data": {"tag": tag, "payload": payload}}


def test_page_urls_are_meta_hrefs_and_spa_navigations() -> None:
    events = [
        {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/"}},
        {"type": 2, "timestamp": T0, "data": {"node": {}}},
        custom("$pageview", {"href": "https://shop.test/cart"}),
        custom("$url_changed", {"href": "https://shop.test/checkout"}),
        custom("$posthog_config", {"href": "https://not.a.page/"}),
        custom("$pageview", "junk"),
        {"type": 4, "timestamp": T0, "data": {"href": 42}},
        {"type": 4, "timestamp": T0, "data": "junk"},
    ]
    assert list(page_urls(events)) == [
        "https://shop.test/",
        "https://shop.test/cart",
        "https://shop.test/checkout",
    ]


@pytest.mark.parametrize(
    ("urls", "triggers", "expected"),
    [
        (["https://shop.test/"], [], True),  # no triggers: every recording
        ([], [], True),
        ([], [r"/checkout"], False),
        (["https://shop.test/", "https://shop.test/checkout"], [r"/checkout"], True),
        (["https://shop.test/cart"], [r"/checkout", r"/cart$"], True),
        (["https://shop.test/cart?x=1"], [r"/cart$"], False),
        (["https://shop.test/CHECKOUT"], [r"/checkout"], False),  # regexes as given
    ],
)
def test_url_triggered(urls: list[str], triggers: list[str], expected: bool) -> None:
    assert url_triggered(urls, [re.compile(t) for t in triggers]) is expected


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"$feature/beta": True}, True),
        ({"$feature/beta": "variant-b"}, True),  # a multivariate flag's variant
        ({"$feature/beta": False}, False),
        ({"$feature/beta": ""}, False),
        ({"$active_feature_flags": ["beta", "other"]}, True),
        ({"$active_feature_flags": ["other"]}, False),
        ({"$active_feature_flags": []}, False),  # what the fixtures carry
        ({"$active_feature_flags": "beta"}, False),  # junk
        ({"$feature/beta": False, "$active_feature_flags": ["beta"]}, False),
        ({"$feature/beta-2": True}, False),
        ({}, False),
    ],
)
def test_flag_active(properties: dict[str, Any], expected: bool) -> None:
    assert flag_active(properties, "beta") is expected


# --- at compaction -----------------------------------------------------------------


def page(href: str, ts: int) -> list[dict[str, Any]]:
    document = {"type": 0, "childNodes": [], "id": 1}
    return [
        {"type": 4, "timestamp": ts, "data": {"href": href}},
        {"type": 2, "timestamp": ts + 1, "data": {"node": document}},
    ]


class RecordingRuleTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)

    def rules(self, **values: Any) -> None:
        PrivacySettings.objects.update_or_create(project=self.project, defaults=values)

    def send_session(self, *paths: str) -> Recording:
        """The real 3-page session (index, signup, checkout): the given endpoints."""
        for request in full_session():
            if request.path in paths:
                self.assertEqual(request.send(self.client).status_code, 200)
        return Recording.objects.get(session_id=MAIN_SESSION)

    def send_rrweb(self, batch_id: str, events: list[dict[str, Any]]) -> Recording:
        send_rrweb(self.client, FIXTURE_TOKEN, batch_id, events)
        return Recording.objects.get(session_id="s")

    def send_event(self, session_id: str, **properties: Any) -> None:
        event = {
            "event": "$pageview",
            "uuid": f"ev-{len(properties)}-{session_id}-{sorted(properties)}",
            "timestamp": "2026-11-22T09:44:30Z",
            "properties": {"distinct_id": "jane", "$session_id": session_id}
            | properties,
        }
        response = self.client.post(
            "/i/v0/e/",
            data={"api_key": FIXTURE_TOKEN, "batch": [event]},
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 200)

    def assert_discarded(self, session_id: str, reason: str) -> None:
        self.assertFalse(Recording.objects.filter(session_id=session_id).exists())
        self.assertFalse([b for b in self.stored_blobs() if session_id in str(b)])
        ledger = SessionLedger.objects.get(session_id=session_id)
        self.assertEqual(ledger.refusals, {reason: 1})

    def assert_kept(self, recording: Recording) -> None:
        self.assertEqual(recording_compact(recording=recording), 1)
        recording.refresh_from_db()
        self.assertTrue(recording.compacted)

    # URL triggers

    def test_a_session_that_reached_a_trigger_page_is_kept(self) -> None:
        # Only the snapshots: the checkout page is found in the stored blobs.
        self.rules(url_triggers="^https?://[^/]+/nowhere\n/checkout\\.html")
        recording = self.send_session("/s/")
        self.assertNotIn("checkout", recording.first_url)
        self.assert_kept(recording)

    def test_a_session_that_never_reached_a_trigger_page_is_discarded(self) -> None:
        self.rules(url_triggers="/thank-you")
        recording = self.send_session("/s/", "/e/", "/i/v0/e/")
        self.assertEqual(recording_compact(recording=recording), 0)
        self.assert_discarded(MAIN_SESSION, "url_trigger_not_matched")

    def test_the_pages_before_the_trigger_page_are_kept_with_it(self) -> None:
        self.rules(url_triggers="/checkout")
        self.send_rrweb("1", page("https://shop.test/cart", T0))
        recording = self.send_rrweb("2", page("https://shop.test/checkout", T0 + 100))
        self.assert_kept(recording)
        hrefs = list(page_urls(recording_events(recording=recording)))
        self.assertEqual(
            hrefs, ["https://shop.test/cart", "https://shop.test/checkout"]
        )

    def test_a_trigger_page_known_from_analytics_events_counts(self) -> None:
        self.rules(url_triggers="/checkout")
        recording = self.send_rrweb("1", page("https://shop.test/cart", T0))
        self.send_event("s", **{"$current_url": "https://shop.test/checkout"})
        self.assert_kept(recording)

    def test_a_compacted_recording_stays_kept_when_compacted_again(self) -> None:
        self.rules(url_triggers="/checkout")
        self.send_rrweb("1", page("https://shop.test/cart", T0))
        recording = self.send_rrweb("2", page("https://shop.test/checkout", T0 + 100))
        self.assert_kept(recording)
        recording = self.send_rrweb("3", page("https://shop.test/thanks", T0 + 200))
        self.assert_kept(recording)  # its trigger page is now in the window blob

    # Linked flag

    def test_a_session_without_the_linked_flag_on_is_discarded(self) -> None:
        self.rules(linked_flag="beta")
        # posthog-js puts `$active_feature_flags: []` on every event of the fixtures.
        recording = self.send_session("/s/", "/e/", "/i/v0/e/")
        self.assertEqual(recording_compact(recording=recording), 0)
        self.assert_discarded(MAIN_SESSION, "linked_flag_not_on")

    def test_a_session_whose_events_show_the_flag_on_is_kept(self) -> None:
        self.rules(linked_flag="beta")
        recording = self.send_session("/s/", "/e/", "/i/v0/e/")
        self.send_event(MAIN_SESSION, **{"$feature/beta": "variant-b"})
        self.assert_kept(recording)

    def test_the_flag_on_in_another_session_does_not_count(self) -> None:
        self.rules(linked_flag="beta")
        recording = self.send_rrweb("1", page("https://shop.test/", T0))
        self.send_event("another", **{"$active_feature_flags": ["beta"]})
        self.assertEqual(recording_compact(recording=recording), 0)
        self.assert_discarded("s", "linked_flag_not_on")

    def test_without_rules_everything_is_kept(self) -> None:
        self.rules()
        self.assert_kept(self.send_rrweb("1", page("https://shop.test/", T0)))
