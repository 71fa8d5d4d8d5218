"""The one door to recording blob storage (STORAGES["recordings"]).

Nothing else in ReplayHub touches the storage backend, so local files and S3 behave
the same to every caller. Blobs are gzip-compressed JSON arrays of rrweb events.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from recordings.ingest.rrweb import FULL_SNAPSHOT

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,100}")


class AtomicFileSystemStorage(FileSystemStorage):
    """Local blobs written whole or not at all, and on disk before we answer 200.

    Django's FileSystemStorage truncates an existing file and rewrites it in place: a
    worker killed mid-write would leave a committed chunk pointing at half a blob.
    Here a blob that exists is replaced through a temporary file and a rename. A new
    blob is written straight under its name: no row points at a new key before it
    is written (capture adds a fresh generation to every key), so a half-written
    file is only an orphan, which the orphan sweeper deletes.

    Every file is fsynced, and so is its directory, once per directory for a batch
    of blobs: fsync of a file does not make its name durable (fsync(2)).
    """

    def _save(self, name: str, content: File[Any]) -> str:
        self.save_all([(name, b"".join(content.chunks()))])
        return name

    def save_all(self, blobs: list[tuple[str, bytes]]) -> None:
        """Write blobs durably; the directories they are in are fsynced once each."""
        directories = set()
        for name, data in blobs:
            path = Path(self.path(name))
            self._make_directory(path.parent)
            self._write(path, data)
            directories.add(path.parent)
        for directory in directories:
            _fsync_directory(directory)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            self._replace(path, data)
            return
        try:
            self._write_fd(fd, data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def _replace(self, path: Path, data: bytes) -> None:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        temp = Path(name)
        try:
            self._write_fd(fd, data)
            temp.replace(path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _write_fd(self, fd: int, data: bytes) -> None:
        try:
            if self.file_permissions_mode is not None:
                os.fchmod(fd, self.file_permissions_mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _make_directory(self, directory: Path) -> None:
        """Create a missing directory and make its name durable (fsync its parent)."""
        if directory.is_dir():
            return
        self._make_directory(directory.parent)
        try:
            directory.mkdir(self.directory_permissions_mode or 0o777)
        except FileExistsError:
            if not directory.is_dir():
                raise
            return  # another thread made it, and fsyncs the parent
        if self.directory_permissions_mode is not None:
            directory.chmod(self.directory_permissions_mode)  # whatever the umask
        _fsync_directory(directory.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StorageError(Exception):
    """Blob storage failed; the caller answers 503 so that the client retries."""


class BlobMissing(StorageError):
    """Storage answers, but this key is not in it (deleted, or never restored with
    the database): retrying cannot help. A StorageError still, so that whatever
    does not tell the two apart goes on treating it as a failure."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"blob {key} is missing: {detail}")
        self.key = key


def _read_failed(key: str, exc: Exception) -> StorageError:
    """The error for a failed read: BlobMissing when the key is not there but the
    store is (a whole store gone, an unmounted disk or a missing bucket, is down)."""
    if _not_found(exc) and _store_answers():
        return BlobMissing(key, str(exc))
    return StorageError(f"could not read blob {key}: {exc}")


def _not_found(exc: Exception) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True  # local disk, and django-storages' S3 open() after a 404 HEAD
    response = getattr(exc, "response", None)  # botocore's ClientError
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code")
    return code in {"NoSuchKey", "404", "NotFound"}


def _store_answers() -> bool:
    """Whether the store itself is there: the blob folder, or the bucket."""
    storage = _storage()
    try:
        if isinstance(storage, FileSystemStorage):
            return Path(storage.location).is_dir()
        if isinstance(storage, S3Storage):
            client = storage.connection.meta.client
            client.head_bucket(Bucket=storage.bucket_name)
    except Exception:
        return False
    return True


def _storage() -> Storage:
    return storages["recordings"]


def _segment(value: str) -> str:
    """A path segment from a client-chosen id: kept when plain, hashed otherwise.

    >>> _segment("01a202a4-57be-7561-8ae1-39f845ed8af5")
    '01a202a4-57be-7561-8ae1-39f845ed8af5'
    >>> _segment("../etc/passwd")[:3]
    'h-_'
    """
    if _SAFE_SEGMENT.fullmatch(value):
        return value
    return "h-_" + hashlib.sha256(value.encode()).hexdigest()[:40]


