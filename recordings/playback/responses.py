"""A recording read back for its readers: the admin's player and the management API.

Every reader (and, later, share links) answers through here: a recording's events,
all windows or one; a compacted window's stored gzip blob, sent as it is; the
export as a stream; and one answer when blob storage fails (503, Retry-After).
The reading itself is the services'; this module turns it into HTTP answers, so
it sits above them, beside the admin and the API that call it.
"""

from __future__ import annotations

import heapq
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from django.conf import settings
from django.db.models import F
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase, HttpResponseNotModified
from django.utils.http import urlencode

from recordings import blobs
from recordings.blobs import BlobMissing, StorageError
from recordings.models import Event, Person, Recording
from recordings.playback.transfer import (
    COMMENT_FIELDS,
    EVENT_FIELDS,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    MARKER_FIELDS,
    PERSON_FIELDS,
)
from recordings.services.segments import (
    NoSuchSegment,
    recording_segment_read,
    recording_segment_version,
    recording_segments,
)
from recordings.services.storage import (
    events_by_key,
    recording_data_missing,
    recording_events,
    recording_window_blob,
)

logger = logging.getLogger(__name__)

# Pieces of the export are joined and sent this many bytes at a time: few enough
# writes to the socket, little enough memory held.
_SEND_BYTES = 256 * 1024


class _Blob(NamedTuple):
    """One of a window's blobs, as its chunk rows describe it."""

    key: str
    first_ms: int  # the earliest timestamp of the chunks it holds (ms)
    compacted: bool  # a window blob: its events are in time order already


# One window's blobs, in the order playback reads them.
_Blobs = list[_Blob]


# The `error` code of that answer (the management API's schema lists it).
STORAGE_UNAVAILABLE = "storage_unavailable"


def storage_unavailable() -> HttpResponse:
    """The answer when blob storage fails: retry later, as capture's 503 says."""
    return JsonResponse(
        {"error": STORAGE_UNAVAILABLE, "detail": "could not read the blobs"},
        status=503,
        headers={"Retry-After": str(settings.REPLAYHUB_INGEST_RETRY_AFTER)},
    )


# The `error` code of the answer when a blob is gone for good (410).
DATA_MISSING = "recording_data_missing"


def data_missing(recording: Recording, missing: BlobMissing) -> HttpResponse:
    """The answer when a blob of the recording is not in storage: gone, never
    retried (no Retry-After); logged with its key, and the recording marked."""
    recording_data_missing(missing=missing, recording=recording)
    return JsonResponse(
        {
            "error": DATA_MISSING,
            "detail": "some of this recording's data is missing from storage "
            "(deleted, or not restored with the database); it cannot be played",
        },
        status=410,
    )


def events_response(
    *, recording: Recording, window_id: str | None, as_stored: bool = False
) -> HttpResponse:
    """The recording's events in time order (one window's, or all), as JSON.

    With `as_stored` (the client takes gzip), a compacted window goes out as its
    stored blob, with Content-Encoding: gzip: the browser inflates it, the server
    does not.
    """
    try:
        if window_id is not None and as_stored:
            blob = recording_window_blob(recording=recording, window_id=window_id)
            if blob is not None:
                return _gzip_json_response(blob)
        events = recording_events(recording=recording, window_id=window_id)
    except BlobMissing as exc:
        return data_missing(recording, exc)
    except StorageError:
        return storage_unavailable()
    return HttpResponse(blobs.dumps(events), content_type="application/json")


# A segment's URL names its version (recording_segments), which changes with its
# bytes (recompaction, redaction): under that URL it never changes. Without the
# current version (or while the window is live) the browser asks again each time.
SEGMENT_CACHE = "private, max-age=31536000, immutable"
SEGMENT_REVALIDATE = "private, no-cache"


def segments_timeline(*, recording: Recording, events_url: str) -> list[dict[str, Any]]:
    """Per window in start order: its time span and segments, each with its URL
    (the events view, `?window=&segment=&v=`) and compressed size, for a player
    that fetches the first segment of each window first and the rest after."""
    timeline = []
    for window in recording_segments(recording=recording):
        query: dict[str, str | int] = {"window": window.window_id}
        if window.version is not None:
            query["v"] = window.version
        segments = [
            {
                "url": f"{events_url}?{urlencode({**query, 'segment': s.index})}",
                "first_ms": s.first_ms,
                "last_ms": s.last_ms,
                "bytes": s.bytes,
            }
            for s in window.segments
        ]
        timeline.append(
            {
                "window_id": window.window_id,
                "first_ms": window.first_ms,
                "last_ms": window.last_ms,
                "segments": segments,
            }
        )
    return timeline


