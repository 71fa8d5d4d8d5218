from __future__ import annotations

import gzip
import json
from typing import Any

from django.db import DatabaseError, connection
from django.test import override_settings

from recordings.models import Project, Recording, SnapshotChunk
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded

SNAPSHOT_CAPTURES = [
    "04-s-gzip-fullsnapshot",
    "05-s-gzip-incremental-console-network",
    "06-s-plain-json",
    "07-s-base64-form",
    "08a-s-idle-rotation-session-ending",
    "08b-s-idle-rotation-new-session",
    "10a-s-retry-first-attempt-500",
]


def expected_batches(name: str) -> dict[str, list[dict[str, Any]]]:
    """$snapshot uuid -> plain rrweb events, from the fixture's own decoding."""
    return {
        item["uuid"]: item["properties"]["$snapshot_data"] for item in decoded(name)
    }


class SnapshotCaptureTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)

    def test_it_stores_every_body_encoding(self) -> None:
        for name in SNAPSHOT_CAPTURES:
            with self.subTest(name):
                request = captured(name)
                response = request.send(self.client)
                self.assertEqual(response.status_code, 200, response.content)
                self.assertEqual(response.json(), {"status": 1})
                # Each batch's events in its chunk row, as sent; no blob yet.
                for batch_id, events in expected_batches(name).items():
                    chunk = SnapshotChunk.objects.get(batch_id=batch_id)
                    self.assertEqual(chunk.blob_key, "")
                    self.assertEqual(self.chunk_events(chunk), events)
                self.assertEqual(self.stored_blobs(), [])

    def test_it_answers_exactly_200_with_cors_headers(self) -> None:
        response = captured("04-s-gzip-fullsnapshot").send(self.client)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")
        self.assertIn("Retry-After", response["Access-Control-Expose-Headers"])

    def test_it_answers_the_cors_preflight(self) -> None:
        response = self.client.options(
            "/s/",
            headers={
                "Origin": "http://shop.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")
        self.assertIn("POST", response["Access-Control-Allow-Methods"])
        self.assertIn("content-type", response["Access-Control-Allow-Headers"])

    def test_it_indexes_the_recording(self) -> None:
        captured("04-s-gzip-fullsnapshot").send(self.client)
        captured("05-s-gzip-incremental-console-network").send(self.client)
        recording = Recording.objects.get()
        events = [
            event
            for name in (
                "04-s-gzip-fullsnapshot",
                "05-s-gzip-incremental-console-network",
            )
            for batch in expected_batches(name).values()
            for event in batch
        ]
        clicks = [
            e
            for e in events
            if e["type"] == 3 and e["data"]["source"] == 2 and e["data"]["type"] == 2
        ]
        timestamps = [e["timestamp"] for e in events]
        self.assertEqual(recording.session_id, "01a202a4-57be-7561-8ae1-39f845ed8af5")
        self.assertEqual(recording.project, self.project)
        self.assertTrue(recording.has_full_snapshot)
        self.assertEqual(recording.event_count, len(events))
        self.assertEqual(recording.click_count, len(clicks))
        console_errors = [
            e
            for e in events
            if e["type"] == 6
            and e["data"]["plugin"] == "rrweb/console@1"
            and e["data"]["payload"]["level"] == "error"
        ]
        self.assertEqual(len(console_errors), 2)  # console.error + the uncaught Error
        self.assertEqual(recording.console_error_count, len(console_errors))
        self.assertEqual(recording.duration_ms, max(timestamps) - min(timestamps))
        metas = sorted(
            (e["timestamp"], e["data"]["href"]) for e in events if e["type"] == 4
        )
        self.assertEqual(recording.first_url, metas[0][1])
        self.assertEqual(recording.lib, "web")
        self.assertEqual(recording.lib_version, "1.449.2")
        self.assertTrue(recording.distinct_id)
        self.assertEqual(
            recording.size_bytes, sum(c.size_bytes for c in recording.chunks.all())
        )

    def test_it_stores_a_retried_batch_once(self) -> None:
        first = captured("10a-s-retry-first-attempt-500")
        retry = captured("10b-s-retry-attempt-1")
        self.assertNotEqual(first.body, retry.body)  # new sent_at: other bytes
        self.assertEqual(first.send(self.client).status_code, 200)
        recording = Recording.objects.get()
        self.assertEqual(retry.send(self.client).status_code, 200)
        recording_after = Recording.objects.get()
        batches = expected_batches("10a-s-retry-first-attempt-500")
        self.assertEqual(SnapshotChunk.objects.count(), len(batches))
        self.assertEqual(recording_after.event_count, recording.event_count)
        self.assertEqual(recording_after.click_count, recording.click_count)
        self.assertEqual(len(self.stored_data()), len(batches))

    def test_it_keeps_windows_of_one_session_apart(self) -> None:
        captured("08a-s-idle-rotation-session-ending").send(self.client)
        captured("08b-s-idle-rotation-new-session").send(self.client)
        # 08a closes the old session, 08b opens the rotated one: two recordings.
        self.assertEqual(Recording.objects.count(), 2)
        rotated = Recording.objects.get(has_full_snapshot=True)
        self.assertEqual(len(rotated.window_ids()), 1)


class SnapshotRefusalTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        self.good = captured("04-s-gzip-fullsnapshot")

    def assertRefused(self, response: Any, status: int, error: str) -> None:
        self.assertEqual(response.status_code, status, response.content)
        body = response.json()
        self.assertEqual(body["error"], error)
        self.assertTrue(body["detail"])
        self.assertEqual(Recording.objects.count(), 0)
        self.assertEqual(self.stored_blobs(), [])

    def payload(self) -> Any:
        return json.loads(gzip.decompress(self.good.body))

    def send_json(self, payload: object) -> Any:
        return self.good.send(
            self.client, body=gzip.compress(json.dumps(payload).encode())
        )

    def test_it_rejects_an_unknown_token(self) -> None:
        payload = self.payload()
        for item in payload:
            item["properties"]["token"] = "phc_nope"
        self.assertRefused(self.send_json(payload), 401, "invalid_token")

    def test_it_rejects_a_missing_token(self) -> None:
        payload = self.payload()
        for item in payload:
            del item["properties"]["token"]
        self.assertRefused(self.send_json(payload), 401, "missing_token")

    def test_it_refuses_a_disabled_project(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(recording_enabled=False)
        self.assertRefused(self.good.send(self.client), 403, "recording_disabled")

    def test_it_rejects_broken_gzip(self) -> None:
        response = self.good.send(self.client, body=self.good.body[:200])
        self.assertRefused(response, 400, "invalid_gzip")

    def test_it_rejects_a_body_that_is_not_json(self) -> None:
        response = self.good.send(self.client, body=b"this is not json")
        self.assertRefused(response, 400, "invalid_json")

    def test_it_rejects_an_empty_body(self) -> None:
        response = self.good.send(self.client, body=b"")
        self.assertRefused(response, 400, "empty_body")

    def test_it_rejects_a_timestamp_that_is_no_time_before_writing_anything(
        self,
    ) -> None:
        payload = self.payload()
        # The first batch is fine, the last one is not: nothing at all is stored.
        payload[-1]["properties"]["$snapshot_data"].append(
            {"type": 3, "timestamp": "soon", "data": {"source": 1, "positions": []}}
        )
        self.assertRefused(self.send_json(payload), 400, "invalid_timestamp")

    def test_it_rejects_an_oversized_body(self) -> None:
        with self.settings(REPLAYHUB_INGEST_MAX_BYTES=1000):
            response = self.good.send(self.client)
        self.assertRefused(response, 413, "body_too_large")

    def test_it_rejects_a_decompression_bomb(self) -> None:
        bomb = gzip.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]")
        with self.settings(REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES=1024 * 1024):
            response = self.good.send(self.client, body=bomb)
        self.assertRefused(response, 413, "decompressed_too_large")


class SnapshotStorageFailureTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        self.request = captured("04-s-gzip-fullsnapshot")

    def break_storage(self) -> None:
        """The blob directory is replaced by a plain file: every write fails."""
        self.blob_dir.rmdir()
        self.blob_dir.write_text("not a directory")

    def restore_storage(self) -> None:
        self.blob_dir.unlink()
        self.blob_dir.mkdir()

    def test_it_stores_live_batches_while_storage_is_down(self) -> None:
        self.break_storage()
        try:
            response = self.request.send(self.client)
        finally:
            self.restore_storage()
        self.assertEqual(response.status_code, 200, response.content)
        batches = expected_batches("04-s-gzip-fullsnapshot")
        self.assertEqual(SnapshotChunk.objects.count(), len(batches))
        self.assertEqual(len(self.stored_rows()), len(batches))

    @override_settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0)  # every batch to storage
    def test_it_answers_503_when_storage_fails_and_stores_on_retry(self) -> None:
        self.break_storage()
        try:
            response = self.request.send(self.client)
        finally:
            self.restore_storage()
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "5")
        self.assertEqual(response.json()["error"], "temporarily_unavailable")
        self.assertEqual(Recording.objects.count(), 0)
        # The client retries once storage is back: everything lands, once.
        self.assertEqual(self.request.send(self.client).status_code, 200)
        batches = expected_batches("04-s-gzip-fullsnapshot")
        self.assertEqual(SnapshotChunk.objects.count(), len(batches))

    def test_it_answers_503_when_the_database_fails(self) -> None:
        def chunk_insert_fails(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            # PostgreSQL writes the chunk rows inside a WITH ... statement.
            if "INSERT INTO" in sql and "recordings_snapshotchunk" in sql:
                raise DatabaseError("connection lost")
            return execute(sql, params, many, context)

        with connection.execute_wrapper(chunk_insert_fails):
            response = self.request.send(self.client)
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "5")
        self.assertEqual(SnapshotChunk.objects.count(), 0)
        self.assertEqual(self.request.send(self.client).status_code, 200)
        batches = expected_batches("04-s-gzip-fullsnapshot")
        self.assertEqual(SnapshotChunk.objects.count(), len(batches))
