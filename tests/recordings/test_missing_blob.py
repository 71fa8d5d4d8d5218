"""A recording whose blob is gone answers 410 `recording_data_missing`, not 503.

Storage that is down is retried (503 + Retry-After); a key that is not in a store
that answers (deleted, or not restored with the database) never comes back: the
answer says so, the log names the key and the recording's code, and the admin
marks the recording. On local disk and on a real S3-protocol server (moto).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from recordings.models import Recording, WindowBlob
from recordings.services.compaction import recording_compact
from tests.base import ReplayTestCase, temp_blob_storage
from tests.capture import FIXTURE_TOKEN, captured
from tests.s3 import create_bucket, s3_client, s3_storage

if TYPE_CHECKING:
    _Contract = ReplayTestCase
else:
    _Contract = object


class MissingBlobContract(_Contract):
    """The behaviour; mixed into one class per backend."""

    def delete_blob(self, key: str) -> None:
        raise NotImplementedError

    def recordings_storage(self) -> dict[str, Any]:
        return temp_blob_storage(self.blob_dir)

    def setUp(self) -> None:
        super().setUp()
        storages = {**settings.STORAGES, "recordings": self.recordings_storage()}
        self.enterContext(override_settings(STORAGES=storages))
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        response = captured("04-s-gzip-fullsnapshot").send(self.client)
        self.assertEqual(response.status_code, 200, response.content)
        self.recording = Recording.objects.get()
        recording_compact(recording=self.recording)
        (self.window,) = self.recording.window_ids()
        self.key = WindowBlob.objects.get(recording=self.recording).key
        self.client.force_login(self.alice)

    def snapshots(self, **query: Any) -> Any:
        url = reverse(
            "admin:recordings_recording_snapshots", args=[self.recording.code]
        )
        return self.client.get(
            url, {"window": self.window, **query}, headers={"Accept-Encoding": "gzip"}
        )

    def assert_gone(self, response: Any) -> None:
        self.assertEqual(response.status_code, 410, response.content[:300])
        self.assertEqual(response.json()["error"], "recording_data_missing")
        self.assertNotIn("Retry-After", response)

    def test_it_plays_while_the_blob_is_there(self) -> None:
        self.assertEqual(self.snapshots().status_code, 200)
        self.assertEqual(self.snapshots(segment=0).status_code, 200)
        self.recording.refresh_from_db()
        self.assertIsNone(self.recording.data_missing_at)

    def test_the_player_gets_410_and_the_log_names_the_key(self) -> None:
        self.delete_blob(self.key)
        with self.assertLogs("recordings.services.storage", "ERROR") as logs:
            self.assert_gone(self.snapshots())
        (line,) = logs.output
        self.assertIn(self.key, line)
        self.assertIn(str(self.recording.code), line)
        self.recording.refresh_from_db()
        self.assertIsNotNone(self.recording.data_missing_at)

    def test_a_segment_gets_410(self) -> None:
        self.delete_blob(self.key)
        with self.assertLogs("recordings.services.storage", "ERROR"):
            self.assert_gone(self.snapshots(segment=0))

    def test_the_api_and_the_offline_file_get_410(self) -> None:
        self.delete_blob(self.key)
        code = self.recording.code
        with self.assertLogs("recordings.services.storage", "ERROR"):
            self.assert_gone(self.client.get(f"/api/v1/recordings/{code}/snapshots/"))
            self.assert_gone(self.client.get(f"/api/v1/recordings/{code}/export/"))
            offline = reverse("admin:recordings_recording_offline", args=[code])
            self.assert_gone(self.client.get(offline))

    def test_the_admin_shows_the_recording_is_missing_data(self) -> None:
        self.delete_blob(self.key)
        with self.assertLogs("recordings.services.storage", "ERROR"):
            self.snapshots()
        listing = self.client.get(reverse("admin:recordings_recording_changelist"))
        self.assertContains(listing, "⚠ data missing")
        player = reverse("admin:recordings_recording_play", args=[self.recording.code])
        self.assertContains(self.client.get(player), 'id="replayhub-data-missing"')
        detail = self.client.get(f"/api/v1/recordings/{self.recording.code}/").json()
        self.assertTrue(detail["problems"][0].startswith("data missing"))


class FileSystemMissingBlobTests(MissingBlobContract, ReplayTestCase):
    def delete_blob(self, key: str) -> None:
        (self.blob_dir / key).unlink()

    def test_a_store_that_is_gone_is_down_not_missing(self) -> None:
        # An unmounted disk: the whole blob folder is missing, not one key.
        moved = self.blob_dir.with_name(self.blob_dir.name + "-unmounted")
        self.blob_dir.rename(moved)
        self.addCleanup(moved.rename, self.blob_dir)
        response = self.snapshots()
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "5")
        self.recording.refresh_from_db()
        self.assertIsNone(self.recording.data_missing_at)


class S3MissingBlobTests(MissingBlobContract, ReplayTestCase):
    bucket: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.bucket = create_bucket()

    def recordings_storage(self) -> dict[str, Any]:
        self.location = f"recordings-{uuid.uuid4().hex[:8]}"
        return s3_storage(self.bucket, location=self.location)

    def delete_blob(self, key: str) -> None:
        s3_client().delete_object(Bucket=self.bucket, Key=f"{self.location}/{key}")

    def test_a_missing_bucket_is_down_not_missing(self) -> None:
        gone = s3_storage(f"gone-{uuid.uuid4().hex[:8]}", location=self.location)
        with override_settings(STORAGES={**settings.STORAGES, "recordings": gone}):
            response = self.snapshots()
        self.assertEqual(response.status_code, 503)
        self.recording.refresh_from_db()
        self.assertIsNone(self.recording.data_missing_at)
