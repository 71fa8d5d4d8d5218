from __future__ import annotations

import datetime as dt
import gzip
from io import StringIO
from typing import Any
from unittest import mock

import orjson
from django.core.management import call_command
from django.urls import reverse
from django.utils.timezone import now

from privacy.models import PrivacySettings
from recordings.models import Project, Recording, SessionLedger, SnapshotChunk
from recordings.services import storage
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events, recording_purge
from recordings.tasks import recordings_compact as recordings_compact_task
from replayhub.celery import app
from tests.base import ReplayTestCase
from tests.capture import (
    FIXTURE_TOKEN,
    captured,
    full_session,
    send_full_session_snapshots,
)

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"


class CompactionTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        send_full_session_snapshots(self.client)
        self.recording = Recording.objects.get(session_id=MAIN_SESSION)
        self.before = recording_events(recording=self.recording)
        self.loose_rows = len(self.stored_rows())

    def make_idle(self, minutes: int = 60) -> None:
        Recording.objects.update(last_batch_at=now() - dt.timedelta(minutes=minutes))

    def eager_celery(self) -> None:
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)

    def test_it_merges_a_window_into_one_blob_with_the_same_events(self) -> None:
        self.assertGreater(self.loose_rows, 10)
        self.assertEqual(self.stored_blobs(), [])  # live: all in the rows
        windows = recording_compact(recording=self.recording)
        self.recording.refresh_from_db()
        self.assertEqual(windows, 1)
        self.assertTrue(self.recording.compacted)
        # The rows gave up their bytes to the one window blob, and stay (retries).
        chunks = self.recording.chunks.all()
        self.assertEqual(len(chunks), self.loose_rows)
        self.assertFalse(chunks.filter(data__isnull=False).exists())
        self.assertEqual(self.stored_rows(), [])
        blobs = self.stored_blobs()
        session_blobs = [b for b in blobs if MAIN_SESSION in str(b)]
        self.assertEqual(len(session_blobs), 1)
        self.assertEqual(recording_events(recording=self.recording), self.before)
        self.assertEqual(self.recording.size_bytes, session_blobs[0].stat().st_size)

    def test_the_sweeper_compacts_only_idle_recordings(self) -> None:
        self.eager_celery()
        self.assertEqual(recordings_compact_task.apply().get(), 0)  # still live
        self.make_idle()
        compacted = recordings_compact_task.apply().get()
        assert isinstance(compacted, int)  # not skipped: no other run holds the job
        self.assertGreaterEqual(compacted, 1)
        self.recording.refresh_from_db()
        self.assertTrue(self.recording.compacted)
        self.assertEqual(recordings_compact_task.apply().get(), 0)  # nothing left

    def test_playback_of_a_compacted_window_is_the_stored_gzip(self) -> None:
        recording_compact(recording=self.recording)
        (window,) = self.recording.window_ids()
        self.client.force_login(self.alice)
        url = reverse(
            "admin:recordings_recording_snapshots", args=[self.recording.code]
        )
        response = self.client.get(
            url, {"window": window}, headers={"Accept-Encoding": "gzip, br"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Encoding"], "gzip")
        self.assertEqual(orjson.loads(gzip.decompress(response.content)), self.before)
        plain = self.client.get(url, {"window": window})
        self.assertNotIn("Content-Encoding", plain)
        self.assertEqual(plain.json(), self.before)

    def test_a_late_retry_is_still_recognised_and_new_data_is_merged_later(
        self,
    ) -> None:
        recording_compact(recording=self.recording)
        chunks = SnapshotChunk.objects.count()
        first = next(r for r in full_session() if r.path == "/s/")
        self.assertEqual(first.send(self.client).status_code, 200)  # an old retry
        self.assertEqual(SnapshotChunk.objects.count(), chunks)
        self.recording.refresh_from_db()
        self.assertTrue(self.recording.compacted)

    def test_a_batch_arriving_after_compaction_plays_and_is_merged_next_time(
        self,
    ) -> None:
        recording_compact(recording=self.recording)
        payload = orjson.loads(gzip.decompress(captured("04-s-gzip-fullsnapshot").body))
        for item in payload:
            item["uuid"] += "-late"
        body = gzip.compress(orjson.dumps(payload))
        self.assertEqual(
            captured("04-s-gzip-fullsnapshot").send(self.client, body=body).status_code,
            200,
        )
        self.recording.refresh_from_db()
        self.assertFalse(self.recording.compacted)
        grown = recording_events(recording=self.recording)
        self.assertGreater(len(grown), len(self.before))
        self.make_idle()
        out = StringIO()
        call_command("compact_recordings", stdout=out)
        self.assertIn("1 recording(s) to compact", out.getvalue())
        self.recording.refresh_from_db()
        self.assertTrue(self.recording.compacted)
        self.assertEqual(recording_events(recording=self.recording), grown)
        session_blobs = [b for b in self.stored_blobs() if MAIN_SESSION in str(b)]
        self.assertEqual(len(session_blobs), 1)

    def test_purging_a_compacted_recording_leaves_no_blob(self) -> None:
        recording_compact(recording=self.recording)
        recording_purge(recording=self.recording)
        self.assertEqual([b for b in self.stored_blobs() if MAIN_SESSION in str(b)], [])


class RecordingRulesAtCompactionTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        captured("04-s-gzip-fullsnapshot").send(self.client)  # a 6-second session
        self.recording = Recording.objects.get()

    def test_a_session_shorter_than_the_minimum_is_not_kept(self) -> None:
        PrivacySettings.objects.update_or_create(
            project=self.project, defaults={"minimum_duration_ms": 60_000}
        )
        self.assertEqual(recording_compact(recording=self.recording), 0)
        self.assertFalse(Recording.objects.exists())
        self.assertEqual(self.stored_blobs(), [])
        ledger = SessionLedger.objects.get(session_id=self.recording.session_id)
        self.assertEqual(ledger.refusals, {"below_minimum_duration": 1})

    def test_a_long_enough_session_is_kept(self) -> None:
        PrivacySettings.objects.update_or_create(
            project=self.project, defaults={"minimum_duration_ms": 1_000}
        )
        self.assertEqual(recording_compact(recording=self.recording), 1)
        self.assertTrue(Recording.objects.get().compacted)


class PlaybackDuringCompactionTests(ReplayTestCase):
    def test_events_read_while_compaction_moves_the_rows_are_all_there(self) -> None:
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        send_full_session_snapshots(self.client)
        recording = Recording.objects.get(session_id=MAIN_SESSION)
        before = recording_events(recording=recording)
        real = storage.chunk_data_keys
        moved: list[bool] = []

        def keys_then_compaction(**kwargs: Any) -> list[str]:
            keys = real(**kwargs)
            if not moved:  # compaction commits between the key read and the reads
                moved.append(True)
                recording_compact(recording=recording)
            return keys

        with mock.patch.object(storage, "chunk_data_keys", keys_then_compaction):
            during = recording_events(recording=recording)
        self.assertEqual(moved, [True])
        self.assertEqual(during, before)