def segment_response(
    *,
    recording: Recording,
    window_id: str,
    number: int,
    as_stored: bool,
    version: str | None = None,
    if_none_match: str = "",
) -> HttpResponse:
    """Segment `number` of a window: a fragment of its JSON array of events.

    A compacted window's segment goes out as its stored bytes (a range of the
    blob, read alone) in a 20-byte gzip envelope; a client that takes no gzip
    gets it inflated. A window served whole (live, or compacted before segments)
    has one segment, 0: all its events, as events_response gives them.
    """
    suffix = "-gz" if as_stored else ""
    if if_none_match:
        current = recording_segment_version(recording=recording, window_id=window_id)
        if current is not None and if_none_match == f'"{current}-{number}{suffix}"':
            return HttpResponseNotModified()
    try:
        stored = recording_segment_read(
            recording=recording, window_id=window_id, number=number
        )
    except NoSuchSegment as exc:
        return JsonResponse(
            {"error": "no_such_segment", "detail": str(exc)}, status=404
        )
    except BlobMissing as exc:
        return data_missing(recording, exc)
    except StorageError:
        return storage_unavailable()
    if stored is None:
        response = events_response(
            recording=recording, window_id=window_id, as_stored=as_stored
        )
        response["Cache-Control"] = SEGMENT_REVALIDATE
        return response
    if as_stored:
        response = _gzip_json_response(
            blobs.segment_member(stored.data, stored.segment)
        )
    else:
        try:
            fragment = blobs.segment_fragment(stored.data)
        except StorageError:
            return storage_unavailable()
        response = HttpResponse(fragment, content_type="application/json")
        response["Vary"] = "Accept-Encoding"
    response["ETag"] = f'"{stored.version}-{number}{suffix}"'
    cached = version == stored.version
    response["Cache-Control"] = SEGMENT_CACHE if cached else SEGMENT_REVALIDATE
    return response


def _gzip_json_response(blob: bytes) -> HttpResponse:
    response = HttpResponse(blob, content_type="application/json")
    response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    return response


def export_response(*, recording: Recording, meta: Any) -> HttpResponseBase:
    """A download of the recording's export document (export_chunks), streamed.

    The first blob is read before answering, so storage that is down gets the 503;
    a blob that fails later cuts the download short (its status is sent already).
    """
    chunks = export_chunks(recording=recording, meta=meta)
    try:
        first = next(chunks)
    except BlobMissing as exc:
        return data_missing(recording, exc)
    except StorageError:
        return storage_unavailable()
    response = StreamingHttpResponse(
        _logged(recording, first, chunks), content_type="application/json"
    )
    name = f"replayhub-{recording.code}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _logged(
    recording: Recording, first: bytes, rest: Iterator[bytes]
) -> Iterator[bytes]:
    yield first
    try:
        yield from rest
    except BlobMissing as exc:
        recording_data_missing(missing=exc, recording=recording)
        raise
    except StorageError:
        # Too late for a 503: the client sees the download end early.
        logger.exception("export of recording %s cut short", recording.code)
        raise


def export_chunks(*, recording: Recording, meta: Any) -> Iterator[bytes]:
    """The export's JSON bytes, a few hundred KiB at a time.

    One self-describing document: `format` and `version`, the recording's
    metadata (`meta`), its markers, comments, tags, the session's analytics
    events and person, then `windows`: per window, its events in time order.
    The same document as dumping it whole, written window by window and event by
    event: the memory held is about one blob's events, whatever the recording's
    size. The chunk rows are read now; the rest as the chunks are asked for.
    """
    plan = _export_plan(recording)
    return _joined(_export_pieces(recording, meta, plan))


def _export_plan(recording: Recording) -> dict[str, _Blobs]:
    """Per window, in the order windows started: its blobs, as playback reads them."""
    plan: dict[str, dict[str, _Blob]] = {}
    for chunk in recording.chunks.order_by("first_timestamp", "created"):
        key = chunk.data_key
        first = int(chunk.first_timestamp.timestamp() * 1000)
        blob = _Blob(key, first, bool(chunk.compacted_into))
        plan.setdefault(chunk.window_id, {}).setdefault(key, blob)
    return {window_id: list(keys.values()) for window_id, keys in plan.items()}


