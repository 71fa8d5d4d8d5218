"""Recordings read back, rewritten in place, deleted with their blobs (unless on
legal hold); orphan sweeping.

A recording's data lives under keys (SnapshotChunk.data_key): a blob's in storage
(a compacted window, or a batch too big for a row), or a live chunk's `row:<id>`
while its bytes are in its row. Everything here takes both alike.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Length
from django.utils.timezone import now

from privacy.models import PrivacyAuditEntry
from recordings import blobs
from recordings.models import (
    LIVE_KEY_PREFIX,
    Project,
    Recording,
    SnapshotChunk,
    WindowBlob,
)

logger = logging.getLogger(__name__)


def orphan_blobs_delete(*, written_before: dt.datetime) -> int:
    """Delete blobs that no chunk points at, written before `written_before`.

    Capture writes a blob before the row that points at it, so a crash or a lost
    answer in between leaves a blob with no row (so do failed compactions). A
    younger one may still be about to be committed, so the caller gives a margin.
    Folders whose name is not one capture makes are left alone; empty ones capture
    made are removed (deletions before ReplayHub removed them left them behind).
    """
    deleted = 0
    for folder in blobs.folders():
        owner = blobs.folder_owner(folder)
        if owner is None:
            continue
        keys = blobs.folder_blobs(folder)
        if not keys:
            blobs.delete_folder_if_empty(folder)
            continue
        used = _referenced_blobs(folder, *owner, keys)
        orphans = [key for key in keys if key not in used]
        old = [key for key in orphans if blobs.written_at(key) < written_before]
        blobs.delete_blobs(old)
        deleted += len(old)
    if deleted:
        logger.info("deleted %d orphan blob(s)", deleted)
    return deleted


def _referenced_blobs(
    folder: str, project_id: int, session_id: str | None, keys: list[str]
) -> set[str]:
    chunks = SnapshotChunk.objects.filter(recording__project_id=project_id)
    if session_id is not None:  # one recording, through its unique index
        chunks = chunks.filter(recording__session_id=session_id)
    else:
        chunks = chunks.filter(blob_key__startswith=f"{folder}/")
    pairs = chunks.filter(Q(blob_key__in=keys) | Q(compacted_into__in=keys))
    return {
        key for pair in pairs.values_list("blob_key", "compacted_into") for key in pair
    }


def recording_chunks(
    *, recording: Recording, window_id: str | None
) -> models.QuerySet[SnapshotChunk]:
    chunks = recording.chunks.order_by("first_timestamp", "created")
    return chunks if window_id is None else chunks.filter(window_id=window_id)


def chunk_data_keys(*, chunks: models.QuerySet[SnapshotChunk]) -> list[str]:
    """Keys holding these chunks' events, each once (compacted chunks share one)."""
    return list(dict.fromkeys(chunk.data_key for chunk in chunks))


def is_live(key: str) -> bool:
    """Whether the key is a live chunk's row rather than a blob in storage."""
    return key.startswith(LIVE_KEY_PREFIX)


def stored_keys(keys: Iterable[str]) -> list[str]:
    """The keys of blobs in storage among these (live rows go with their rows)."""
    return [key for key in keys if not is_live(key)]


# Live chunks' bytes are fetched this many rows a query: few queries, little held.
_ROWS_PER_READ = 50


def data_read(*, keys: list[str]) -> Iterator[bytes]:
    """Each key's gzip bytes, in order: live rows a few at a time, blobs one by one.

    Raises blobs.StorageError for a blob that cannot be read, and for a live row
    that is gone (compacted or purged since its key was read).
    """
    for start in range(0, len(keys), _ROWS_PER_READ):
        group = keys[start : start + _ROWS_PER_READ]
        rows = _live_rows([key for key in group if is_live(key)])
        for key in group:
            if not is_live(key):
                yield blobs.open_raw(key)
            elif rows.get(key) is None:
                raise ChunkMoved(f"chunk {key} has no bytes any more")
            else:
                yield rows[key]


