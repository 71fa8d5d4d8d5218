"""Capture: a request's batches scrubbed, checked, compressed, then committed.

Per session of a request: one read and one write (capture_sql.py), which commits
each batch's gzip bytes in its chunk row. Only a window's batches too big for rows
(REPLAYHUB_INGEST_ROW_MAX_BYTES) are written to blob storage first, as one blob.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils.timezone import now

from privacy.models import PrivacySettings
from privacy.policy import (
    mask_rules_for,
    privacy_for,
    url_blocklist_for,
)
from privacy.rules import (
    drop_blocked_pages,
)
from privacy.scrub import CompiledRules, ScrubState, scrub_events
from privacy.scrub.regex import Regex
from recordings import blobs
from recordings.capture.store_sql import (
    Row,
    SessionRead,
    VersionConflict,
    session_commit,
    session_read,
)
from recordings.ingest import clock, images, storable
from recordings.ingest.parse import (
    IngestError,
    SnapshotBatch,
    check_depth,
    ms_to_datetime,
)
from recordings.ingest.stats import EventStats, summarize
from recordings.models import (
    OVERSIZED_EVENT_BYTES,
    Project,
)
from recordings.services.ledger import ledger_lock, ledger_record_duplicates

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the request tells of the browser: kept on the recording it starts
    (the first non-empty value), for its environment and country signals."""

    user_agent: str = ""
    country: str = (
        ""  # ISO 3166-1 alpha-2 (recordings/capture/geo.py), never the address
    )


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    recording_id: int | None  # None for a batch already stored (a client retry)
    stored: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _CheckedBatch:
    batch: SnapshotBatch
    stats: EventStats
    span: tuple[dt.datetime, dt.datetime]
    # The events as JSON before compression: one array, or for a batch big enough
    # to hold an oversized event one array per event (see _encoded).
    arrays: list[bytes]
    # JSON size of the biggest event: exact when it could be oversized, else the
    # batch size (a cheap upper bound that cannot reach the threshold).
    largest_event: int

    @property
    def size(self) -> int:
        """JSON size of the batch's events as one array."""
        return sum(len(array) for array in self.arrays) - len(self.arrays) + 1


@dataclasses.dataclass(frozen=True, slots=True)
class _Firewall:
    rules: CompiledRules
    blocklist: list[Regex]
    large: bool = False  # the request is big enough to swap inline images


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """One session's batches of a request, scrubbed and checked, ready to write."""

    project: Project
    session_id: str
    # Each batch and its events as sent, to scrub again if another request of the
    # session commits first; empty when the plan is made under the session's lock.
    sent: list[_Sent]
    stored: SessionRead
    fresh: list[_CheckedBatch]
    duplicates: int
    windows: dict[str, Any]  # window id -> ScrubState dict after these batches
    dropped: dict[str, int]  # unknown events of the batches not stored before
    skew: int | None  # ms added to the session's event times (ingest/clock.py)
    client: ClientInfo

    @property
    def changes_state(self) -> bool:
        if self.fresh or self.dropped:
            return True
        return self.windows != _loads(self.stored.scrub_state)


def recording_ingest_batches(
    *,
    project: Project,
    batches: list[SnapshotBatch],
    privacy: PrivacySettings | None = None,
    client: ClientInfo = ClientInfo(),
) -> list[IngestResult]:
    """Store batches of sessions, each once, folding their numbers into recordings.

    Every batch is checked before the first is written, so a request with one bad
    batch stores nothing. Raises IngestError for data that can never be stored, and
    blobs.StorageError or DatabaseError when storing failed (the caller answers 503
    so that the client retries; batches already stored are then recognised).

    A session costs one read and, after its blobs are written, one write that
    commits only if no other request of the session stored a batch or moved its
    scrub state since the read (capture_sql.py). When one did, the batches are
    scrubbed again from what was sent and stored under the session's lock (_store).
    A request too big to keep a copy of as sent is stored under its sessions' locks
    from the start (_ingest_locked). `privacy` is the project's settings when the
    caller has them already (capture admission read them); `client` what the
    request said of the browser.
    """
    if privacy is None:
        privacy = privacy_for(project)
    sent, size = _as_sent(batches)
    firewall = _Firewall(
        mask_rules_for(privacy),
        url_blocklist_for(privacy),
        large=size >= images.LARGE_PAYLOAD_BYTES,
    )
    if sent is None:
        unkept = [(batch, b"") for batch in batches]  # no copy: never scrubbed again
        return _ingest_locked(project, _by_session(unkept), firewall, client)
    groups = _by_session(sent)
    plans = [
        _plan(project, sid, group, firewall, client) for sid, group in groups.items()
    ]
    return [result for plan in plans for result in _store(plan, firewall)]