def _export_pieces(
    recording: Recording, meta: Any, plan: dict[str, _Blobs]
) -> Iterator[bytes]:
    yield blobs.dumps({"format": EXPORT_FORMAT, "version": EXPORT_VERSION})[:-1]
    yield b',"recording":' + blobs.dumps(meta)
    yield b',"person":' + blobs.dumps(_person(recording))
    for name, rows in _related_rows(recording).items():
        yield b',"' + name.encode() + b'":['
        for index, row in enumerate(rows):
            yield (b"," if index else b"") + blobs.dumps(row)
        yield b"]"
    yield b',"windows":{'
    for index, (window_id, keys) in enumerate(plan.items()):
        yield (b"," if index else b"") + blobs.dumps(window_id) + b":"
        yield from _window_json(keys)
    yield b"}}"


# Rows read this many a query: a recording may hold thousands of markers and its
# session thousands of analytics events.
_ROWS_PER_QUERY = 500


def _related_rows(recording: Recording) -> dict[str, Iterator[dict[str, Any]]]:
    """The document's lists besides the windows, each read as it is written."""
    markers = recording.markers.in_time_order().values(*MARKER_FIELDS)
    comments = recording.comments.order_by("offset_ms", "created", "pk").values(
        *COMMENT_FIELDS, "author__username"
    )
    tags = recording.taggings.order_by("tag__name").values(
        "created", name=F("tag__name"), colour=F("tag__colour")
    )
    events = (
        Event.objects.filter(
            project_id=recording.project_id, session_id=recording.session_id
        )
        .order_by("timestamp", "pk")
        .values(*EVENT_FIELDS)
    )
    return {
        name: (
            _renamed(row, {"author__username": "author"})
            for row in rows.iterator(chunk_size=_ROWS_PER_QUERY)
        )
        for name, rows in (
            ("markers", markers),
            ("comments", comments),
            ("tags", tags),
            ("events", events),
        )
    }


def _renamed(row: Mapping[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(key, key): value for key, value in row.items()}


def _person(recording: Recording) -> dict[str, Any] | None:
    """The person the recording's distinct id names in its project, if known."""
    if not recording.distinct_id:
        return None
    people = Person.objects.filter(
        project_id=recording.project_id, distinct_id=recording.distinct_id
    )
    row: dict[str, Any] | None = people.values(*PERSON_FIELDS).first()
    return row


def _window_json(keys: _Blobs) -> Iterator[bytes]:
    """One window's events as a JSON array, as recording_events would give them."""
    if len(keys) == 1 and keys[0].compacted:
        # A compacted window is one array of events in time order: sent as stored,
        # inflated a piece at a time, never parsed.
        yield from _inflated(keys[0].key)
        return
    yield b"["
    for position, event in enumerate(_in_time_order(keys)):
        yield (b"," if position else b"") + blobs.dumps(event)
    yield b"]"


def _inflated(key: str) -> Iterator[bytes]:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        for data in blobs.read_raw(key, _SEND_BYTES):
            while data:
                if inflater.eof:  # another gzip member follows: go on, as gunzip
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                piece = inflater.decompress(data, _SEND_BYTES)
                data = (
                    inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                )
                yield piece
        yield inflater.flush()
    except zlib.error as exc:
        raise StorageError(f"could not inflate blob {key}: {exc}") from exc
    if not inflater.eof:
        raise StorageError(f"blob {key} is cut short")


def _in_time_order(keys: _Blobs) -> Iterator[dict[str, Any]]:
    """The blobs' events sorted by timestamp, holding only those that may still move.

    The order of recording_events (a stable sort: ties keep blob order, then
    position), but merged as the blobs are read: no event of a later blob is
    earlier than that blob's first chunk row says, so any event before that is
    in its place and goes out. The margin of 1 ms covers rounding in the rows.
    """
    pending: list[tuple[Any, int, int, dict[str, Any]]] = []
    stored = events_by_key(keys=[blob.key for blob in keys])
    for index, events in enumerate(stored):
        for position, event in enumerate(events):
            heapq.heappush(pending, (event["timestamp"], index, position, event))
        later = keys[index + 1].first_ms - 1 if index + 1 < len(keys) else None
        while pending and (later is None or pending[0][0] < later):
            yield heapq.heappop(pending)[3]


def _joined(pieces: Iterable[bytes]) -> Iterator[bytes]:
    held: list[bytes] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size >= _SEND_BYTES:
            yield b"".join(held)
            held, size = [], 0
    if held:
        yield b"".join(held)


def windows_json(*, recording: Recording) -> Iterator[tuple[str, Iterator[bytes]]]:
    """Each window's id and its events as JSON array bytes, a piece at a time.

    The export's reading (one blob's events held at a time), for readers that
    write each window somewhere of its own: the offline player's page.
    """
    for window_id, keys in _export_plan(recording).items():
        yield window_id, _joined(_window_json(keys))
