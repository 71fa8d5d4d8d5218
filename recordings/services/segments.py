"""A recording's windows as segments: time slices a player fetches one by one.

A compacted window's blob is cut into segments at compaction (blobs.encode_segmented)
and its WindowBlob row says where each lies; a segment is served as its stored bytes
(a byte range of the blob) in a gzip envelope, never inflated and deflated again.
A live window, or one compacted before segments, is one segment: the whole window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from recordings import blobs
from recordings.models import Recording, SnapshotChunk, WindowBlob


@dataclass(frozen=True)
class SegmentInfo:
    index: int
    first_ms: int
    last_ms: int
    bytes: int  # compressed bytes to fetch (for an unindexed window: as captured)


@dataclass(frozen=True)
class WindowSegments:
    window_id: str
    first_ms: int
    last_ms: int
    # Names this window's segments as stored: it changes whenever they do (a new
    # compaction, a redaction), so a URL carrying it may be cached for good.
    # None for a live or unindexed window, whose one segment may still change.
    version: str | None
    segments: list[SegmentInfo]


class StoredSegment(NamedTuple):
    """A compacted window's segment: its stored deflate bytes and where they lie."""

    segment: blobs.Segment
    data: bytes
    version: str


class NoSuchSegment(Exception):
    """The window has no segment of that number (or no such window)."""


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _version(index: WindowBlob) -> str:
    crcs = ",".join(str(row[6]) for row in index.segments)
    return hashlib.sha256(f"{index.key}|{crcs}".encode()).hexdigest()[:16]


def window_segments(index: WindowBlob) -> list[blobs.Segment]:
    return [blobs.Segment(*row) for row in index.segments]


def window_blob_index(
    *, recording: Recording, window_id: str, key: str, segments: list[blobs.Segment]
) -> WindowBlob:
    """Record where a window blob's segments lie; replaces an index of the key."""
    index, _created = WindowBlob.objects.update_or_create(
        key=key,
        defaults={
            "recording": recording,
            "window_id": window_id,
            "segments": [list(segment) for segment in segments],
        },
    )
    return index


def recording_segments(*, recording: Recording) -> list[WindowSegments]:
    """The recording's windows in the order they started, each with its segments.

    Two queries, no storage call: what a player's timeline lists.
    """
    chunks = recording.chunks.order_by("first_timestamp", "created")
    windows: dict[str, list[SnapshotChunk]] = {}
    for chunk in chunks.only(
        "pk",
        # Without it, Django loads it row by row to link each to `recording`.
        "recording_id",
        "window_id",
        "compacted_into",
        "blob_key",
        "first_timestamp",
        "last_timestamp",
        "size_bytes",
    ):
        windows.setdefault(chunk.window_id, []).append(chunk)
    indexes = {index.key: index for index in recording.window_blobs.all()}
    return [_window(window_id, rows, indexes) for window_id, rows in windows.items()]


def _window(
    window_id: str, rows: list[SnapshotChunk], indexes: dict[str, WindowBlob]
) -> WindowSegments:
    keys = {row.data_key for row in rows}
    first = min(_ms(row.first_timestamp) for row in rows)
    last = max(_ms(row.last_timestamp) for row in rows)
    index = indexes.get(next(iter(keys))) if len(keys) == 1 else None
    if index is None or not rows[0].compacted_into:
        whole = SegmentInfo(0, first, last, sum(row.size_bytes for row in rows))
        return WindowSegments(window_id, first, last, None, [whole])
    segments = [
        SegmentInfo(number, s.first_ms, s.last_ms, s.length + blobs.ENVELOPE_BYTES)
        for number, s in enumerate(window_segments(index))
    ]
    return WindowSegments(
        window_id, segments[0].first_ms, segments[-1].last_ms, _version(index), segments
    )


def _compacted_index(recording: Recording, window_id: str) -> WindowBlob | None:
    """The window's segment index; None while it is live or was compacted unindexed."""
    keys: Iterable[str] = (
        recording.chunks.filter(window_id=window_id)
        .values_list("compacted_into", flat=True)
        .distinct()
    )
    found = list(keys)
    if len(found) != 1 or not found[0]:
        return None
    return recording.window_blobs.filter(key=found[0]).first()


def recording_segment_version(*, recording: Recording, window_id: str) -> str | None:
    index = _compacted_index(recording, window_id)
    return None if index is None else _version(index)


def recording_segment_read(
    *, recording: Recording, window_id: str, number: int
) -> StoredSegment | None:
    """Segment `number` of a compacted window as stored (a byte range of its blob);
    None for a window served whole (live, or compacted before segments), whose only
    segment is 0. Raises NoSuchSegment past the last, blobs.StorageError when
    storage fails.
    """
    index = _compacted_index(recording, window_id)
    if index is None:
        if number != 0 or not recording.chunks.filter(window_id=window_id).exists():
            raise NoSuchSegment(f"window {window_id!r} has no segment {number}")
        return None
    segments = window_segments(index)
    if not 0 <= number < len(segments):
        raise NoSuchSegment(f"window {window_id!r} has no segment {number}")
    segment = segments[number]
    data = blobs.read_range(index.key, segment.offset, segment.length)
    return StoredSegment(segment, data, _version(index))
