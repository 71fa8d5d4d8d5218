"""The one door to recording blob storage (STORAGES["recordings"]).

Nothing else in ReplayHub touches the storage backend, so local files and S3 behave
the same to every caller. Blobs are gzip-compressed JSON arrays of rrweb events.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,100}")


class AtomicFileSystemStorage(FileSystemStorage):
    """Local blobs written whole or not at all, and on disk before we answer 200.

    Django's FileSystemStorage truncates an existing file and rewrites it in place: a
    worker killed mid-write would leave a committed chunk pointing at half a blob.
    Here a blob is written to a temporary file, fsynced, then renamed over the key.
    """

    def _save(self, name: str, content: File[Any]) -> str:
        target = Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name_of_temp = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        temp = Path(name_of_temp)
        try:
            with os.fdopen(fd, "wb") as out:
                for piece in content.chunks():
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            if self.file_permissions_mode is not None:
                temp.chmod(self.file_permissions_mode)
            temp.replace(target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return name


class StorageError(Exception):
    """Blob storage failed; the caller answers 503 so that the client retries."""


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


def chunk_key(project_id: int, session_id: str, batch_id: str) -> str:
    """Where one batch of a session lives.

    >>> chunk_key(7, "01a2-sess", "01a2-batch")
    '7/01a2-sess/01a2-batch.json.gz'
    """
    return f"{project_id}/{_segment(session_id)}/{_segment(batch_id)}.json.gz"


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


def put_chunk(key: str, data: bytes) -> None:
    try:
        _storage().save(key, ContentFile(data))
    except Exception as exc:  # any backend failure: disk full, S3 down, permissions
        raise StorageError(f"could not write blob {key}: {exc}") from exc


def open_chunk(key: str) -> list[dict[str, Any]]:
    try:
        with _storage().open(key, "rb") as handle:
            events: list[dict[str, Any]] = orjson.loads(gzip.decompress(handle.read()))
    except Exception as exc:  # unreachable, missing, or corrupted on the way
        raise StorageError(f"could not read blob {key}: {exc}") from exc
    return events


def open_raw(key: str) -> bytes:
    """A blob's stored (gzip) bytes, to send as they are with Content-Encoding."""
    try:
        with _storage().open(key, "rb") as handle:
            data: bytes = handle.read()
    except Exception as exc:
        raise StorageError(f"could not read blob {key}: {exc}") from exc
    return data


def size(key: str) -> int:
    try:
        return _storage().size(key)
    except Exception as exc:
        raise StorageError(f"could not stat blob {key}: {exc}") from exc


def delete_blobs(keys: Iterable[str]) -> None:
    storage = _storage()
    for key in keys:
        try:
            storage.delete(key)
        except Exception as exc:
            raise StorageError(f"could not delete blob {key}: {exc}") from exc
