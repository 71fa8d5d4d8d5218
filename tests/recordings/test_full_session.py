from __future__ import annotations

from typing import Any

import orjson

from recordings.models import Event, Project, Recording
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, full_session, session_events

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"


def is_input(event: dict[str, Any]) -> bool:
    return bool(event["type"] == 3 and event["data"]["source"] == 5)


def canonical(events: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in events)


class FullSessionTests(ReplayTestCase):
    """Every request one real 72-second, 3-page browser session made, replayed."""

    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        for request in full_session():
            response = request.send(self.client)
            self.assertEqual(response.status_code, 200, (request.url, response.content))

    def test_it_stores_the_whole_session_as_one_playable_recording(self) -> None:
        expected = session_events("main.0")
        recording = Recording.objects.get(session_id=MAIN_SESSION)
        played = recording_events(recording=recording)
        # The client masked typed inputs already; what it left is a checkbox's
        # fixed "on", which the server (mask all inputs, the default) keeps too.
        self.assertEqual(canonical(played), canonical(expected))
        unmasked = [
            e["data"] for e in played if is_input(e) and set(e["data"]["text"]) - {"*"}
        ]
        self.assertEqual(
            [(d["text"], d["isChecked"]) for d in unmasked], [("on", True)]
        )
        timestamps = [event["timestamp"] for event in played]
        self.assertEqual(timestamps, sorted(timestamps))
        self.assertTrue(recording.has_full_snapshot)
        self.assertEqual(recording.event_count, len(expected))
        full_snapshots = [e for e in expected if e["type"] == 2]
        self.assertEqual(len(full_snapshots), 3)  # one per page of the 3-page flow

    def test_it_counts_clicks_and_keypresses_of_the_session(self) -> None:
        expected = session_events("main.0")
        recording = Recording.objects.get(session_id=MAIN_SESSION)

        def incremental(source: int) -> list[dict[str, Any]]:
            return [
                e for e in expected if e["type"] == 3 and e["data"]["source"] == source
            ]

        clicks = [e for e in incremental(2) if e["data"]["type"] == 2]
        self.assertEqual(recording.click_count, len(clicks))
        self.assertEqual(recording.keypress_count, len(incremental(5)))
        self.assertGreater(recording.click_count, 0)

    def test_it_keeps_the_analytics_events_of_the_session(self) -> None:
        names = set(
            Event.objects.filter(session_id=MAIN_SESSION).values_list("name", flat=True)
        )
        self.assertIn("$pageview", names)
        self.assertIn("$autocapture", names)