def chunk_key(
    project_id: int, session_id: str, batch_id: str, generation: str = ""
) -> str:
    """Where one batch of a session lives; capture adds a new generation per write.

    >>> chunk_key(7, "01a2-sess", "01a2-batch")
    '7/01a2-sess/01a2-batch.json.gz'
    >>> chunk_key(7, "01a2-sess", "01a2-batch", "3f2a")
    '7/01a2-sess/01a2-batch.3f2a.json.gz'
    """
    name = _segment(batch_id) + (f".{_segment(generation)}" if generation else "")
    return f"{project_id}/{_segment(session_id)}/{name}.json.gz"


def dumps(value: Any) -> bytes:
    """JSON bytes; raises ValueError for data nested too deeply to serialise.

    orjson stops at 254 levels of nesting, which a FullSnapshot of a deep DOM can
    exceed (every DOM level is two JSON levels); the standard library goes deeper.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        try:
            return json.dumps(value, separators=(",", ":")).encode()
        except RecursionError:
            raise ValueError("events are nested too deeply to store") from None


def compress(raw: bytes) -> bytes:
    # mtime=0 keeps a batch's bytes deterministic: a retry rewrites the same blob.
    return gzip.compress(raw, compresslevel=6, mtime=0)


def compress_arrays(arrays: list[bytes]) -> bytes:
    """Gzip non-empty JSON arrays as the one array of all their items.

    Streams the items into the compressor rather than joining them first, so no
    uncompressed copy of the whole is made (small items are fed a few hundred KiB
    at a time). One array gives compress()'s bytes.
    """
    if len(arrays) == 1:
        return compress(arrays[0])
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    pending: list[bytes | memoryview] = [b"["]
    held = 0
    for index, array in enumerate(arrays):
        item = memoryview(array)[1:-1]
        if index:
            pending.append(b",")
        if len(item) >= _FEED_BYTES:  # fed as it is: joining would copy it
            out += [compressor.compress(b"".join(pending)), compressor.compress(item)]
            pending, held = [], 0
            continue
        pending.append(item)
        held += len(item)
        if held >= _FEED_BYTES:
            out.append(compressor.compress(b"".join(pending)))
            pending, held = [], 0
    pending.append(b"]")
    out.append(compressor.compress(b"".join(pending)))
    out.append(compressor.flush())
    return b"".join(out)


_FEED_BYTES = 256 * 1024


def window_key(
    project_id: int, session_id: str, window_id: str, generation: str
) -> str:
    """Where a compacted window of a session lives; a new generation per compaction.

    >>> window_key(7, "01a2-sess", "01a2-win", "3f2a")
    '7/01a2-sess/window-01a2-win.3f2a.json.gz'
    """
    window = _segment(window_id) if window_id else "default"
    return f"{project_id}/{_segment(session_id)}/window-{window}.{generation}.json.gz"


def encode_events(events: Iterable[dict[str, Any]]) -> bytes:
    return compress(dumps(list(events)))


# How a compacted window is cut into segments (time slices the player can fetch
# one by one): the first holds everything up to the first full snapshot and then
# about this long of the recording, within this many bytes of JSON, so the first
# frame waits for little; the later ones are bounded the same way, larger. A
# single event bigger than the bound is a segment of its own. Each cut costs
# compression (deflate starts again with no history) and a request, so later
# segments are cut mostly by size: 1 MiB of JSON parses in about 10 ms, never a
# long task. bench/playback/player.py and docs/benchmarks/playback.md give the figures.
FIRST_SEGMENT_MS = 30_000
FIRST_SEGMENT_BYTES = 256 * 1024
SEGMENT_MS = 300_000
SEGMENT_BYTES = 1024 * 1024
# The gzip header zlib writes (no name, no time) and the empty final deflate block
# that closes a stream cut at a full flush.
GZIP_HEADER_BYTES = 10
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_BLOCK = b"\x03\x00"
# What segment_member adds around a segment's stored bytes: header, final block,
# CRC-32 and size.
ENVELOPE_BYTES = 20


class Segment(NamedTuple):
    """One time slice of a segmented window blob."""

    offset: int  # where its deflate bytes start in the blob
    length: int  # how many there are (they end at a full flush)
    first_ms: int  # its first and last event's timestamp
    last_ms: int
    events: int  # how many events it holds
    raw: int  # the bytes of JSON they inflate to (its fragment)
    crc: int  # the CRC-32 of that fragment, for the gzip trailer


def segment_ends(
    times: Sequence[int], sizes: Sequence[int], full_snapshot: int | None
) -> list[int]:
    """Where each segment of a window's sorted events ends (exclusive indices).

    `sizes` are the events' JSON bytes; `full_snapshot` the index of the first one.

    >>> segment_ends([0, 1_000, 40_000, 50_000, 400_000], [10] * 5, 1)
    [2, 4, 5]
    >>> segment_ends([0, 1, 2], [300_000, 10, 10], None)
    [1, 3]
    >>> segment_ends([], [], None)
    []
    """
    ends: list[int] = []
    start = 0
    while start < len(times):
        first = not ends
        span, cap = (
            (FIRST_SEGMENT_MS, FIRST_SEGMENT_BYTES)
            if first
            else (SEGMENT_MS, SEGMENT_BYTES)
        )
        # The first segment always reaches the full snapshot: the first frame.
        end = full_snapshot + 1 if first and full_snapshot is not None else start + 1
        held = sum(sizes[start:end])
        origin = times[end - 1]
        while end < len(times) and times[end] - origin < span:
            if held + sizes[end] > cap:
                break
            held += sizes[end]
            end += 1
        ends.append(end)
        start = end
    return ends


def encode_segmented(events: list[dict[str, Any]]) -> tuple[bytes, list[Segment]]:
    """Gzip a window's sorted events as one JSON array, cut into segments.

    The blob is one ordinary gzip stream (every reader, browsers included, takes
    it whole), with a full flush at the end of each segment: no segment refers to
    the bytes of another, so one is served alone by wrapping its stored bytes in a
    gzip header and trailer (segment_member), never inflated and deflated again.
    Each segment inflates to a fragment of the array: the first starts with `[`,
    the others with `,`, the last ends with `]`.
    """
    items = [dumps(event) for event in events]
    times = [int(event["timestamp"]) for event in events]
    snapshot = next(
        (i for i, event in enumerate(events) if event.get("type") == FULL_SNAPSHOT),
        None,
    )
    ends = segment_ends(times, [len(item) + 1 for item in items], snapshot) or [0]
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    segments: list[Segment] = []
    offset = start = 0
    for index, end in enumerate(ends):
        fragment = b"".join(
            [
                b"," if index else b"[",
                b",".join(items[start:end]),
                b"]" if index == len(ends) - 1 else b"",
            ]
        )
        data = compressor.compress(fragment) + compressor.flush(zlib.Z_FULL_FLUSH)
        head = GZIP_HEADER_BYTES if index == 0 else 0  # zlib's header comes first
        first_ms, last_ms = (times[start], times[end - 1]) if end > start else (0, 0)
        segments.append(
            Segment(
                offset + head,
                len(data) - head,
                first_ms,
                last_ms,
                end - start,
                len(fragment),
                zlib.crc32(fragment),
            )
        )
        out.append(data)
        offset += len(data)
        start = end
    out.append(compressor.flush())
    return b"".join(out), segments


def segment_member(stored: bytes, segment: Segment) -> bytes:
    """A segment's stored bytes as a gzip member of their own: 20 bytes around them."""
    trailer = struct.pack("<II", segment.crc, segment.raw & 0xFFFFFFFF)
    return _GZIP_HEADER + stored + _FINAL_BLOCK + trailer