# A batch and its events as sent (JSON).
_Sent = tuple[SnapshotBatch, bytes]
# The most JSON a request keeps as sent for a second scrub; beyond it the request
# is stored under its sessions' locks, so that memory stays near twice the
# request's size (the parsed events, and their JSON as stored) however big it is.
_MAX_KEPT_AS_SENT = 4 * 1024 * 1024


def _as_sent(batches: list[SnapshotBatch]) -> tuple[list[_Sent] | None, int]:
    """Each batch with its events as sent, or None when they are too big to keep;
    and their JSON size in all (the size of the payload, as the client sent it)."""
    kept: list[_Sent] | None = []
    size = 0
    for batch in batches:
        raw = _dumps(batch.events)
        size += len(raw)
        if kept is not None and size <= _MAX_KEPT_AS_SENT:
            kept.append((batch, raw))
        else:
            kept = None  # the copies go at once: a copy of it all is never held
    return kept, size


@transaction.atomic
def _ingest_locked(
    project: Project,
    groups: dict[str, list[_Sent]],
    firewall: _Firewall,
    client: ClientInfo,
) -> list[IngestResult]:
    """Store a big request's sessions under their ledger locks, taken first.

    No other request of these sessions can commit between the read and the write,
    so the batches are scrubbed once and need no copy as sent. The locks (and the
    transaction) are held across the blob writes: only requests over
    _MAX_KEPT_AS_SENT pay that. Taken in session order, so two such requests
    queue rather than deadlock.
    """
    for session_id in sorted(groups):
        ledger_lock(project=project, session_id=session_id)
    plans = [
        _plan(project, sid, group, firewall, client) for sid, group in groups.items()
    ]
    return [result for plan in plans for result in _store_once(plan)]


def _by_session(batches: list[_Sent]) -> dict[str, list[_Sent]]:
    groups: dict[str, list[_Sent]] = {}
    for batch, raw in batches:
        groups.setdefault(batch.session_id, []).append((batch, raw))
    return groups


def _plan(
    project: Project,
    session_id: str,
    sent: list[_Sent],
    firewall: _Firewall,
    client: ClientInfo,
) -> _Plan:
    batches = [batch for batch, _raw in sent]
    stored = session_read(project.pk, session_id, [batch.uuid for batch in batches])
    windows: dict[str, Any] = _loads(stored.scrub_state)
    seen = set(stored.batch_ids)
    # The firewall scrubs events in place; what was sent is kept as JSON (cheaper
    # than a copy) in case the batches must be scrubbed again (see _store).
    sent = [pair for pair in sent if pair[1]]
    fresh, duplicates = [], 0
    dropped: dict[str, int] = {}
    skew, received_ms = stored.clock_skew_ms, int(now().timestamp() * 1000)
    tracks: dict[str, _Track] = {}
    for batch in batches:
        if batch.uuid in seen:
            duplicates += 1  # a retry (or the same batch twice in one request)
            continue
        seen.add(batch.uuid)
        _count_dropped(dropped, batch)
        skew = _on_server_time(batch, received_ms, skew)
        track = _track(tracks, windows, batch.window_id)
        scrubbed = _scrubbed(batch, firewall.rules, firewall.blocklist, track)
        item = _check(scrubbed, firewall.large)
        if item is not None:
            fresh.append(item)
    windows.update((window_id, track.saved()) for window_id, track in tracks.items())
    return _Plan(
        project,
        session_id,
        sent,
        stored,
        fresh,
        duplicates,
        windows,
        dropped,
        skew,
        client,
    )