def _live_rows(keys: list[str]) -> dict[str, bytes]:
    if not keys:
        return {}
    ids = [int(key.removeprefix(LIVE_KEY_PREFIX)) for key in keys]
    rows = SnapshotChunk.objects.filter(pk__in=ids).values_list("pk", "data")
    # PostgreSQL hands bytea back as a memoryview.
    return {f"{LIVE_KEY_PREFIX}{pk}": bytes(data) for pk, data in rows if data}


def events_by_key(*, keys: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Each key's events as stored, in the order of the keys."""
    for key, data in zip(keys, data_read(keys=keys), strict=True):
        yield blobs.decode(data, key)


def blob_events_read(*, keys: list[str]) -> list[dict[str, Any]]:
    """The events stored under these keys, in time order."""
    events: list[dict[str, Any]] = []
    for some in events_by_key(keys=keys):
        events.extend(some)
    # Client timestamps are not monotonic (back-dated session ends, late mouse moves):
    # the player needs them sorted. sort() is stable, so ties keep arrival order.
    events.sort(key=lambda event: event["timestamp"])
    return events


class ChunkMoved(blobs.StorageError):
    """A live chunk's bytes left its row after its key was read: compaction moved
    them into a window blob meanwhile (or the recording was purged)."""


def recording_events(
    *, recording: Recording, window_id: str | None = None
) -> list[dict[str, Any]]:
    """The recording's rrweb events for playback, in time order.

    Read while compaction may be moving live rows into a window blob: keys read
    before it committed can point at emptied rows, so they are read again once.
    """
    try:
        return _events_now(recording, window_id)
    except ChunkMoved:
        return _events_now(recording, window_id)  # the rows point at the blob now


def _events_now(recording: Recording, window_id: str | None) -> list[dict[str, Any]]:
    chunks = recording_chunks(recording=recording, window_id=window_id)
    return blob_events_read(keys=chunk_data_keys(chunks=chunks))


def recording_window_blob(*, recording: Recording, window_id: str) -> bytes | None:
    """The stored gzip bytes of a compacted window, ready to send; None if loose.

    A compacted window is one blob of events already in time order, so playback can
    hand it over untouched with Content-Encoding: gzip.
    """
    chunks = recording_chunks(recording=recording, window_id=window_id)
    keys = chunk_data_keys(chunks=chunks)
    if len(keys) != 1 or not recording.chunks.filter(compacted_into=keys[0]).exists():
        return None
    return blobs.open_raw(keys[0])


def recording_data_missing(
    *, missing: blobs.BlobMissing, recording: Recording | None = None
) -> None:
    """Note that a blob is gone for good: an error naming its key and the recording
    (by code), which is marked as missing data the first time (the admin shows it).

    Without `recording`, the one whose chunks point at the key.
    """
    if recording is None:
        recording = Recording.objects.filter(
            Q(chunks__blob_key=missing.key) | Q(chunks__compacted_into=missing.key)
        ).first()
    code = recording.code if recording is not None else "unknown"
    logger.error("recording %s: blob %s is missing from storage", code, missing.key)
    if recording is not None and recording.data_missing_at is None:
        recording.data_missing_at = now()
        Recording.objects.filter(pk=recording.pk, data_missing_at=None).update(
            data_missing_at=recording.data_missing_at
        )


class RecordingOnHold(Exception):
    """A recording on legal hold cannot be deleted until the hold is lifted."""

    def __init__(self, recording: Recording) -> None:
        super().__init__(
            f"recording {recording.code} is on legal hold: lift the hold to delete it"
        )
        self.recording = recording


def recordings_hold(
    *, recordings: Iterable[Recording], hold: bool, actor: User | None
) -> int:
    """Place (or lift) a legal hold on recordings; audited per project. Returns how
    many changed."""
    changed: dict[Project, list[str]] = {}
    for recording in recordings:
        updated = Recording.objects.filter(pk=recording.pk, legal_hold=not hold).update(
            legal_hold=hold
        )
        if updated:
            changed.setdefault(recording.project, []).append(str(recording.code))
    for project, codes in changed.items():
        # In the project's privacy audit log, as retention's runs: a hold is what
        # keeps a recording past its retention (and its erasure).
        PrivacyAuditEntry.objects.create(
            project=project,
            actor=actor,
            actor_name=actor.get_username() if actor else "retention",
            changes={"legal_hold": [not hold, hold], "recordings": [None, codes]},
        )
    return sum(map(len, changed.values()))


def recording_purge(*, recording: Recording) -> bool:
    """Delete a recording: its blobs first, then its rows; refused on legal hold.

    True when this call deleted it, False when it was gone already (another
    deletion got there first): audits count what was deleted, not what was found.

    All under the recording's row lock, so a hold placed meanwhile either is seen
    here (RecordingOnHold) or waits and finds nothing left to hold. Blobs go first
    so that a storage failure leaves the row (and the deletion can be retried)
    rather than a blob that no row points at any more.
    """
    with transaction.atomic():
        # The cascade deletes the chunk rows before the recording's: without its
        # lock first, a compaction or redaction holding it and waiting for a chunk
        # row would deadlock with this.
        locked = recording_lock(recording=recording)
        if locked is None:
            return False  # deleted meanwhile
        if locked.legal_hold:
            raise RecordingOnHold(locked)
        keys = stored_keys(chunk_data_keys(chunks=locked.chunks.all()))
        blobs.delete_blobs(keys)
        locked.delete()  # live chunks' bytes go with their rows
    logger.info(
        "purged recording %s (project %s, %d blobs)",
        recording.code,
        recording.project_id,
        len(keys),
    )
    return True


T = TypeVar("T")
# Given one blob's events, the events to keep (the list may be changed in place)
# and a note for the caller (what it changed); called with each blob of a window
# in time order.
BlobRewrite = Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], T]]


