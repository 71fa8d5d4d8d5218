"""What one capture request may cost: per-item work batched, counts capped.

A small body must not buy seconds of a worker (issue 10): many `$snapshot`s of a
window share one blob and one commit, many `$identify` events a few queries, and
requests over the counts a real client never reaches are refused with 413.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from privacy.policy import privacy_for
from recordings.models import Event, Person, Recording, SessionLedger, SnapshotChunk
from tests.base import ReplayTestCase

T0 = 1_790_000_000_000


def move(i: int) -> dict[str, Any]:
    positions = [{"x": i, "y": i, "id": 5, "timeOffset": 0}]
    return {
        "type": 3,
        "timestamp": T0 + i,
        "data": {"source": 1, "positions": positions},
    }


class Capture(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        privacy_for(self.project)  # made on first use: not part of any count here

    def snapshot(self, session_id: str, i: int, window_id: str = "w") -> Any:
        return {
            "uuid": str(uuid.uuid4()),
            "event": "$snapshot",
            "properties": {
                "$snapshot_data": [move(i)],
                "$session_id": session_id,
                "$window_id": window_id,
                "token": self.project.token,
                "distinct_id": "person",
            },
        }

    def post_snapshots(self, items: list[Any]) -> Any:
        return self.client.post("/s/", data=items, content_type="application/json")

    def identify(self, distinct_id: str, i: int) -> dict[str, Any]:
        return {
            "uuid": str(uuid.uuid4()),
            "event": "$identify",
            "properties": {
                "distinct_id": distinct_id,
                "$anon_distinct_id": f"anon-{i}",
            },
            "$set": {"email": f"{distinct_id}@shop.test", "visit": i},
            "$set_once": {"first_visit": i},
        }

    def post_events(self, events: list[Any]) -> Any:
        body = {"api_key": self.project.token, "batch": events}
        return self.client.post("/i/v0/e/", data=body, content_type="application/json")


# No rate limit: on the embedded default it counts in the database, and a new
# minute's first batch also clears the old minutes (one query more, whatever the
# batch holds); these tests count what the items themselves cost.
@override_settings(REPLAYHUB_INGEST_RATE_PER_MINUTE=0)
class PerItemWorkTests(Capture):
    def snapshot_queries(self, count: int) -> int:
        session_id = str(uuid.uuid4())
        items = [self.snapshot(session_id, i) for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.post_snapshots(items).status_code, 200)
        return len(queries)

    def test_many_snapshots_of_a_window_cost_what_one_does(self) -> None:
        one, many = self.snapshot_queries(1), self.snapshot_queries(100)
        self.assertEqual(one, many)
        recording = Recording.objects.order_by("-pk")[0]
        chunks = SnapshotChunk.objects.filter(recording=recording)
        self.assertEqual(chunks.count(), 100)  # one row per $snapshot: retries
        # Each with its own bytes, in its row: nothing in blob storage.
        self.assertEqual({c.blob_key for c in chunks}, {""})
        self.assertEqual(len(self.stored_rows()), 101)  # the 1 and the 100 above
        self.assertEqual(self.stored_blobs(), [])
        self.assertEqual(sum(c.size_bytes for c in chunks), recording.size_bytes)
        self.assertEqual(recording.event_count, 100)

    @override_settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0)  # all too big for rows
    def test_each_window_of_a_request_too_big_for_rows_gets_its_blob(self) -> None:
        session_id = str(uuid.uuid4())
        items = [self.snapshot(session_id, i, window_id=f"w{i % 2}") for i in range(6)]
        self.assertEqual(self.post_snapshots(items).status_code, 200)
        by_window = {
            window: {c.blob_key for c in SnapshotChunk.objects.filter(window_id=window)}
            for window in ("w0", "w1")
        }
        self.assertEqual([len(keys) for keys in by_window.values()], [1, 1])
        self.assertEqual(len(self.stored_blobs()), 2)
        self.assertEqual(
            sorted(e["timestamp"] for e in self.stored_events()),
            [T0 + i for i in range(6)],
        )

    def test_a_retried_request_of_many_snapshots_is_stored_once(self) -> None:
        items = [self.snapshot("s", i) for i in range(20)]
        self.assertEqual(self.post_snapshots(items).status_code, 200)
        self.assertEqual(self.post_snapshots(items[5:]).status_code, 200)
        self.assertEqual(SnapshotChunk.objects.count(), 20)
        self.assertEqual(Recording.objects.get().event_count, 20)
        self.assertEqual(len(self.stored_events()), 20)

    def identify_queries(self, events: list[dict[str, Any]]) -> int:
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.post_events(events).status_code, 200)
        return len(queries)

    # Rows are inserted in bulk, up to ~120 a statement on SQLite (999 parameters);
    # within that, the count of queries does not depend on the count of events.
    def test_identify_events_cost_a_few_queries_however_many_people(self) -> None:
        few = self.identify_queries([self.identify(f"a{i}", i) for i in range(2)])
        many = self.identify_queries([self.identify(f"b{i}", i) for i in range(100)])
        self.assertEqual(few, many)
        self.assertEqual(
            Person.objects.filter(distinct_id__startswith="b").count(), 100
        )
        again = [self.identify(f"b{i}", 1000 + i) for i in range(100)]
        self.assertEqual(self.identify_queries(again), many)  # people exist now
        self.assertEqual(Person.objects.get(distinct_id="b7").properties["visit"], 1007)

    def test_many_identify_events_of_one_person_fold_in_order(self) -> None:
        few = self.identify_queries([self.identify("jane", i) for i in range(2)])
        many = self.identify_queries([self.identify("jane", i) for i in range(2, 100)])
        self.assertEqual(few, many)
        person = Person.objects.get(distinct_id="jane")
        self.assertEqual(person.properties["visit"], 99)  # $set: the last wins
        self.assertEqual(person.properties["first_visit"], 0)  # $set_once: the first
        self.assertEqual(
            person.anon_distinct_ids, [f"anon-{i}" for i in range(80, 100)]
        )
        self.assertEqual(Event.objects.count(), 100)


@override_settings(
    REPLAYHUB_INGEST_MAX_SESSIONS=3,
    REPLAYHUB_INGEST_MAX_SNAPSHOTS=6,
    REPLAYHUB_INGEST_MAX_EVENTS=5,
)
class RequestCapTests(Capture):
    def assert_refused(self, response: Any, code: str) -> None:
        self.assertEqual(response.status_code, 413, response.content)
        self.assertEqual(response.json()["error"], code)
        self.assertIn("at most", response.json()["detail"])
        self.assertNotIn("Retry-After", response)

    def test_it_refuses_more_sessions_than_the_cap(self) -> None:
        items = [self.snapshot(f"s{i}", i) for i in range(4)]
        self.assert_refused(self.post_snapshots(items), "too_many_sessions")
        self.assertFalse(Recording.objects.exists())
        self.assertFalse(SessionLedger.objects.exists())  # not one write per session
        self.assertEqual(self.stored_blobs(), [])

    def test_it_refuses_more_snapshots_than_the_cap(self) -> None:
        items = [self.snapshot("s", i) for i in range(7)]
        self.assert_refused(self.post_snapshots(items), "too_many_snapshots")
        self.assertFalse(Recording.objects.exists())
        self.assertEqual(self.stored_blobs(), [])

    def test_it_takes_a_request_at_the_caps(self) -> None:
        items = [self.snapshot(f"s{i % 3}", i) for i in range(6)]
        self.assertEqual(self.post_snapshots(items).status_code, 200)
        self.assertEqual(Recording.objects.count(), 3)
        events = [self.identify(f"p{i}", i) for i in range(5)]
        self.assertEqual(self.post_events(events).status_code, 200)
        self.assertEqual(Event.objects.count(), 5)

    @override_settings(REPLAYHUB_INGEST_MAX_EVENT_BYTES=2000)
    def test_it_refuses_an_analytics_event_over_the_size_cap(self) -> None:
        events = [self.identify("p", 0), self.identify("q", 1)]
        events[1]["properties"]["blob"] = "x" * 2000
        self.assert_refused(self.post_events(events), "event_too_large")
        self.assertFalse(Event.objects.exists())  # not even the small one
        self.assertFalse(Person.objects.exists())

    def test_it_refuses_more_analytics_events_than_the_cap(self) -> None:
        events = [self.identify(f"p{i}", i) for i in range(6)]
        self.assert_refused(self.post_events(events), "too_many_events")
        self.assertFalse(Event.objects.exists())
        self.assertFalse(Person.objects.exists())


class BigAnalyticsRequestTests(Capture):
    def test_events_of_a_big_request_are_all_stored(self) -> None:
        # ~3 MB of events: written in more than one statement, all of them.
        events = [self.identify(f"p{i}", i) for i in range(5)]
        for event in events:
            event["properties"]["text"] = "lorem ipsum " * 50_000
            event["$set"]["bio"] = "dolor sit amet " * 20_000
        self.assertEqual(self.post_events(events).status_code, 200)
        self.assertEqual(Event.objects.count(), 5)
        person = Person.objects.get(distinct_id="p3")
        self.assertEqual(person.properties["bio"], "dolor sit amet " * 20_000)
        self.assertEqual(person.properties["visit"], 3)


class DefaultCapTests(Capture):
    def test_the_defaults_are_far_above_what_posthog_js_sends(self) -> None:
        # One (session, window) per /s/ request with 1-3 $snapshots (wire protocol).
        items = [self.snapshot("s", i) for i in range(100)]
        self.assertEqual(self.post_snapshots(items).status_code, 200)
        items = [self.snapshot("s", i) for i in range(101)]
        self.assertEqual(
            self.post_snapshots(items).json()["error"], "too_many_snapshots"
        )
        items = [self.snapshot(f"s{i}", i) for i in range(11)]
        self.assertEqual(
            self.post_snapshots(items).json()["error"], "too_many_sessions"
        )
        events = [self.identify("p", i) for i in range(1001)]
        self.assertEqual(self.post_events(events).json()["error"], "too_many_events")
