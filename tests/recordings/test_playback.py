"""Playback through one module: the export streamed, one answer to storage errors."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse

from recordings import blobs
from recordings.models import Recording
from recordings.playback import archives, responses
from recordings.playback.transfer import MARKER_FIELDS
from recordings.services.compaction import recording_compact
from recordings.services.storage import events_by_key, recording_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, send_rrweb, session_events

T0 = 1_790_000_000_000


def moves(*stamps: int) -> list[dict[str, Any]]:
    """Mouse moves at these times (ms after T0), each told apart by its x."""
    return [
        {
            "type": 3,
            "data": {"source": 1, "positions": [{"x": i, "y": 0, "id": 1}]},
            "timestamp": T0 + stamp,
        }
        for i, stamp in enumerate(stamps)
    ]


def peak_bytes(work: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


class ExportTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)

    def send(self, batch: str, window: str, events: list[dict[str, Any]]) -> None:
        send_rrweb(self.client, FIXTURE_TOKEN, batch, events, "sess", window)

    def built_whole(self, recording: Recording, meta: Any) -> bytes:
        """The export as the API built it before it streamed."""
        windows = {
            window: recording_events(recording=recording, window_id=window)
            for window in recording.window_ids()
        }
        document = {
            "format": "replayhub-recording",
            "version": 1,
            "recording": meta,
            "person": None,
            "markers": list(recording.markers.in_time_order().values(*MARKER_FIELDS)),
            "comments": [],
            "tags": [],
            "events": [],
            "windows": windows,
        }
        return blobs.dumps(document)

    def streamed(self, recording: Recording, meta: Any) -> bytes:
        return b"".join(responses.export_chunks(recording=recording, meta=meta))

    def test_it_streams_the_document_it_built_whole(self) -> None:
        # Batches overlap in time, tie across batches, and window b starts first.
        self.send("b1", "b", moves(0, 50, 10))
        self.send("a1", "a", moves(100, 300, 200, 300))
        self.send("a2", "a", moves(150, 300, 250, 900))
        self.send("a3", "a", moves(300, 301))
        recording = Recording.objects.get()
        meta = {"session_id": recording.session_id, "note": "ünïcode"}
        self.assertEqual(recording.window_ids(), ["b", "a"])
        expected = self.built_whole(recording, meta)
        self.assertEqual(self.streamed(recording, meta), expected)

        recording_compact(recording=recording)
        recording.refresh_from_db()
        self.assertTrue(recording.compacted)  # each window sent as stored
        self.assertEqual(
            self.streamed(recording, meta), self.built_whole(recording, meta)
        )
        self.send("a4", "a", moves(120, 1000))  # loose again, inside the merged span
        recording.refresh_from_db()
        self.assertEqual(
            self.streamed(recording, meta), self.built_whole(recording, meta)
        )

    def test_the_api_sends_it_as_a_streamed_download(self) -> None:
        self.send("a1", "a", moves(0, 10))
        recording = Recording.objects.get()
        self.client.force_login(self.alice)
        response = self.client.get(f"/api/v1/recordings/{recording.code}/export/")
        self.assertEqual(response.status_code, 200)
        self.assertIsInstance(response, StreamingHttpResponse)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(
            response["Content-Disposition"],
            f'attachment; filename="replayhub-{recording.code}.json"',
        )
        doc = json.loads(response.getvalue())
        self.assertEqual(doc["recording"]["session_id"], "sess")
        events = recording_events(recording=recording)
        self.assertEqual(doc["windows"], {"a": events})

    def test_it_holds_about_one_batch_in_memory_whatever_the_size(self) -> None:
        recording, one_batch, size = self.long_recording(copies=30)
        exported = self.peak_of_export(recording)
        # Building it whole held every batch's events: about 30 times one batch.
        self.assertLess(exported, 3 * one_batch)
        recording_compact(recording=recording)  # one blob of 30 batches
        recording.refresh_from_db()
        self.assertLess(self.peak_of_export(recording), 3 * one_batch)

    def test_the_zip_of_exports_holds_about_one_batch_too(self) -> None:
        # The admin's "Export selected" zips documents as they stream.
        recording, one_batch, _size = self.long_recording(copies=30)
        recording_compact(recording=recording)
        recording.refresh_from_db()
        sizes: list[int] = []

        def zipped() -> None:
            pieces = responses.export_chunks(recording=recording, meta={})
            stream = archives.zip_stream([("a.json", pieces), ("b.json", [b"{}"])])
            sizes.append(sum(len(piece) for piece in stream))

        zipped()  # warm up
        peak = peak_bytes(zipped)
        self.assertGreater(sizes[-1], 180_000)  # compressed, all of it went out
        self.assertLess(peak, 3 * one_batch)

    def long_recording(self, copies: int) -> tuple[Recording, int, int]:
        """A recording of the largest real one's events sent `copies` times, each
        later than the last; the memory to read one of them; their JSON size."""
        events = session_events("idle-rotation.0")
        stamps = [event["timestamp"] for event in events]
        span = max(stamps) - min(stamps) + 1000
        for copy in range(copies):
            moved = [{**e, "timestamp": e["timestamp"] + copy * span} for e in events]
            self.send(f"copy-{copy}", "w", moved)
        recording = Recording.objects.get()
        keys = [recording.chunks.order_by("first_timestamp")[0].data_key]
        list(events_by_key(keys=keys))  # warm up, as the export is
        one_batch = peak_bytes(lambda: list(events_by_key(keys=keys)))
        return recording, one_batch, copies * len(blobs.dumps(events))

    def peak_of_export(self, recording: Recording) -> int:
        sizes: list[int] = []

        def export() -> None:
            chunks = responses.export_chunks(recording=recording, meta={})
            sizes.append(sum(len(chunk) for chunk in chunks))

        export()  # warm up
        peak = peak_bytes(export)
        self.assertGreater(sizes[-1], 30 * 180_000)  # all of it went out
        return peak


class StorageErrorTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        send_rrweb(self.client, FIXTURE_TOKEN, "a1", moves(0, 10), "sess", "a")
        self.recording = Recording.objects.get()
        recording_compact(recording=self.recording)  # now in storage
        for path in self.stored_blobs():
            path.unlink()  # gone from storage, still in the rows
        self.client.force_login(self.alice)

    def test_an_export_of_a_missing_window_blob_is_gone(self) -> None:
        send_rrweb(self.client, FIXTURE_TOKEN, "b1", moves(0, 10), "other", "b")
        recording = Recording.objects.get(session_id="other")
        recording_compact(recording=recording)
        self.assertTrue(recording.chunks.get().compacted_into)
        for path in self.stored_blobs():
            path.unlink()
        with self.assertLogs("recordings.services.storage", "ERROR"):
            response = self.client.get(f"/api/v1/recordings/{recording.code}/export/")
        # Missing from storage that answers: retrying cannot help (test_missing_blob).
        self.assertEqual(response.status_code, 410)
        self.assertEqual(response.json()["error"], "recording_data_missing")

    def test_every_reader_answers_the_same_503(self) -> None:
        self.take_storage_down()
        code = self.recording.code
        urls = [
            reverse("admin:recordings_recording_snapshots", args=[code]),
            reverse("admin:recordings_recording_snapshots", args=[code]) + "?window=a",
            f"/api/v1/recordings/{code}/snapshots/",
            f"/api/v1/recordings/{code}/export/",
        ]
        for url in urls:
            with self.subTest(url):
                response = self.client.get(url, headers={"Accept-Encoding": "gzip"})
                self.assertEqual(response.status_code, 503)
                self.assertEqual(
                    response.json(),
                    {
                        "error": "storage_unavailable",
                        "detail": "could not read the blobs",
                    },
                )
                self.assertEqual(
                    response["Retry-After"], str(settings.REPLAYHUB_INGEST_RETRY_AFTER)
                )
