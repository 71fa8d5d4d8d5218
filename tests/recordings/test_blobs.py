"""recordings.blobs keeps one contract on every backend: local disk and real S3.

The S3 tests talk to moto in server mode (tests/s3.py) through django-storages'
S3Storage, the backend production uses, so requests, keys and errors go over HTTP as
they would to AWS.
"""

from __future__ import annotations

import doctest
import gzip
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import SimpleTestCase, override_settings
from django.urls import reverse

import recordings.blobs
from recordings.blobs import (
    AtomicFileSystemStorage,
    StorageError,
    chunk_key,
    delete_blobs,
    encode_events,
    folders,
    open_chunk,
    put_chunk,
)
from recordings.models import Recording, SnapshotChunk
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase, temp_blob_storage
from tests.capture import FIXTURE_TOKEN, captured, decoded, full_session
from tests.s3 import create_bucket, s3_client, s3_storage, unreachable_s3_storage

FIXTURE = "04-s-gzip-fullsnapshot"
FIXTURE_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"  # the full session's

HOSTILE_IDS = [
    "../x",
    "a/b",
    "x" * 1000,
    "..",
    ".",
    "",
    "/etc/passwd",
    "a\\b",
    "..\\..\\x",
    "%2e%2e%2f",
    "two words",
    "\u00e9t\u00e9",
    "nul\x00byte",
    "~",
]


def events(marker: str = "first") -> list[dict[str, Any]]:
    return [
        {
            "type": 4,
            "data": {
                "href": f"http://shop.test/{marker}",
                "width": 1280,
                "height": 720,
            },
            "timestamp": 1_700_000_000_000,
        },
        {
            "type": 3,
            "data": {"source": 2, "type": 2, "id": 7, "x": 10, "y": 20},
            "timestamp": 1_700_000_000_500,
        },
    ]


def with_recordings_storage(storage: dict[str, Any]) -> override_settings:
    # override_settings(STORAGES=...) also drops django's cached storage backends.
    return override_settings(STORAGES={**settings.STORAGES, "recordings": storage})


if TYPE_CHECKING:
    _Contract = SimpleTestCase
else:
    _Contract = object


class BlobContractTests(_Contract):
    """The assertions every blob backend passes; mixed into one class per backend."""

    prefix: str  # where the storage keeps blobs inside its container

    def recordings_storage(self) -> dict[str, Any]:
        raise NotImplementedError

    def unreachable_storage(self) -> dict[str, Any]:
        raise NotImplementedError

    def container_keys(self) -> list[str]:
        """Every stored object of the container (temp dir, bucket), from its root."""
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()
        self.enterContext(with_recordings_storage(self.recordings_storage()))

    def stored_keys(self) -> list[str]:
        keys = self.container_keys()
        for key in keys:
            self.assertTrue(key.startswith(f"{self.prefix}/"), key)
        return sorted(key.removeprefix(f"{self.prefix}/") for key in keys)

    def test_it_reads_back_what_it_put(self) -> None:
        key = chunk_key(7, "01a2-sess", "01a2-batch")
        put_chunk(key, encode_events(events()))
        self.assertEqual(open_chunk(key), events())
        self.assertEqual(self.stored_keys(), [key])

    def test_it_rewrites_the_same_key_on_retry(self) -> None:
        key = chunk_key(7, "01a2-sess", "01a2-batch")
        self.assertEqual(encode_events(events()), encode_events(events()))
        put_chunk(key, encode_events(events()))
        put_chunk(key, encode_events(events()))  # a client retry: same bytes
        self.assertEqual(self.stored_keys(), [key])  # no "_a1b2c3" suffixed copy
        put_chunk(key, encode_events(events("second")))
        self.assertEqual(self.stored_keys(), [key])
        self.assertEqual(open_chunk(key), events("second"))

    def test_it_deletes_blobs(self) -> None:
        kept = chunk_key(7, "01a2-sess", "kept")
        gone = chunk_key(7, "01a2-sess", "gone")
        put_chunk(kept, encode_events(events()))
        put_chunk(gone, encode_events(events()))
        delete_blobs([gone])
        self.assertEqual(self.stored_keys(), [kept])
        with self.assertRaises(StorageError):
            open_chunk(gone)
        delete_blobs([gone])  # a repeated purge finds nothing and is fine
        self.assertEqual(self.stored_keys(), [kept])

    def test_deleting_a_sessions_last_blob_leaves_no_folder_named_after_it(
        self,
    ) -> None:
        kept = chunk_key(7, "kept-sess", "b-1")
        first, second = (chunk_key(7, "gone-sess", f"b-{n}") for n in (1, 2))
        for key in (kept, first, second):
            put_chunk(key, encode_events(events()))
        delete_blobs([first])
        self.assertEqual(sorted(folders()), ["7/gone-sess", "7/kept-sess"])
        delete_blobs([second])
        self.assertEqual(list(folders()), ["7/kept-sess"])
        self.assertEqual(self.stored_keys(), [kept])

    def test_it_keeps_hostile_ids_inside_their_session_prefix(self) -> None:
        pairs = [(session, "batch") for session in HOSTILE_IDS]
        pairs += [("sess", batch) for batch in HOSTILE_IDS]
        pairs += [("../../..", "../../x"), ("a/b", "a/b")]
        keys = {pair: chunk_key(7, *pair) for pair in pairs}
        for pair, key in keys.items():
            parts = key.split("/")
            self.assertEqual(len(parts), 3, (pair, key))
            self.assertEqual(parts[0], "7")
            for part in parts[1:]:
                self.assertNotIn(part, {"", ".", ".."})
                self.assertRegex(part, r"\A[A-Za-z0-9_.-]{1,120}\Z")
        self.assertEqual(len(set(keys.values())), len(keys))  # no two ids collide
        session_dirs = {
            key.rsplit("/", 1)[0] for (s, _), key in keys.items() if s == "sess"
        }
        self.assertEqual(session_dirs, {"7/sess"})

        for (session, batch), key in keys.items():
            put_chunk(key, encode_events(events(f"{session}|{batch}")))
        self.assertEqual(self.stored_keys(), sorted(keys.values()))
        for (session, batch), key in keys.items():
            self.assertEqual(open_chunk(key), events(f"{session}|{batch}"))

    def test_it_raises_storage_error_for_a_missing_blob(self) -> None:
        with self.assertRaises(StorageError):
            open_chunk(chunk_key(7, "01a2-sess", "never-stored"))

    def test_it_raises_storage_error_when_storage_is_unreachable(self) -> None:
        key = chunk_key(7, "01a2-sess", "01a2-batch")
        started = time.monotonic()
        with with_recordings_storage(self.unreachable_storage()):
            with self.assertRaises(StorageError):
                put_chunk(key, encode_events(events()))
            with self.assertRaises(StorageError):
                open_chunk(key)
            with self.assertRaises(StorageError):
                delete_blobs([key])
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(self.stored_keys(), [])