def segment_fragment(stored: bytes) -> bytes:
    """A segment's JSON fragment, inflated (for a client that takes no gzip)."""
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(stored)
    except zlib.error as exc:
        raise StorageError(f"could not inflate a segment: {exc}") from exc


def put_chunk(key: str, data: bytes) -> None:
    put_chunks([(key, data)])


def put_chunks(blobs: list[tuple[str, bytes]]) -> None:
    """Write blobs; all of them are durable when this returns."""
    storage = _storage()
    try:
        if isinstance(storage, AtomicFileSystemStorage):
            storage.save_all(blobs)  # one directory fsync for a session's blobs
            return
        for key, data in blobs:
            storage.save(key, ContentFile(data))
    except Exception as exc:  # any backend failure: disk full, S3 down, permissions
        keys = ", ".join(key for key, _data in blobs)
        raise StorageError(f"could not write blob {keys}: {exc}") from exc


def open_chunk(key: str) -> list[dict[str, Any]]:
    return decode(open_raw(key), key)


def decode(data: bytes, key: str) -> list[dict[str, Any]]:
    """The events in a blob's (or a live chunk row's) gzip bytes."""
    try:
        events: list[dict[str, Any]] = orjson.loads(gzip.decompress(data))
    except Exception as exc:  # corrupted on the way or on disk
        raise StorageError(f"could not decode blob {key}: {exc}") from exc
    return events