def recording_rewrite_blobs(
    *, recording: Recording, rewrite: Callable[[], BlobRewrite[T]]
) -> list[T]:
    """Rewrite a recording's stored blobs; return the notes of those that changed.

    `rewrite()` is called once per window, and the function it returns gets each
    of the window's blobs (live chunks and compacted windows) in time order, so it
    can carry state from one to the next as ingest does. A blob is rewritten,
    whole and under the same key, only if its events changed (a segmented window
    blob under a new key, with its segment index, the old one deleted once this
    commits); chunk and recording sizes and event counts follow. A StorageError
    part-way keeps (and commits the sizes of) the blobs rewritten so far, then is
    raised.
    """
    notes: list[T] = []
    retired: list[str] = []  # window blobs rewritten under a new key
    failure: blobs.StorageError | None = None
    with transaction.atomic():
        # Unlike ingest, this holds a transaction and the recording's row lock
        # across blob reads and writes: compaction takes the same lock, and a
        # compaction that read the chunks before they were rewritten here would
        # store its window blob as it was (unredacted, for privacy's redaction).
        # Ingest of this session waits meanwhile; on SQLite every write does.
        if recording_lock(recording=recording) is not None:
            try:
                for keys in _windows(recording):
                    blob_rewrite = rewrite()
                    for key in keys:
                        _rewrite_blob(recording, key, blob_rewrite, notes, retired)
            except blobs.StorageError as exc:
                # The blobs rewritten so far stay so: commit their new sizes.
                failure = exc
    _delete_retired(retired)
    if failure is not None:
        raise failure
    return notes


def _delete_retired(keys: list[str]) -> None:
    # Only once no row points at them; a failure leaves orphans for the sweeper.
    try:
        blobs.delete_blobs(keys)
    except blobs.StorageError:
        logger.exception("could not delete %d rewritten window blob(s)", len(keys))