def _on_server_time(
    batch: SnapshotBatch, received_ms: int, previous: int | None
) -> int:
    """Correct the batch's event times in place (ingest/clock.py); returns the
    skew the session now has."""
    retimed = clock.retime_outliers(batch.events)
    # Capture's log lines name no session (there is no recording code yet): they
    # outlive an erasure. The session's ledger row keeps its clock and drops.
    if retimed:
        logger.info(
            "gave %d event(s) far off their batch's time the time of the event before",
            retimed,
        )
    skew = clock.session_skew(
        sent_at_ms=batch.sent_at_ms,
        received_ms=received_ms,
        times=[event["timestamp"] for event in batch.events],
        previous=previous,
        tolerance_ms=settings.REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS * 1000,
    )
    if skew != (previous or 0):
        logger.info("device clock off by %+d ms; event times corrected", skew)
    clock.shift(batch.events, skew)
    return skew


def _count_dropped(counts: dict[str, int], batch: SnapshotBatch) -> None:
    if not batch.dropped:
        return
    logger.warning(
        "dropped events of kinds ReplayHub does not know (%s %s): %s; "
        "a newer SDK than ReplayHub understands?",
        batch.lib or "unknown SDK",
        batch.lib_version,
        ", ".join(f"{kind} x{count}" for kind, count in batch.dropped),
    )
    for kind, count in batch.dropped:
        counts[kind] = counts.get(kind, 0) + count


def _resent(plan: _Plan) -> list[_Sent]:
    """The plan's batches as they were sent, to be scrubbed again."""
    return [
        (dataclasses.replace(batch, events=tuple(orjson.loads(raw))), raw)
        for batch, raw in plan.sent
    ]


def _loads(raw: str) -> dict[str, Any]:
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {}


@dataclasses.dataclass(slots=True)
class _Track:
    """One window's scrub state while a request's batches of it are scrubbed.

    Loaded once and saved once per request, not per batch: the state can hold up
    to MAX_TRACKED_IDS ids, and a request may carry many small batches of a window.
    """

    state: ScrubState
    url: str  # the page the window is on (for the URL blocklist)

    def saved(self) -> dict[str, Any]:
        saved = {**self.state.to_dict(), "url": self.url}
        # The page's URL and origin come from the client: no NUL may reach jsonb.
        storable.clean_json(saved)
        return saved


def _track(
    tracks: dict[str, _Track], windows: dict[str, Any], window_id: str
) -> _Track:
    if window_id not in tracks:
        saved = windows.get(window_id) or {}
        url = saved.get("url", "")
        tracks[window_id] = _Track(ScrubState.from_dict(saved), url)
    return tracks[window_id]


def _scrubbed(
    batch: SnapshotBatch,
    rules: CompiledRules,
    blocklist: list[Regex],
    track: _Track,
) -> SnapshotBatch:
    """The batch as the project's privacy rules allow it to be stored.

    Runs before anything is written, whatever the client was told: masking, blocking
    and card/pattern scrubbing (privacy/scrub). The window's track carries the
    ids of blocked and masked nodes over to the session's next batches.
    """
    events, track.url = drop_blocked_pages(list(batch.events), blocklist, track.url)
    kept, report = scrub_events(events, rules, track.state)
    if report.cards_scrubbed or report.patterns_scrubbed:
        logger.info(
            "scrubbed %d card number(s) and %d pattern match(es) from a batch",
            report.cards_scrubbed,
            report.patterns_scrubbed,
        )
    return dataclasses.replace(batch, events=tuple(kept))