def open_raw(key: str) -> bytes:
    """A blob's stored (gzip) bytes, to send as they are with Content-Encoding."""
    try:
        with _storage().open(key, "rb") as handle:
            data: bytes = handle.read()
    except Exception as exc:
        raise _read_failed(key, exc) from exc
    return data


def read_range(key: str, offset: int, length: int) -> bytes:
    """`length` stored bytes of a blob from `offset`: a seek on local disk, a ranged
    GET on S3, never the whole blob."""
    storage = _storage()
    try:
        if isinstance(storage, FileSystemStorage):
            with Path(storage.path(key)).open("rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
        elif isinstance(storage, S3Storage):
            name = storage._normalize_name(clean_name(key))
            answer = storage.bucket.Object(name).get(
                Range=f"bytes={offset}-{offset + length - 1}"
            )
            data = answer["Body"].read()
        else:
            with storage.open(key, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
    except Exception as exc:
        raise _read_failed(key, exc) from exc
    if len(data) != length:
        raise StorageError(f"blob {key} is shorter than its segment index says")
    return bytes(data)


def read_raw(key: str, size: int) -> Iterator[bytes]:
    """A blob's stored (gzip) bytes, `size` at a time: passed on, never held whole."""
    try:
        with _storage().open(key, "rb") as handle:
            while piece := handle.read(size):
                yield piece
    except Exception as exc:
        raise _read_failed(key, exc) from exc


def size(key: str) -> int:
    try:
        return _storage().size(key)
    except Exception as exc:
        raise StorageError(f"could not stat blob {key}: {exc}") from exc


def folders() -> Iterator[str]:
    """The folders holding blobs: one per session, "<project>/<session>"."""
    for project in _listdir("")[0]:
        for session in _listdir(project)[0]:
            yield f"{project}/{session}"


def folder_owner(folder: str) -> tuple[int, str | None] | None:
    """The project id and session id of a folder from folders(); the session id is
    None when it was hashed into the name, and all is None for a foreign folder.

    >>> folder_owner("7/01a2-sess")
    (7, '01a2-sess')
    >>> folder_owner("7/" + _segment("../etc/passwd"))
    (7, None)
    >>> folder_owner("tmp/x") is None
    True
    """
    project, _, session = folder.partition("/")
    if not project.isdigit() or not _SAFE_SEGMENT.fullmatch(session):
        return None
    return int(project), None if session.startswith("h-_") else session


def folder_blobs(folder: str) -> list[str]:
    """The keys of the blobs in a folder from folders()."""
    return [f"{folder}/{name}" for name in _listdir(folder)[1]]


def written_at(key: str) -> dt.datetime:
    try:
        return _storage().get_modified_time(key)
    except Exception as exc:
        raise StorageError(f"could not stat blob {key}: {exc}") from exc


def _listdir(folder: str) -> tuple[list[str], list[str]]:
    try:
        found: tuple[list[str], list[str]] = _storage().listdir(folder)
    except FileNotFoundError:
        return [], []  # nothing stored yet (local storage makes folders on write)
    except Exception as exc:
        raise StorageError(f"could not list blobs in {folder!r}: {exc}") from exc
    return found


def delete_blobs(keys: Iterable[str]) -> None:
    """Delete blobs, and on local disk the folders that this leaves empty.

    A folder is named after its session id (and its project): one left behind
    after an erasure, a retention purge or a delete would go on naming the session.
    Object storage has no folders to leave (a prefix goes with its last object).
    """
    storage = _storage()
    folders = set()
    for key in keys:
        try:
            storage.delete(key)
        except Exception as exc:
            raise StorageError(f"could not delete blob {key}: {exc}") from exc
        folders.add(key.rpartition("/")[0])
    for folder in folders:
        delete_folder_if_empty(folder)


def delete_folder_if_empty(folder: str) -> None:
    """On local disk, remove `folder` and then its parents while they are empty.

    rmdir removes only an empty directory, so nothing stored is ever lost: a batch
    written meanwhile keeps its folder, and one that capture is about to write
    into a folder removed under it fails with a 503 and is stored on the retry.
    """
    storage = _storage()
    if not isinstance(storage, FileSystemStorage) or not folder:
        return
    root = Path(storage.location)
    path = Path(storage.path(folder))
    while root in path.parents:
        try:
            path.rmdir()
        except OSError:  # not empty, or gone already
            return
        path = path.parent
