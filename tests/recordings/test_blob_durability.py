"""Local blobs are on disk, names included, when put_chunks returns."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from django.core.files.base import ContentFile
from django.test import SimpleTestCase, override_settings

from recordings import blobs
from recordings.blobs import AtomicFileSystemStorage, StorageError
from tests.base import temp_blob_storage


@contextmanager
def fsynced() -> Iterator[list[Path]]:
    """The paths of everything fsynced inside the block, in order."""
    real = os.fsync
    paths: list[Path] = []

    def fsync(fd: int) -> None:
        paths.append(Path(f"/proc/self/fd/{fd}").readlink())
        real(fd)

    with mock.patch.object(os, "fsync", fsync):
        yield paths


class BlobDurabilityTests(SimpleTestCase):
    def setUp(self) -> None:
        self.root = Path(self.enterContext(tempfile.TemporaryDirectory())) / "blobs"
        storages = {"recordings": temp_blob_storage(self.root)}
        self.enterContext(override_settings(STORAGES=storages))

    def test_files_and_their_folders_are_fsynced_each_folder_once(self) -> None:
        blobs.put_chunk("7/old/first.json.gz", b"0")  # an existing folder
        with fsynced() as paths:
            blobs.put_chunks(
                [
                    ("7/old/a.json.gz", b"1"),
                    ("7/old/b.json.gz", b"2"),
                    ("7/new/c.json.gz", b"3"),
                ]
            )
        files = [self.root / k for k in ("7/old/a.json.gz", "7/old/b.json.gz")]
        files.append(self.root / "7/new/c.json.gz")
        # The new folder's name is made durable in its parent when it is made.
        self.assertEqual(paths[:4], [files[0], files[1], self.root / "7", files[2]])
        self.assertEqual(sorted(paths[4:]), [self.root / "7/new", self.root / "7/old"])
        self.assertEqual((self.root / "7/new/c.json.gz").read_bytes(), b"3")

    def test_a_new_blob_is_written_in_place_and_an_existing_one_replaced(self) -> None:
        with fsynced() as paths:
            blobs.put_chunk("7/s/a.json.gz", b"first")
            blobs.put_chunk("7/s/a.json.gz", b"second")
        self.assertEqual((self.root / "7/s/a.json.gz").read_bytes(), b"second")
        # The rewrite went through a temporary file, renamed over the blob.
        self.assertTrue(any(p.name.startswith(".partial-") for p in paths))
        self.assertEqual([p.name for p in (self.root / "7/s").iterdir()], ["a.json.gz"])

    def test_a_failed_first_write_leaves_no_file(self) -> None:
        storage = AtomicFileSystemStorage(location=self.root, allow_overwrite=True)

        def no_space(fd: int, data: object) -> int:
            raise OSError(28, "No space left on device")

        with mock.patch.object(os, "write", no_space), self.assertRaises(OSError):
            storage.save("7/s/a.json.gz", ContentFile(b"data"))
        self.assertEqual(list((self.root / "7/s").iterdir()), [])
        with (
            mock.patch.object(os, "write", no_space),
            self.assertRaises(StorageError),
        ):
            blobs.put_chunks([("7/s/b.json.gz", b"x")])
        self.assertEqual(list((self.root / "7/s").iterdir()), [])
