"""The orphan sweeper deletes blobs no chunk points at, once they are old enough.

Capture writes a batch too big for a row to a blob before the row that points at
it, and compaction a window's blob before the rows; a crash in between (or an
answer lost after the commit) leaves a blob with no row.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils.timezone import now

from recordings import blobs
from recordings.models import Project, Recording, SnapshotChunk
from recordings.services.compaction import recording_compact
from recordings.services.storage import orphan_blobs_delete, recording_events
from recordings.tasks import orphan_blobs_delete as orphan_blobs_delete_task
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, full_session, send_full_session_snapshots
from tests.s3 import create_bucket, s3_storage

SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
DAY = 24 * 3600


class OrphanBlobTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        # Batches too big for rows (here: all) are the blobs capture writes first.
        with self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0):
            send_full_session_snapshots(self.client)
        self.kept = self.stored_blobs()
        self.assertTrue(self.kept)

    def orphan(self, name: str, age_s: float, session: str = SESSION) -> Path:
        """A blob written `age_s` seconds ago that no row points at."""
        key = blobs.chunk_key(self.project.pk, session, name, "dead01")
        blobs.put_chunk(key, blobs.encode_events([]))
        path = self.blob_dir / key
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
        return path

    def sweep(self, grace_minutes: int = 60) -> int:
        before = now() - dt.timedelta(minutes=grace_minutes)
        return orphan_blobs_delete(written_before=before)

    def test_it_deletes_old_orphans_and_keeps_everything_a_row_points_at(
        self,
    ) -> None:
        old = self.orphan("crashed-before-commit", age_s=DAY)
        elsewhere = self.orphan("other-session", age_s=DAY, session="s-2")
        self.assertEqual(self.sweep(), 2)
        self.assertFalse(old.exists() or elsewhere.exists())
        self.assertEqual(self.stored_blobs(), self.kept)
        recording = Recording.objects.get(session_id=SESSION)
        self.assertTrue(recording_events(recording=recording))

    def test_it_keeps_young_orphans_whose_commit_may_be_under_way(self) -> None:
        young = self.orphan("being-committed", age_s=60)
        self.assertEqual(self.sweep(grace_minutes=60), 0)
        self.assertTrue(young.exists())

    def test_it_keeps_compacted_windows(self) -> None:
        recording = Recording.objects.get(session_id=SESSION)
        recording_compact(recording=recording)
        (window,) = {chunk.compacted_into for chunk in SnapshotChunk.objects.all()}
        path = self.blob_dir / window
        os.utime(path, (time.time() - DAY, time.time() - DAY))
        self.assertEqual(self.sweep(), 0)
        self.assertTrue(path.exists())

    def test_it_leaves_folders_capture_does_not_make_alone(self) -> None:
        foreign = self.blob_dir / "backups" / "x" / "keep.me"
        foreign.parent.mkdir(parents=True)
        foreign.write_bytes(b"not ours")
        os.utime(foreign, (time.time() - DAY, time.time() - DAY))
        self.assertEqual(self.sweep(), 0)
        self.assertTrue(foreign.exists())

    def test_it_removes_empty_session_folders_and_keeps_the_others(self) -> None:
        # Deletions used to leave their session's folder behind, empty.
        left = self.blob_dir / str(self.project.pk) / "erased-long-ago"
        left.mkdir(parents=True)
        foreign = self.blob_dir / "backups" / "empty"
        foreign.mkdir(parents=True)
        old = self.orphan("crashed-before-commit", age_s=DAY, session="s-2")
        self.assertEqual(self.sweep(), 1)
        self.assertFalse(left.exists() or old.parent.exists())
        self.assertTrue(foreign.exists())
        self.assertEqual(self.stored_blobs(), self.kept)

    def test_the_command_and_the_task_do_the_same(self) -> None:
        first = self.orphan("one", age_s=DAY)
        out = StringIO()
        call_command("delete_orphan_blobs", stdout=out)
        self.assertEqual(out.getvalue().strip(), "1 orphan blob(s) deleted")
        self.assertFalse(first.exists())
        second = self.orphan("two", age_s=DAY)
        self.assertEqual(orphan_blobs_delete_task.apply().get(), 1)
        self.assertFalse(second.exists())
        self.assertEqual(self.stored_blobs(), self.kept)

    def test_it_finds_nothing_to_do_in_empty_storage(self) -> None:
        for path in self.stored_blobs():
            path.unlink()
        SnapshotChunk.objects.all().delete()
        self.assertEqual(self.sweep(), 0)

    def test_a_folder_named_by_a_hash_is_swept_too(self) -> None:
        hostile = "../a session id/with slashes"
        payload = {
            "session_id": hostile,
            "batch_id": "b-1",
            "token": FIXTURE_TOKEN,
            "events": [{"type": 4, "data": {"href": "x"}, "timestamp": 1.8e12}],
        }
        response = self.client.post(
            "/api/v1/ingest/rrweb/", data=payload, content_type="application/json"
        )
        self.assertEqual(response.status_code, 200, response.content)
        kept = self.stored_blobs()
        old = self.orphan("lost", age_s=DAY, session=hostile)
        self.assertIn("/h-_", str(old))
        self.assertEqual(self.sweep(), 1)
        self.assertEqual(self.stored_blobs(), kept)


def with_recordings_storage(storage: dict[str, Any]) -> override_settings:
    return override_settings(STORAGES={**settings.STORAGES, "recordings": storage})


class S3OrphanBlobTests(ReplayTestCase):
    """The same sweep through django-storages' S3Storage (moto in server mode)."""

    def setUp(self) -> None:
        super().setUp()
        storage = s3_storage(create_bucket(), location=f"o-{uuid.uuid4().hex[:8]}")
        self.enterContext(with_recordings_storage(storage))
        Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        request = next(r for r in full_session() if r.path == "/s/")
        with self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0):  # a blob in the bucket
            self.assertEqual(request.send(self.client).status_code, 200)

    def test_it_lists_and_deletes_orphans_in_a_bucket(self) -> None:
        chunks = list(SnapshotChunk.objects.all())
        project_id = Recording.objects.get().project_id
        orphan = blobs.chunk_key(project_id, SESSION, "lost", "dead01")
        blobs.put_chunk(orphan, blobs.encode_events([]))
        folder = f"{project_id}/{SESSION}"
        self.assertEqual(list(blobs.folders()), [folder])
        stored = sorted(blobs.folder_blobs(folder))
        self.assertEqual(stored, sorted({orphan, *(c.blob_key for c in chunks)}))
        self.assertLess(blobs.written_at(orphan), now() + dt.timedelta(minutes=1))
        later = now() + dt.timedelta(minutes=1)  # every blob counts as old
        self.assertEqual(orphan_blobs_delete(written_before=later), 1)
        left = sorted(blobs.folder_blobs(folder))
        self.assertEqual(left, sorted({chunk.blob_key for chunk in chunks}))