class FileSystemBlobTests(BlobContractTests, SimpleTestCase):
    prefix = "blobs"

    def setUp(self) -> None:
        self.root = Path(self.enterContext(tempfile.TemporaryDirectory()))
        super().setUp()

    def recordings_storage(self) -> dict[str, Any]:
        return temp_blob_storage(self.root / self.prefix)

    def unreachable_storage(self) -> dict[str, Any]:
        blocker = self.root / "not-a-directory"
        blocker.write_bytes(b"")
        return temp_blob_storage(blocker / "blobs")

    def container_keys(self) -> list[str]:
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and path.name != "not-a-directory"
        )

    def test_deleting_every_blob_leaves_no_folder_at_all(self) -> None:
        keys = [chunk_key(7, "01a2-sess", "b-1"), chunk_key(8, "01a3-sess", "b-1")]
        for key in keys:
            put_chunk(key, encode_events(events()))
        delete_blobs(keys)
        self.assertEqual(list((self.root / self.prefix).iterdir()), [])


class S3BlobTests(BlobContractTests, SimpleTestCase):
    bucket: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.bucket = create_bucket()

    def setUp(self) -> None:
        self.prefix = f"recordings-{uuid.uuid4().hex[:8]}"
        self.s3 = s3_client()
        for key in self.container_keys():  # what earlier tests of the class left
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        super().setUp()

    def recordings_storage(self) -> dict[str, Any]:
        return s3_storage(self.bucket, location=self.prefix)

    def unreachable_storage(self) -> dict[str, Any]:
        return unreachable_s3_storage(self.bucket)

    def container_keys(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


class BlobDoctests(SimpleTestCase):
    def test_the_examples_in_blobs_hold(self) -> None:
        results = doctest.testmod(recordings.blobs, report=False)
        self.assertGreater(results.attempted, 0)
        self.assertEqual(results.failed, 0)


class S3CaptureTests(ReplayTestCase):
    """A real posthog-js request, stored in and played back from S3."""

    bucket: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.bucket = create_bucket()

    def setUp(self) -> None:
        super().setUp()  # temp local blobs; replaced by S3 for this class
        self.location = f"recordings-{uuid.uuid4().hex[:8]}"
        self.enterContext(
            with_recordings_storage(s3_storage(self.bucket, location=self.location))
        )
        self.s3 = s3_client()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)

    def bucket_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.location)
        return sorted(obj["Key"] for obj in listing.get("Contents", []))

    def objects_put(self) -> int:
        """Every object version ever PUT under the location (versioned bucket)."""
        listing = self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.location)
        return len(listing.get("Versions", []))

    def send_session(self) -> Recording:
        for request in full_session():
            if request.path == "/s/":
                response = request.send(self.client)
                self.assertEqual(response.status_code, 200, response.content)
        return Recording.objects.get(session_id=FIXTURE_SESSION)

    def test_a_session_costs_one_put_per_window(self) -> None:
        self.s3.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        recording = self.send_session()
        played = recording_events(recording=recording)
        self.assertGreater(recording.chunks.count(), 10)
        # Live: every batch is committed in its row; nothing went to the bucket.
        self.assertEqual(self.objects_put(), 0)
        self.assertEqual(len(self.stored_rows()), recording.chunks.count())

        recording_compact(recording=recording)
        windows = recording.window_ids()
        self.assertEqual(self.objects_put(), len(windows))
        self.assertEqual(len(self.bucket_keys()), len(windows))
        self.assertEqual(self.stored_rows(), [])
        self.assertEqual(self.stored_blobs(), [])  # nothing went to the local disk
        recording.refresh_from_db()
        self.assertEqual(recording_events(recording=recording), played)
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_recording_snapshots", args=[recording.code])
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), played)

    def test_it_stores_batches_too_big_for_rows_in_the_bucket(self) -> None:
        with self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0):
            response = captured(FIXTURE).send(self.client)
        self.assertEqual(response.status_code, 200, response.content)
        expected = {
            item["uuid"]: item["properties"]["$snapshot_data"]
            for item in decoded(FIXTURE)
        }
        chunks = list(SnapshotChunk.objects.all())
        self.assertEqual({chunk.batch_id for chunk in chunks}, set(expected))
        # The request's batches of its one window share one object.
        keys = sorted({chunk.blob_key for chunk in chunks})
        self.assertEqual(self.bucket_keys(), [f"{self.location}/{k}" for k in keys])
        self.assertEqual(self.stored_rows(), [])
        for key in keys:
            obj = self.s3.get_object(Bucket=self.bucket, Key=f"{self.location}/{key}")
            raw = obj["Body"].read()
            sharing = sorted(
                (c for c in chunks if c.blob_key == key), key=lambda c: c.pk
            )
            self.assertEqual(sum(c.size_bytes for c in sharing), len(raw))
            self.assertEqual(
                orjson.loads(gzip.decompress(raw)),
                [e for c in sharing for e in expected[c.batch_id]],
            )
        recording = Recording.objects.get()
        played = recording_events(recording=recording)
        in_bucket = [e for batch in expected.values() for e in batch]
        self.assertEqual(played, sorted(in_bucket, key=lambda e: e["timestamp"]))

    def test_capture_and_live_playback_go_on_while_s3_is_down(self) -> None:
        with with_recordings_storage(unreachable_s3_storage(self.bucket)):
            response = captured(FIXTURE).send(self.client)
            self.assertEqual(response.status_code, 200, response.content)
            recording = Recording.objects.get()
            self.client.force_login(self.alice)
            url = reverse("admin:recordings_recording_snapshots", args=[recording.code])
            played = self.client.get(url)
        self.assertEqual(played.status_code, 200)
        self.assertEqual(len(played.json()), recording.event_count)
        self.assertEqual(self.bucket_keys(), [])

    def test_batches_too_big_for_rows_get_503_while_s3_is_down(self) -> None:
        with (
            self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0),
            with_recordings_storage(unreachable_s3_storage(self.bucket)),
            self.assertLogs("recordings.capture.endpoints", "ERROR"),
        ):
            response = captured(FIXTURE).send(self.client)
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(
            response["Retry-After"], str(settings.REPLAYHUB_INGEST_RETRY_AFTER)
        )
        self.assertEqual(Recording.objects.count(), 0)
        self.assertEqual(SnapshotChunk.objects.count(), 0)
        self.assertEqual(self.bucket_keys(), [])

        with self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0):
            response = captured(FIXTURE).send(self.client)  # S3 is back: the retry
        self.assertEqual(response.status_code, 200, response.content)
        keys = SnapshotChunk.objects.values_list("blob_key", flat=True).distinct()
        self.assertEqual(len(self.bucket_keys()), len(keys))
        self.assertTrue(self.bucket_keys())

    def test_playback_of_a_compacted_recording_answers_503_while_s3_is_down(
        self,
    ) -> None:
        self.assertEqual(captured(FIXTURE).send(self.client).status_code, 200)
        recording = Recording.objects.get()
        recording_compact(recording=recording)
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_recording_snapshots", args=[recording.code])
        with with_recordings_storage(unreachable_s3_storage(self.bucket)):
            response = self.client.get(url)
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"], "storage_unavailable")


class AtomicLocalWriteTests(SimpleTestCase):
    def test_a_failed_rewrite_leaves_the_previous_blob_whole(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            storage = AtomicFileSystemStorage(location=tmp, allow_overwrite=True)
            storage.save("a/b.json.gz", ContentFile(b"first version"))

            class Exploding(ContentFile[bytes]):
                def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
                    yield b"half of the se"
                    raise OSError("killed mid-write")

            with self.assertRaises(OSError):
                storage.save("a/b.json.gz", Exploding(b""))
            self.assertEqual(Path(tmp, "a/b.json.gz").read_bytes(), b"first version")
            self.assertEqual(
                sorted(p.name for p in Path(tmp, "a").iterdir()), ["b.json.gz"]
            )