def _check(batch: SnapshotBatch, large: bool) -> _CheckedBatch | None:
    stats = summarize(batch.events)
    if stats.first_timestamp_ms is None or stats.last_timestamp_ms is None:
        return None  # an empty batch: nothing to store
    first = ms_to_datetime(stats.first_timestamp_ms)
    last = ms_to_datetime(stats.last_timestamp_ms)
    if large:
        _replace_inline_images(batch)
    arrays, largest = _encoded(batch.events)
    return _CheckedBatch(batch, stats, (first, last), arrays, largest)


def _encoded(events: tuple[dict[str, Any], ...]) -> tuple[list[bytes], int]:
    """The events as JSON arrays, and the JSON size of their biggest event (exact
    when it could be oversized, else an upper bound below the threshold).

    One array; but a batch big enough to hold an oversized event is encoded a
    run of events at a time, and a run that big one event at a time, so that the
    biggest is known without ever holding two copies of it.
    """
    raw = _dumps(events)
    if len(raw) < OVERSIZED_EVENT_BYTES:
        return [raw], len(raw)
    del raw  # before the copies by run are made
    arrays: list[bytes] = []
    largest = 0
    for start in range(0, len(events), _EVENTS_PER_RUN):
        run = events[start : start + _EVENTS_PER_RUN]
        array = _dumps(run)
        if len(array) >= OVERSIZED_EVENT_BYTES:
            del array
            pieces = [_dumps((event,)) for event in run]
            arrays += pieces
            largest = max(largest, *(len(piece) - 2 for piece in pieces))
        else:
            arrays.append(array)
            largest = max(largest, len(array) - 2)
    return arrays, largest


_EVENTS_PER_RUN = 1000


def _dumps(events: tuple[dict[str, Any], ...]) -> bytes:
    try:
        return orjson.dumps(events)
    except orjson.JSONEncodeError:
        pass
    # Past orjson's 254 levels (a deep DOM) blobs.dumps falls back on json.dumps,
    # which recurses: check_depth keeps it well within Python's recursion limit.
    # Only such deep batches pay for the walk.
    for event in events:
        check_depth(event, "an rrweb event")
    try:
        return blobs.dumps(list(events))
    except ValueError as exc:
        raise IngestError("too_deep", str(exc)) from exc


def _replace_inline_images(batch: SnapshotBatch) -> None:
    """Swap big inline data: images for a placeholder, so a huge page still records.

    Only payloads over 5 MiB pay for this walk; smaller ones are stored as sent.
    """
    replaced = images.replace_data_url_images(list(batch.events))
    if replaced:
        logger.info("replaced %d inline image(s) in a large batch", replaced)