def _windows(recording: Recording) -> list[list[str]]:
    """The recording's data keys, per window, in time order."""
    windows: dict[str, dict[str, None]] = {}
    for chunk in recording.chunks.order_by("first_timestamp", "created"):
        windows.setdefault(chunk.window_id, {})[chunk.data_key] = None
    return [list(keys) for keys in windows.values()]


def _rewrite_blob(
    recording: Recording,
    key: str,
    rewrite: BlobRewrite[T],
    notes: list[T],
    retired: list[str],
) -> None:
    (stored,) = data_read(keys=[key])
    events = blobs.decode(stored, key)
    before = blobs.dumps(events)
    count = len(events)
    kept, note = rewrite(events)
    after = blobs.dumps(kept)
    if after == before:
        return
    index = None if is_live(key) else WindowBlob.objects.filter(key=key).first()
    if index is None:
        data = blobs.compress(after)
        _data_write(key, data)
    else:
        data = _segmented_write(recording, index, kept)
        retired.append(key)
    _recount(recording, key, len(data) - len(stored), len(kept), count - len(kept))
    notes.append(note)


def _segmented_write(
    recording: Recording, index: WindowBlob, events: list[dict[str, Any]]
) -> bytes:
    """Rewrite a segmented window blob under a new key, with its new index.

    Not in place as other blobs: a reader holding the old index reads the old
    blob's byte ranges until this commits (it is deleted after).
    """
    data, segments = blobs.encode_segmented(events)
    generation = uuid.uuid4().hex[:12]
    key = blobs.window_key(
        recording.project_id, recording.session_id, index.window_id, generation
    )
    blobs.put_chunk(key, data)
    recording.chunks.filter(compacted_into=index.key).update(compacted_into=key)
    index.key, index.segments = key, [list(segment) for segment in segments]
    index.save(update_fields=["key", "segments"])
    return data


def _data_write(key: str, data: bytes) -> None:
    if is_live(key):
        # In the transaction that holds the recording's lock: committed with the
        # sizes, or not at all.
        pk = int(key.removeprefix(LIVE_KEY_PREFIX))
        SnapshotChunk.objects.filter(pk=pk).update(data=data)
        return
    # Same key, replaced whole: a rename on local disk, one PUT on S3, so a reader
    # gets the old blob or the new one, never half of either.
    blobs.put_chunk(key, data)


def _recount(
    recording: Recording, key: str, size_change: int, kept: int, dropped: int
) -> None:
    # A loose chunk alone under its key follows it; the events of a blob shared by
    # several chunks (a window blob, or one request's batches of a window too big
    # for rows) are not split by chunk, so only the recording's totals follow those.
    if is_live(key):
        loose = SnapshotChunk.objects.filter(pk=int(key.removeprefix(LIVE_KEY_PREFIX)))
    else:
        loose = SnapshotChunk.objects.filter(
            recording=recording, blob_key=key, compacted_into=""
        )
    if loose.count() == 1:
        loose.update(size_bytes=F("size_bytes") + size_change, event_count=kept)
    Recording.objects.filter(pk=recording.pk).update(
        size_bytes=F("size_bytes") + size_change,
        event_count=F("event_count") - dropped,
    )


def recording_lock(*, recording: Recording) -> Recording | None:
    """The recording's row, locked until the transaction ends; None once deleted.

    Compaction, retroactive redaction and purge take it before they change the
    recording's blobs or chunk rows, so they take turns. It comes before any chunk
    row lock, and compaction and redaction never wait for the session's ledger row
    while holding it: ingest locks the ledger first and the recording second, so
    against them it only ever waits.
    """
    return Recording.objects.select_for_update().filter(pk=recording.pk).first()


def recording_stored_bytes(*, recording: Recording) -> int:
    """Bytes holding the recording's events: each blob once, and live rows."""
    keys = chunk_data_keys(chunks=recording.chunks.all())
    live = recording.chunks.filter(
        compacted_into="", blob_key="", data__isnull=False
    ).aggregate(total=Sum(Length("data")))
    return sum(blobs.size(key) for key in stored_keys(keys)) + (live["total"] or 0)
