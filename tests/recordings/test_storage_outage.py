"""A hung object store costs a request seconds, not minutes, and breaks nothing.

The store is a real moto server of this module's own, paused with SIGSTOP: it
still accepts connections (the kernel does) and never answers, as a hung S3 does.
Every wait is bounded by the REPLAYHUB_S3_* settings, as in production.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.urls import reverse

from recordings.blobs import StorageError
from recordings.models import Recording, SnapshotChunk
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured
from tests.s3 import MotoServer, create_bucket, s3_storage

T = TypeVar("T")


def call_budget() -> float:
    """Seconds one storage call may take against a hung store: every attempt
    times out reading (the kernel still accepts connections), with up to 1 s of
    backoff before each retry."""
    attempts: int = settings.REPLAYHUB_S3_MAX_ATTEMPTS
    timeout = max(
        settings.REPLAYHUB_S3_CONNECT_TIMEOUT, settings.REPLAYHUB_S3_READ_TIMEOUT
    )
    return attempts * timeout + (attempts - 1) * 1.0


class HungStorageTests(ReplayTestCase):
    server: ClassVar[MotoServer]
    bucket: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = MotoServer.start()  # its own: pausing it stalls no other test
        cls.addClassCleanup(cls.server.stop)
        cls.bucket = create_bucket(endpoint_url=cls.server.endpoint_url)

    def setUp(self) -> None:
        super().setUp()  # temp local blobs; replaced by the S3 server here
        location = f"recordings-{uuid.uuid4().hex[:8]}"
        storage = s3_storage(
            self.bucket, location=location, endpoint_url=self.server.endpoint_url
        )
        self.enterContext(
            self.settings(STORAGES={**settings.STORAGES, "recordings": storage})
        )
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        self.client.force_login(self.alice)

    def timed_while_hung(self, call: Callable[[], T], calls: int = 1) -> T:
        """`call`'s result while the store hangs; it must come within the budget."""
        started = time.monotonic()
        with self.server.paused():
            result = call()
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, calls * call_budget() + 3.0)  # 3 s: a busy machine
        return result

    def recording(self) -> Recording:
        response = captured("04-s-gzip-fullsnapshot").send(self.client)
        self.assertEqual(response.status_code, 200, response.content)
        return Recording.objects.get()

    def test_playback_answers_503_with_retry_after_within_seconds(self) -> None:
        recording = self.recording()
        recording_compact(recording=recording)
        (window,) = recording.window_ids()
        url = reverse("admin:recordings_recording_snapshots", args=[recording.code])

        def play() -> Any:
            return self.client.get(
                url, {"window": window}, headers={"Accept-Encoding": "gzip"}
            )

        response = self.timed_while_hung(play)
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"], "storage_unavailable")
        self.assertEqual(
            response["Retry-After"], str(settings.REPLAYHUB_INGEST_RETRY_AFTER)
        )
        self.assertEqual(play().status_code, 200)  # the store is back

    def test_compaction_fails_fast_and_leaves_everything_as_it_was(self) -> None:
        recording = self.recording()
        before = recording_events(recording=recording)
        rows = SnapshotChunk.objects.order_by("pk").values_list(
            "blob_key", "compacted_into"
        )
        chunks = list(rows)

        def compact() -> None:
            with self.assertRaises(StorageError):
                recording_compact(recording=recording)

        self.timed_while_hung(compact)
        recording.refresh_from_db()
        self.assertFalse(recording.compacted)
        self.assertEqual(list(rows), chunks)
        self.assertEqual(recording_events(recording=recording), before)
        self.assertEqual(recording_compact(recording=recording), 1)  # retry
        self.assertEqual(recording_events(recording=recording), before)

    def test_capture_stores_live_batches_while_the_store_hangs(self) -> None:
        # Live batches are committed in their rows: the store is not on the way.
        started = time.monotonic()
        with self.server.paused():
            response = captured("04-s-gzip-fullsnapshot").send(self.client)
            self.assertEqual(response.status_code, 200, response.content)
            self.assertLess(time.monotonic() - started, 2.0)
            started = time.monotonic()
            self.assertEqual(self.client.get("/healthz").status_code, 200)
            self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(SnapshotChunk.objects.filter(data__isnull=False).exists())

    def test_a_batch_too_big_for_rows_gets_503_within_seconds(self) -> None:
        # Its blob write, then the clean-up of what it wrote: two bounded calls.
        with (
            self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0),
            self.assertLogs("recordings.capture.endpoints", "ERROR"),
        ):
            response = self.timed_while_hung(
                lambda: captured("04-s-gzip-fullsnapshot").send(self.client), calls=2
            )
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response.json()["error"], "temporarily_unavailable")
        self.assertFalse(SnapshotChunk.objects.exists())