@dataclasses.dataclass(frozen=True, slots=True)
class _Blob:
    """Fresh batches' gzip bytes: one batch's, kept in its chunk row (no key), or a
    request's batches of a window too big for rows, as one blob in storage.

    Each batch keeps its own chunk row (its uuid is what recognises a retry); the
    rows of a stored blob all point at it, each with its share of the size.
    """

    items: list[_CheckedBatch]
    key: str  # "" while the bytes go into the chunk row
    data: bytes  # gzip

    @property
    def size(self) -> int:
        return len(self.data)

    def shares(self) -> list[tuple[_CheckedBatch, int]]:
        """Each batch and its share of the blob's size (the shares add up)."""
        total = sum(item.size for item in self.items)
        sizes = [self.size * item.size // total for item in self.items]
        sizes[-1] += self.size - sum(sizes)
        return list(zip(self.items, sizes, strict=True))


def _by_window(items: list[_CheckedBatch]) -> list[list[_CheckedBatch]]:
    windows: dict[str, list[_CheckedBatch]] = {}
    for item in items:
        windows.setdefault(item.batch.window_id, []).append(item)
    return list(windows.values())


def _compressed(plan: _Plan) -> list[_Blob]:
    """The fresh batches' bytes: each batch's for its row, or per window one blob
    for storage when the window's batches are too big for rows."""
    compressed: list[_Blob] = []
    for items in _by_window(plan.fresh):
        if sum(item.size for item in items) > settings.REPLAYHUB_INGEST_ROW_MAX_BYTES:
            compressed.append(_stored_blob(plan, items))
        else:
            compressed += [
                _Blob([it], "", blobs.compress_arrays(it.arrays)) for it in items
            ]
    return compressed


def _stored_blob(plan: _Plan, items: list[_CheckedBatch]) -> _Blob:
    # One blob per window, not per batch: a request of many big batches costs one
    # write and fsync per window.
    key = blobs.chunk_key(
        plan.project.pk, plan.session_id, items[0].batch.uuid, _generation()
    )
    data = blobs.compress_arrays([a for item in items for a in item.arrays])
    return _Blob(items, key, data)


def _store(plan: _Plan, firewall: _Firewall) -> list[IngestResult]:
    """Store one session's batches: optimistically, then under the ledger's lock.

    Losing the optimistic round means another request of the same session (a
    retry, a beacon, a second tab) committed meanwhile; rare, but under a burst it
    could repeat, so the second round locks the session's ledger row first and
    cannot lose. Only that round holds a transaction across the blob writes.
    """
    try:
        return _store_once(plan)
    except VersionConflict:
        pass
    with transaction.atomic():
        ledger_lock(project=plan.project, session_id=plan.session_id)  # until commit
        again = _plan(
            plan.project, plan.session_id, _resent(plan), firewall, plan.client
        )
        return _store_once(again)


def _store_once(plan: _Plan) -> list[IngestResult]:
    duplicates = [IngestResult(recording_id=None, stored=False)] * plan.duplicates
    if not plan.changes_state:
        if plan.duplicates:
            ledger_record_duplicates(
                project=plan.project, session_id=plan.session_id, count=plan.duplicates
            )
        return duplicates
    written = _write_blobs(plan)
    rows = _ledger_row(plan, written), _folded(plan, written), _chunk_rows(written)
    try:
        recording_id = session_commit(plan.stored, *rows)
    except VersionConflict:
        _discard_blobs(written)  # nothing was committed
        raise
    # Any other failure may come after the commit (an answer lost on the way): the
    # blobs stay, and the orphan sweeper removes them if no row points at them.
    stored = IngestResult(recording_id=recording_id, stored=True)
    return [stored] * len(plan.fresh) + duplicates


def _write_blobs(plan: _Plan) -> list[_Blob]:
    """Compress the fresh batches, and write those too big for rows to storage
    under keys no other attempt uses.

    Outside any transaction (but in _store's locked round): a slow storage write
    must not hold locks. A blob under a new key is never read before a row points
    at it, so an attempt that loses (or dies) leaves at worst an orphan, which it
    deletes (or the orphan sweeper does), and never overwrites a blob a row points
    at, even with a retry racing its original.
    """
    written = _compressed(plan)
    stored = [blob for blob in written if blob.key]
    if not stored:
        return written  # the usual case: everything goes into the rows
    try:
        blobs.put_chunks([(blob.key, blob.data) for blob in stored])
    except blobs.StorageError:
        _discard_blobs(stored)  # those written before the failure
        raise
    return written


def _generation() -> str:
    return uuid.uuid4().hex[:12]


def _discard_blobs(written: list[_Blob]) -> None:
    try:
        blobs.delete_blobs(blob.key for blob in written if blob.key)
    except blobs.StorageError:
        logger.warning("could not delete unused blobs; the orphan sweeper will")


def _ledger_row(plan: _Plan, written: list[_Blob]) -> Row:
    """The session's ledger as inserted, and its changes when it exists already."""
    items = [item for blob in written for item in blob.items]
    newest = items[-1].batch if items else None
    return {
        "project_id": plan.project.pk,
        "session_id": plan.session_id,
        "distinct_id": newest.distinct_id if newest else "",
        "lib_version": newest.lib_version if newest else "",
        "batches_accepted": len(items),
        "batches_duplicate": plan.duplicates,
        "events_accepted": sum(item.stats.event_count for item in items),
        "has_full_snapshot": any(item.stats.has_full_snapshot for item in items),
        "scrub_state": plan.windows,
        "events_dropped": _merged(plan.stored.events_dropped, plan.dropped),
        "clock_skew_ms": plan.skew,
    }


def _merged(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    merged = dict(counts)
    for kind, count in more.items():
        merged[kind] = merged.get(kind, 0) + count
    return merged


@dataclasses.dataclass(slots=True)
class _Fold:
    """A recording's folded fields as read; counters start at 0 and hold increments."""

    started_at: dt.datetime
    ended_at: dt.datetime
    first_url: str = ""
    max_gap_ms: int = 0
    largest_event_bytes: int = 0
    has_full_snapshot: bool = False
    distinct_id: str = ""
    lib: str = ""
    lib_version: str = ""
    duration_ms: int = 0
    click_count: int = 0
    keypress_count: int = 0
    console_error_count: int = 0
    size_bytes: int = 0
    event_count: int = 0
    last_batch_at: dt.datetime | None = None
    compacted: bool = False
    user_agent: str = ""
    country: str = ""


_FOLD_FIELDS = tuple(field.name for field in dataclasses.fields(_Fold))


def _folded(plan: _Plan, written: list[_Blob]) -> Row | None:
    """The recording's row after these batches; its counters hold increments."""
    if not written:
        return None  # only the scrub state moved (a blocklisted page was dropped)
    if plan.stored.folded is not None:
        fold = _Fold(**plan.stored.folded)
    else:
        spans = [item.span for blob in written for item in blob.items]
        fold = _Fold(
            started_at=min(span[0] for span in spans),
            ended_at=max(span[1] for span in spans),
        )
    for blob in written:
        for item, size in blob.shares():
            _fold_stats(fold, item, size)
    fold.user_agent = fold.user_agent or plan.client.user_agent
    fold.country = fold.country or plan.client.country
    row = {name: getattr(fold, name) for name in _FOLD_FIELDS}
    return row | {"project_id": plan.project.pk, "session_id": plan.session_id}


def _chunk_rows(written: list[_Blob]) -> list[Row]:
    return [
        {
            "batch_id": item.batch.uuid,
            "window_id": item.batch.window_id,
            "blob_key": blob.key,
            "data": None if blob.key else blob.data,
            "size_bytes": size,
            "event_count": item.stats.event_count,
            "first_timestamp": item.span[0],
            "last_timestamp": item.span[1],
        }
        for blob in written
        for item, size in blob.shares()
    ]


def _fold_stats(recording: _Fold, item: _CheckedBatch, size: int) -> None:
    batch, stats, span = item.batch, item.stats, item.span
    recording.largest_event_bytes = max(
        recording.largest_event_bytes, item.largest_event
    )
    if stats.first_url and (not recording.first_url or span[0] <= recording.started_at):
        recording.first_url = storable.clean_text(stats.first_url[: storable.URL_MAX])
    gap = max(span[0] - recording.ended_at, recording.started_at - span[1])
    recording.max_gap_ms = max(recording.max_gap_ms, int(gap.total_seconds() * 1000))
    recording.started_at = min(recording.started_at, span[0])
    recording.ended_at = max(recording.ended_at, span[1])
    elapsed = recording.ended_at - recording.started_at
    recording.duration_ms = int(elapsed.total_seconds() * 1000)
    recording.click_count += stats.click_count
    recording.keypress_count += stats.keypress_count
    recording.console_error_count += stats.console_error_count
    recording.has_full_snapshot = recording.has_full_snapshot or stats.has_full_snapshot
    recording.size_bytes += size
    recording.event_count += stats.event_count
    # posthog-js switches distinct_id mid-session on identify(); the newest one names
    # the person.
    recording.distinct_id = batch.distinct_id or recording.distinct_id
    recording.lib = recording.lib or batch.lib
    recording.lib_version = batch.lib_version or recording.lib_version
    recording.last_batch_at = now()
    recording.compacted = False
