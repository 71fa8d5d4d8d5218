"""Two requests of one session that overlap: the second to commit starts over.

Capture reads a session's ledger, scrubs and writes blobs, then commits only if
the ledger is still as read (recordings/capture/store_sql.py). Here the overlap
is made deterministic: while the first request writes its blobs (the storage
boundary), a second request of the same session is stored in full.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext

from recordings.capture import store_sql
from recordings.capture.store import IngestResult, recording_ingest_batches
from recordings.ingest.parse import SnapshotBatch
from recordings.models import Project, Recording, SessionLedger, SnapshotChunk
from tests.base import ReplayTestCase

SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
WINDOW = "01a202a4-57be-7561-8ae1-39f9f04fe709"
T0 = 1_795_340_661_622  # ms, 2026
Event = dict[str, Any]


def el(node_id: int, tag: str, attributes: dict[str, Any], *children: Any) -> Event:
    return {
        "type": 2,
        "tagName": tag,
        "attributes": attributes,
        "childNodes": list(children),
        "id": node_id,
    }


def txt(node_id: int, content: str) -> Event:
    return {"type": 3, "textContent": content, "id": node_id}


def page_with_blocked_panel() -> list[Event]:
    """A page load whose panel is blocked (`ph-no-capture`, a default selector)."""
    body = el(
        5,
        "body",
        {},
        el(10, "div", {"class": "ph-no-capture"}, el(12, "p", {}, txt(13, "x"))),
        el(30, "p", {}, txt(31, "visible")),
    )
    document = {"type": 0, "childNodes": [el(3, "html", {}, body)], "id": 1}
    return [
        {"type": 4, "data": {"href": "http://shop.test/", "width": 1, "height": 1}},
        {"type": 2, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}},
    ]


def text_added(parent_id: int, node_id: int, text: str) -> Event:
    add = {"parentId": parent_id, "nextId": None, "node": txt(node_id, text)}
    data = {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": [add]}
    return {"type": 3, "data": data}


def batch(uuid: str, events: list[Event], offset_ms: int = 0) -> SnapshotBatch:
    stamped = [{**e, "timestamp": T0 + offset_ms + i} for i, e in enumerate(events)]
    return SnapshotBatch(
        uuid=uuid,
        token="",
        session_id=SESSION,
        window_id=WINDOW,
        distinct_id="person-1",
        lib="web",
        lib_version="1.449.2",
        events=tuple(stamped),
    )


class CaptureVersionTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop")

    def ingest(self, *batches: SnapshotBatch) -> list[IngestResult]:
        return recording_ingest_batches(project=self.project, batches=list(batches))

    @contextmanager
    def meanwhile(self, other: Callable[[], object]) -> Iterator[list[int]]:
        """Run `other` (another request) between the next request's read and its
        commit; yields the number of chunk rows of each commit attempt."""
        real = store_sql.session_commit
        calls: list[int] = []

        def session_commit(read: Any, ledger: Any, recording: Any, chunks: Any) -> Any:
            calls.append(len(chunks))
            if len(calls) == 1:
                other()
            return real(read, ledger, recording, chunks)

        # Where capture looks it up (the name it imported).
        target = "recordings.capture.store.session_commit"
        with mock.patch(target, session_commit):
            yield calls

    def stored_text(self) -> str:
        return json.dumps(self.stored_events())

    def assert_rows_match_blobs(self) -> None:
        chunks = SnapshotChunk.objects.all()
        # Each batch once, in its own row; a losing attempt left nothing behind.
        self.assertEqual(self.stored_blobs(), [])
        self.assertEqual(len(self.stored_rows()), len(chunks))
        for chunk in chunks:
            self.assertEqual(len(self.chunk_events(chunk)), chunk.event_count)
        recording = Recording.objects.get()
        self.assertEqual(recording.event_count, sum(c.event_count for c in chunks))
        self.assertEqual(recording.size_bytes, sum(c.size_bytes for c in chunks))

    def test_a_batch_overtaken_by_its_page_load_is_scrubbed_with_its_state(
        self,
    ) -> None:
        page = batch("b-page", page_with_blocked_panel())
        inside = text_added(12, 40, "jane@corp.test")  # under the blocked panel
        outside = text_added(30, 41, "still visible")
        later = batch("b-later", [inside, outside], offset_ms=100)
        with self.meanwhile(lambda: self.ingest(page)) as calls:
            self.ingest(later)
        # Its first attempt, scrubbed without the panel's state, lost; the second
        # saw the blocked ids the page load left in the ledger.
        self.assertEqual(calls, [1, 1, 1])
        self.assertNotIn("jane@corp.test", self.stored_text())
        self.assertIn("still visible", self.stored_text())
        ledger = SessionLedger.objects.get()
        self.assertIn(40, ledger.scrub_state[WINDOW]["blocked"])
        self.assertEqual(ledger.batches_accepted, 2)
        self.assert_rows_match_blobs()  # the losing attempt wrote nothing

    def test_a_retry_racing_its_original_is_stored_once(self) -> None:
        first = batch("b-1", page_with_blocked_panel())
        with self.meanwhile(lambda: self.ingest(first)):
            results = self.ingest(first)
        self.assertEqual([r.stored for r in results], [False])
        self.assertEqual(SnapshotChunk.objects.count(), 1)
        ledger = SessionLedger.objects.get()
        self.assertEqual((ledger.batches_accepted, ledger.batches_duplicate), (1, 1))
        self.assert_rows_match_blobs()

    def test_counters_fold_both_requests(self) -> None:
        one = batch("b-1", page_with_blocked_panel())
        two = batch("b-2", [text_added(30, 50, "a"), text_added(30, 51, "b")], 5000)
        with self.meanwhile(lambda: self.ingest(one)):
            self.ingest(two)
        recording = Recording.objects.get()
        self.assertEqual(recording.event_count, 4)
        self.assertEqual(recording.duration_ms, 5001)
        self.assertEqual(recording.first_url, "http://shop.test/")
        self.assertTrue(recording.has_full_snapshot)
        self.assert_rows_match_blobs()

    def test_a_batch_of_a_known_session_costs_one_read_and_one_write(self) -> None:
        self.ingest(batch("b-1", page_with_blocked_panel()))
        with CaptureQueriesContext(connection) as queries:
            self.ingest(batch("b-2", [text_added(30, 50, "a")], 1000))
        statements = [
            q["sql"]
            for q in queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]
        # PostgreSQL: one SELECT and one WITH ... INSERT; SQLite: the write is three.
        expected = 2 if connection.vendor == "postgresql" else 4
        self.assertEqual(len(statements), expected, statements)

    def test_a_duplicate_in_one_request_is_stored_once(self) -> None:
        first = batch("b-1", page_with_blocked_panel())
        results = self.ingest(first, first)
        self.assertEqual(sorted(r.stored for r in results), [False, True])
        self.assertEqual(SnapshotChunk.objects.count(), 1)
        self.assertEqual(SessionLedger.objects.get().batches_duplicate, 1)

    def test_a_dropped_page_still_moves_the_scrub_state(self) -> None:
        from privacy.models import PrivacySettings

        PrivacySettings.objects.create(project=self.project, url_blocklist="/secret")
        page = page_with_blocked_panel()
        page[0]["data"]["href"] = "http://shop.test/secret"
        self.ingest(batch("b-1", page))
        self.assertFalse(SnapshotChunk.objects.exists())
        state = SessionLedger.objects.get().scrub_state
        self.assertEqual(state[WINDOW]["url"], "http://shop.test/secret")
