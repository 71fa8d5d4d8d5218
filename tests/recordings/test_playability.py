"""Will a recording replay whole? Lost changes and unexplained gaps (compaction)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from django.test import SimpleTestCase
from django.utils.timezone import now

from recordings.ingest.parse import decode_body, expand_event, parse_snapshot_request
from recordings.ingest.playability import check_window
from recordings.models import GAP_WARNING_MS, Recording
from recordings.services.compaction import recording_compact
from tests.base import ReplayTestCase
from tests.capture import (
    FIXTURE_TOKEN,
    CapturedRequest,
    full_session,
    posthog_dir,
    send_rrweb,
)
from tests.fixtures import fixtures_dir

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
MINUTE_MS = 60_000
LIMIT = 64 * 1024 * 1024


def full_snapshot(ts: int, *ids: int) -> dict[str, Any]:
    """A FullSnapshot of a document (id 1) whose children have `ids`."""
    children = [{"type": 2, "id": i, "tagName": "div", "childNodes": []} for i in ids]
    node = {"type": 0, "id": 1, "childNodes": children}
    return {"type": 2, "timestamp": ts, "data": {"node": node}}


def mutation(ts: int, **changes: list[dict[str, Any]]) -> dict[str, Any]:
    data = {"source": 0, "adds": [], "removes": [], "texts": [], "attributes": []}
    return {"type": 3, "timestamp": ts, "data": data | changes}


def added(parent: int, node_id: int) -> dict[str, Any]:
    node = {"type": 2, "id": node_id, "tagName": "p", "childNodes": []}
    return {"parentId": parent, "nextId": None, "node": node}


def click(ts: int, node_id: int = 2) -> dict[str, Any]:
    return {"type": 3, "timestamp": ts, "data": {"source": 2, "type": 2, "id": node_id}}


def custom(ts: int, tag: str) -> dict[str, Any]:
    return {"type": 5, "timestamp": ts, "data": {"tag": tag, "payload": {}}}


def real_sessions() -> dict[str, list[dict[str, Any]]]:
    """Every recorded session of the fixtures (posthog-js and plain rrweb), sorted."""
    paths = sorted((posthog_dir() / "sessions").glob("*.rrweb.json"))
    paths += sorted((fixtures_dir() / "rrweb").glob("*.json"))
    sessions = {}
    for path in paths:
        raw = json.loads(path.read_text())
        events = [expand_event(event, budget=LIMIT) for event in raw]
        sessions[path.name] = sorted(events, key=lambda e: e["timestamp"])
    return sessions


class LostChangesTests(SimpleTestCase):
    def test_changes_to_recorded_elements_are_not_lost(self) -> None:
        events = [
            full_snapshot(0, 2, 3),
            mutation(
                10,
                adds=[added(2, 4)],
                removes=[{"parentId": 1, "id": 3}],
                texts=[{"id": 2, "value": "hi"}],
                attributes=[{"id": 4, "attributes": {"class": "x"}}],
            ),
            mutation(20, removes=[{"parentId": 2, "id": 4}]),
        ]
        self.assertEqual(check_window(events).lost_changes, 0)

    def test_each_reference_to_an_element_never_recorded_counts(self) -> None:
        events = [
            full_snapshot(0, 2),
            mutation(10, adds=[added(99, 5)]),  # under an unknown parent
            mutation(20, removes=[{"parentId": 2, "id": 98}]),
            mutation(30, texts=[{"id": 97, "value": "x"}]),
            mutation(40, attributes=[{"id": 96, "attributes": {}}]),
        ]
        self.assertEqual(check_window(events).lost_changes, 4)

    def test_a_parent_added_later_in_the_same_mutation_is_known(self) -> None:
        # rrweb lists a mutation's adds in its own order; a child may come first.
        events = [full_snapshot(0, 2), mutation(10, adds=[added(7, 8), added(2, 7)])]
        self.assertEqual(check_window(events).lost_changes, 0)

    def test_a_full_snapshot_starts_over(self) -> None:
        events = [
            full_snapshot(0, 2),
            full_snapshot(10, 20),
            mutation(20, texts=[{"id": 20, "value": "new page"}]),
        ]
        self.assertEqual(check_window(events).lost_changes, 0)

    def test_changes_before_the_first_full_snapshot_are_not_judged(self) -> None:
        # The player starts at the full snapshot (wire-protocol §0.10: a waking
        # interaction can be older than the new session's snapshot).
        events = [mutation(0, texts=[{"id": 50, "value": "x"}]), full_snapshot(5, 2)]
        self.assertEqual(check_window(events).lost_changes, 0)

    def test_no_real_recording_has_lost_changes(self) -> None:
        sessions = real_sessions()
        self.assertGreaterEqual(len(sessions), 8)
        for name, events in sessions.items():
            with self.subTest(name):
                self.assertEqual(check_window(events).lost_changes, 0)

    def test_a_real_recording_missing_a_batch_has_lost_changes(self) -> None:
        requests = [request_events(request) for request in snapshot_requests()]
        lost = request_referenced_later(requests)
        kept = [
            event for i, batch in enumerate(requests) if i != lost for event in batch
        ]
        played = sorted(kept, key=lambda event: event["timestamp"])
        self.assertGreater(check_window(played).lost_changes, 0)


def request_referenced_later(requests: list[list[dict[str, Any]]]) -> int:
    """The first request adding nodes that a later one changes, no page load between."""
    for index, events in enumerate(requests):
        new_ids = {node_id for event in events for node_id in _added_ids(event)}
        for later in requests[index + 1 :]:
            if any(event["type"] == 2 for event in later):
                break  # a full snapshot brings every node back
            if new_ids & {ref for event in later for ref in _references(event)}:
                return index
    raise AssertionError("no request adds nodes that a later one changes")


def _is_mutation(event: dict[str, Any]) -> bool:
    return bool(event["type"] == 3 and event["data"].get("source") == 0)


def _added_ids(event: dict[str, Any]) -> list[int]:
    if not _is_mutation(event):
        return []
    return [add["node"]["id"] for add in event["data"]["adds"]]


def _references(event: dict[str, Any]) -> list[int]:
    if not _is_mutation(event):
        return []
    data = event["data"]
    return [
        *(
            change["id"]
            for key in ("removes", "texts", "attributes")
            for change in data[key]
        ),
        *(add["parentId"] for add in data["adds"]),
    ]


class GapTests(SimpleTestCase):
    def test_a_stretch_with_no_events_is_a_gap(self) -> None:
        events = [full_snapshot(0, 2), click(1_000), click(7 * MINUTE_MS)]
        self.assertEqual(check_window(events).longest_gap_ms, 7 * MINUTE_MS - 1_000)

    def test_time_the_recorder_declared_idle_is_not_a_gap(self) -> None:
        # posthog-js stamps sessionIdle at the last activity plus its threshold, drops
        # events while idle, and marks the return (wire-protocol §7).
        events = [
            full_snapshot(0, 2),
            click(1_000),
            custom(1_000 + 5 * MINUTE_MS, "sessionIdle"),
            click(40 * MINUTE_MS),
            custom(40 * MINUTE_MS + 1, "sessionNoLongerIdle"),
            full_snapshot(40 * MINUTE_MS + 2, 2),
            click(40 * MINUTE_MS + 3_000),
        ]
        self.assertEqual(check_window(events).longest_gap_ms, 3_000 - 2)

    def test_a_gap_after_the_return_from_idle_counts_again(self) -> None:
        events = [
            full_snapshot(0, 2),
            custom(5 * MINUTE_MS, "sessionIdle"),
            click(10 * MINUTE_MS),
            click(21 * MINUTE_MS),
        ]
        self.assertEqual(check_window(events).longest_gap_ms, 11 * MINUTE_MS)


def snapshot_requests() -> list[CapturedRequest]:
    return [request for request in full_session() if request.path == "/s/"]


def request_events(request: CapturedRequest) -> list[dict[str, Any]]:
    payload = decode_body(request.body, max_decompressed=LIMIT)
    batches = parse_snapshot_request(payload, max_decompressed=LIMIT)
    return [event for batch in batches for event in batch.events]


class RecordingPlayabilityTests(ReplayTestCase):
    """Through capture and compaction, as the admin and the API show it."""

    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)

    def compacted(self, session_id: str) -> Recording:
        recording = Recording.objects.get(session_id=session_id)
        recording_compact(recording=recording)
        recording.refresh_from_db()
        return recording

    def test_a_whole_real_session_plays_well(self) -> None:
        for request in snapshot_requests():
            self.assertEqual(request.send(self.client).status_code, 200)
        recording = self.compacted(MAIN_SESSION)
        self.assertEqual(recording.lost_changes, 0)
        self.assertEqual(recording.problems(), [])
        (check,) = recording.window_checks.values()
        self.assertEqual(check["lost_changes"], 0)
        self.assertLess(check["longest_gap_ms"], GAP_WARNING_MS)

    def test_a_session_whose_batch_never_arrived_is_flagged(self) -> None:
        requests = snapshot_requests()
        lost = request_referenced_later([request_events(r) for r in requests])
        for index, request in enumerate(requests):
            if index != lost:
                self.assertEqual(request.send(self.client).status_code, 200)

        recording = self.compacted(MAIN_SESSION)

        self.assertGreater(recording.lost_changes, 0)
        self.assertIn("data lost", recording.problems()[0])
        self.client.force_login(self.alice)
        detail = self.client.get(f"/api/v1/recordings/{recording.code}/").json()
        self.assertEqual(detail["lost_changes"], recording.lost_changes)
        self.assertIn("data lost", detail["problems"][0])

    def test_the_api_and_the_admin_filter_recordings_with_lost_data(self) -> None:
        t = int(now().timestamp() * 1000)
        whole = [full_snapshot(t, 2), mutation(t + 9, texts=[{"id": 2, "value": "a"}])]
        broken = [full_snapshot(t, 2), mutation(t + 9, texts=[{"id": 9, "value": "a"}])]
        send_rrweb(self.client, FIXTURE_TOKEN, "w1", whole, session_id="whole")
        send_rrweb(self.client, FIXTURE_TOKEN, "b1", broken, session_id="broken")
        lost, kept = self.compacted("broken"), self.compacted("whole")
        self.client.force_login(self.alice)

        for flag, expected in (("true", lost), ("false", kept)):
            with self.subTest(api=flag):
                url = f"/api/v1/recordings/?has_lost_data={flag}"
                results = self.client.get(url).json()["results"]
                self.assertEqual([r["code"] for r in results], [str(expected.code)])
        lost_data = {"term": "playability", "problem": "lost_data"}
        for node, expected in ((lost_data, lost), ({"not": lost_data}, kept)):
            with self.subTest(admin=node):
                document = json.dumps({"version": 1, "where": node})
                url = f"/admin/recordings/recording/?{urlencode({'filter': document})}"
                page = self.client.get(url)
                self.assertContains(page, expected.player_url())
                other = kept if expected is lost else lost
                self.assertNotContains(page, other.player_url())

    def test_an_unexplained_gap_is_flagged_and_a_declared_idle_is_not(self) -> None:
        start = int((now() - dt.timedelta(hours=1)).timestamp() * 1000)
        quiet = [full_snapshot(start, 2), click(start + 1_000)]
        later = [click(start + 8 * MINUTE_MS)]
        send_rrweb(self.client, FIXTURE_TOKEN, "a1", quiet, session_id="gap")
        send_rrweb(self.client, FIXTURE_TOKEN, "a2", later, session_id="gap")
        idle = [*quiet, custom(start + 1_000 + 5 * MINUTE_MS, "sessionIdle")]
        send_rrweb(self.client, FIXTURE_TOKEN, "b1", idle, session_id="idle")
        send_rrweb(self.client, FIXTURE_TOKEN, "b2", later, session_id="idle")

        self.assertEqual(
            self.compacted("gap").problems(), ["a 7-minute gap with no data"]
        )
        self.assertEqual(self.compacted("idle").problems(), [])
