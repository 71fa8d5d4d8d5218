"""Work that crosses models or touches blob storage: ingest and playback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import uuid
from typing import Any, TypeVar

import orjson
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, IntegrityError, models, transaction
from django.db.models import Count, F, Q
from django.utils.timezone import now

from privacy.rules import (
    drop_blocked_pages,
    drop_ip,
    flag_active,
    page_urls,
    person_excluded,
    url_triggered,
)
from privacy.scrub import CompiledRules, ScrubState, scrub_events
from privacy.services import (
    mask_rules_for,
    privacy_for,
    scrub_json,
    url_blocklist_for,
    url_triggers_for,
)
from recordings import blobs
from recordings.capture_sql import (
    Row,
    SessionRead,
    VersionConflict,
    session_commit,
    session_read,
)
from recordings.ingest import images
from recordings.ingest.events import AnalyticsEvent
from recordings.ingest.parse import IngestError, SessionRef, SnapshotBatch
from recordings.ingest.stats import EventStats, summarize
from recordings.models import (
    OVERSIZED_EVENT_BYTES,
    Event,
    Person,
    Project,
    Recording,
    SessionLedger,
    SnapshotChunk,
)

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)

# rrweb timestamps are epoch milliseconds; anything outside these years is a broken
# client clock or garbage, and would not fit a database datetime anyway.
_MIN_TS_MS = 946_684_800_000  # 2000-01-01
_MAX_TS_MS = 4_102_444_800_000  # 2100-01-01


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    recording_id: int | None  # None for a batch already stored (a client retry)
    stored: bool


def ms_to_datetime(ms: int | float) -> dt.datetime:
    if not _MIN_TS_MS <= ms <= _MAX_TS_MS:
        raise IngestError(
            "invalid_timestamp", f"event timestamp {ms!r} is out of range"
        )
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class _CheckedBatch:
    batch: SnapshotBatch
    stats: EventStats
    span: tuple[dt.datetime, dt.datetime]
    raw: bytes  # the events as JSON, before compression

    @property
    def largest_event(self) -> int:
        """JSON size of the biggest event: exact when it could be oversized, else
        the batch size (a cheap upper bound that cannot reach the threshold)."""
        if len(self.raw) < OVERSIZED_EVENT_BYTES:
            return len(self.raw)
        return max(len(blobs.dumps(event)) for event in self.batch.events)


@dataclasses.dataclass(frozen=True, slots=True)
class _Firewall:
    rules: CompiledRules
    blocklist: list[re.Pattern[str]]
    large: bool = False  # the request is big enough to swap inline images


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """One session's batches of a request, scrubbed and checked, ready to write."""

    project: Project
    session_id: str
    sent: list[tuple[SnapshotBatch, bytes]]  # each batch, and its events as sent
    stored: SessionRead
    fresh: list[_CheckedBatch]
    duplicates: int
    windows: dict[str, Any]  # window id -> ScrubState dict after these batches

    @property
    def changes_state(self) -> bool:
        return bool(self.fresh) or self.windows != _loads(self.stored.scrub_state)


def recording_ingest_batches(
    *, project: Project, batches: list[SnapshotBatch]
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
    """
    privacy = privacy_for(project)
    firewall = _Firewall(mask_rules_for(privacy), url_blocklist_for(privacy))
    groups = _by_session(batches)
    plans = [_plan(project, sid, group, firewall) for sid, group in groups.items()]
    if sum(len(i.raw) for p in plans for i in p.fresh) >= images.LARGE_PAYLOAD_BYTES:
        firewall = dataclasses.replace(firewall, large=True)
        plans = [_with_large(plan) for plan in plans]
    return [result for plan in plans for result in _store(plan, firewall)]


def _by_session(batches: list[SnapshotBatch]) -> dict[str, list[SnapshotBatch]]:
    groups: dict[str, list[SnapshotBatch]] = {}
    for batch in batches:
        groups.setdefault(batch.session_id, []).append(batch)
    return groups


def _plan(
    project: Project,
    session_id: str,
    batches: list[SnapshotBatch],
    firewall: _Firewall,
) -> _Plan:
    stored = session_read(project.pk, session_id, [batch.uuid for batch in batches])
    windows: dict[str, Any] = _loads(stored.scrub_state)
    seen = set(stored.batch_ids)
    # The firewall scrubs events in place; what was sent is kept as JSON (cheaper
    # than a copy) in case the batches must be scrubbed again (see _store).
    sent = [(batch, _dumps(batch.events)) for batch in batches]
    fresh, duplicates = [], 0
    for batch in batches:
        if batch.uuid in seen:
            duplicates += 1  # a retry (or the same batch twice in one request)
            continue
        seen.add(batch.uuid)
        item = _check(_scrubbed(batch, firewall.rules, firewall.blocklist, windows))
        if item is not None:
            fresh.append(item)
    plan = _Plan(project, session_id, sent, stored, fresh, duplicates, windows)
    return _with_large(plan) if firewall.large else plan


def _as_sent(plan: _Plan) -> list[SnapshotBatch]:
    return [
        dataclasses.replace(batch, events=tuple(orjson.loads(raw)))
        for batch, raw in plan.sent
    ]


def _with_large(plan: _Plan) -> _Plan:
    fresh = list(map(_without_inline_images, plan.fresh))
    return dataclasses.replace(plan, fresh=fresh)


def _loads(raw: str) -> dict[str, Any]:
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {}


def _scrubbed(
    batch: SnapshotBatch,
    rules: CompiledRules,
    blocklist: list[re.Pattern[str]],
    windows: dict[str, Any],
) -> SnapshotBatch:
    """The batch as the project's privacy rules allow it to be stored.

    Runs before anything is written, whatever the client was told: masking, blocking
    and card/pattern scrubbing (privacy/scrub). The per-window state carries the
    ids of blocked and masked nodes over to the session's next batches.
    """
    saved = windows.get(batch.window_id) or {}
    events, url = drop_blocked_pages(
        list(batch.events), blocklist, saved.get("url", "")
    )
    state = ScrubState.from_dict(saved)
    kept, report = scrub_events(events, rules, state)
    windows[batch.window_id] = {**state.to_dict(), "url": url}
    if report.cards_scrubbed or report.patterns_scrubbed:
        logger.info(
            "scrubbed %d card number(s) and %d pattern match(es) from session %s",
            report.cards_scrubbed,
            report.patterns_scrubbed,
            batch.session_id,
        )
    return dataclasses.replace(batch, events=tuple(kept))


def _check(batch: SnapshotBatch) -> _CheckedBatch | None:
    stats = summarize(batch.events)
    if stats.first_timestamp_ms is None or stats.last_timestamp_ms is None:
        return None  # an empty batch: nothing to store
    first = ms_to_datetime(stats.first_timestamp_ms)
    last = ms_to_datetime(stats.last_timestamp_ms)
    return _CheckedBatch(
        batch=batch, stats=stats, span=(first, last), raw=_dumps(batch.events)
    )


def _dumps(events: tuple[dict[str, Any], ...]) -> bytes:
    try:
        return blobs.dumps(list(events))
    except ValueError as exc:
        raise IngestError("invalid_event", str(exc)) from exc


def _without_inline_images(item: _CheckedBatch) -> _CheckedBatch:
    """Swap big inline data: images for a placeholder, so a huge page still records.

    Only payloads over 5 MB pay for this walk; smaller ones are stored as sent.
    """
    replaced = images.replace_data_url_images(list(item.batch.events))
    if not replaced:
        return item
    logger.info(
        "replaced %d inline image(s) in a large batch of session %s",
        replaced,
        item.batch.session_id,
    )
    return dataclasses.replace(item, raw=_dumps(item.batch.events))


@dataclasses.dataclass(frozen=True, slots=True)
class _Blob:
    item: _CheckedBatch
    key: str
    data: bytes  # gzip

    @property
    def size(self) -> int:
        return len(self.data)


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
        _ledger(plan.project, plan.session_id)  # locked until commit
        again = _plan(plan.project, plan.session_id, _as_sent(plan), firewall)
        return _store_once(again)


def _store_once(plan: _Plan) -> list[IngestResult]:
    duplicates = [IngestResult(recording_id=None, stored=False)] * plan.duplicates
    if not plan.changes_state:
        if plan.duplicates:
            _ledger_duplicates(plan.project, plan.session_id, plan.duplicates)
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
    return [stored] * len(written) + duplicates


def _write_blobs(plan: _Plan) -> list[_Blob]:
    """Write each fresh batch's blob under a key no other attempt uses.

    Outside any transaction (but in _store's locked round): a slow storage write
    must not hold locks. A blob under a new key is never read before a row points
    at it, so an attempt that loses (or dies) leaves at worst an orphan, which it
    deletes (or the orphan sweeper does), and never overwrites a blob a row points
    at, even with a retry racing its original.
    """
    written = [
        _Blob(
            item=item,
            key=blobs.chunk_key(
                plan.project.pk, plan.session_id, item.batch.uuid, _generation()
            ),
            data=blobs.compress(item.raw),
        )
        for item in plan.fresh
    ]
    try:
        blobs.put_chunks([(blob.key, blob.data) for blob in written])
    except blobs.StorageError:
        _discard_blobs(written)  # those written before the failure
        raise
    return written


def _generation() -> str:
    return uuid.uuid4().hex[:12]


def _discard_blobs(written: list[_Blob]) -> None:
    try:
        blobs.delete_blobs(blob.key for blob in written)
    except blobs.StorageError:
        logger.warning("could not delete unused blobs; the orphan sweeper will")


def _ledger_row(plan: _Plan, written: list[_Blob]) -> Row:
    """The session's ledger as inserted, and its changes when it exists already."""
    items = [blob.item for blob in written]
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
    }


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


_FOLD_FIELDS = tuple(field.name for field in dataclasses.fields(_Fold))


def _folded(plan: _Plan, written: list[_Blob]) -> Row | None:
    """The recording's row after these batches; its counters hold increments."""
    if not written:
        return None  # only the scrub state moved (a blocklisted page was dropped)
    if plan.stored.folded is not None:
        fold = _Fold(**plan.stored.folded)
    else:
        fold = _Fold(
            started_at=min(blob.item.span[0] for blob in written),
            ended_at=max(blob.item.span[1] for blob in written),
        )
    for blob in written:
        _fold_stats(fold, blob.item, blob.size)
    row = {name: getattr(fold, name) for name in _FOLD_FIELDS}
    return row | {"project_id": plan.project.pk, "session_id": plan.session_id}


def _chunk_rows(written: list[_Blob]) -> list[Row]:
    return [
        {
            "batch_id": blob.item.batch.uuid,
            "window_id": blob.item.batch.window_id,
            "blob_key": blob.key,
            "size_bytes": blob.size,
            "event_count": blob.item.stats.event_count,
            "first_timestamp": blob.item.span[0],
            "last_timestamp": blob.item.span[1],
        }
        for blob in written
    ]


def _lock_or_create(
    model: type[M], lookups: dict[str, Any], defaults: dict[str, Any]
) -> M:
    """The row matching `lookups`, locked for this transaction; created if absent.

    Must run inside a transaction. On PostgreSQL concurrent callers queue on the row
    lock, so read-modify-write updates of counters lose nothing.
    """
    locked = model._default_manager.select_for_update().filter(**lookups)
    try:
        return locked.get()
    except ObjectDoesNotExist:
        pass
    try:
        with transaction.atomic():
            # A row we insert stays locked until commit, like select_for_update.
            return model._default_manager.create(**lookups, **defaults)
    except IntegrityError:
        # Another request created it meanwhile; wait for its lock.
        return locked.get()


def _fold_stats(recording: _Fold, item: _CheckedBatch, size: int) -> None:
    batch, stats, span = item.batch, item.stats, item.span
    recording.largest_event_bytes = max(
        recording.largest_event_bytes, item.largest_event
    )
    if stats.first_url and (not recording.first_url or span[0] <= recording.started_at):
        recording.first_url = stats.first_url[:2048]
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


def orphan_blobs_delete(*, written_before: dt.datetime) -> int:
    """Delete blobs that no chunk points at, written before `written_before`.

    Capture writes a blob before the row that points at it, so a crash or a lost
    answer in between leaves a blob with no row (so do failed compactions). A
    younger one may still be about to be committed, so the caller gives a margin.
    Folders whose name is not one capture makes are left alone.
    """
    deleted = 0
    for folder in blobs.folders():
        owner = blobs.folder_owner(folder)
        keys = blobs.folder_blobs(folder)
        if owner is None or not keys:
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


def _window_chunks(
    recording: Recording, window_id: str | None
) -> models.QuerySet[SnapshotChunk]:
    chunks = recording.chunks.order_by("first_timestamp", "created")
    return chunks if window_id is None else chunks.filter(window_id=window_id)


def _data_keys(chunks: models.QuerySet[SnapshotChunk]) -> list[str]:
    """Blobs holding these chunks' events, each once (compacted chunks share one)."""
    return list(dict.fromkeys(chunk.data_key for chunk in chunks))


def _read_sorted(keys: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for key in keys:
        events.extend(blobs.open_chunk(key))
    # Client timestamps are not monotonic (back-dated session ends, late mouse moves):
    # the player needs them sorted. sort() is stable, so ties keep arrival order.
    events.sort(key=lambda event: event["timestamp"])
    return events


def recording_events(
    *, recording: Recording, window_id: str | None = None
) -> list[dict[str, Any]]:
    """The recording's rrweb events for playback, in time order."""
    return _read_sorted(_data_keys(_window_chunks(recording, window_id)))


def recording_window_blob(*, recording: Recording, window_id: str) -> bytes | None:
    """The stored gzip bytes of a compacted window, ready to send; None if loose.

    A compacted window is one blob of events already in time order, so playback can
    hand it over untouched with Content-Encoding: gzip.
    """
    keys = _data_keys(_window_chunks(recording, window_id))
    if len(keys) != 1 or not recording.chunks.filter(compacted_into=keys[0]).exists():
        return None
    return blobs.open_raw(keys[0])


def recordings_to_compact(
    *, now: dt.datetime, idle_minutes: int, limit: int = 1000
) -> list[int]:
    """Ids of recordings idle for `idle_minutes` that still have loose chunks."""
    idle_since = now - dt.timedelta(minutes=idle_minutes)
    pending = Recording.objects.needs_compaction(idle_since).order_by("last_batch_at")
    return list(pending.values_list("pk", flat=True)[:limit])


def recording_compact(*, recording: Recording) -> int:
    """Merge each window's loose chunks into one sorted blob; return windows written.

    Runs beside live ingest: only chunks read here are pointed at the new blob, so a
    batch that lands meanwhile stays loose for the next run. Blobs are written under
    new keys and the old ones deleted only after the rows point away from them.
    """
    reason = _excluded_by_rules(recording)
    if reason is not None:
        recording_discard(recording=recording, reason=reason)
        return 0
    loose = recording.chunks.filter(compacted_into="")
    windows = sorted(set(loose.values_list("window_id", flat=True)))
    written = sum(_compact_window(recording, window_id) for window_id in windows)
    _mark_compacted(recording)
    return written


def _excluded_by_rules(recording: Recording) -> str | None:
    """Why the project's recording rules say not to keep this finished recording."""
    privacy = privacy_for(recording.project)
    minimum = privacy.minimum_duration_ms
    if minimum and recording.duration_ms < minimum:
        return "below_minimum_duration"
    triggers = url_triggers_for(privacy)
    if triggers and not _visited_trigger_url(recording, triggers):
        return "url_trigger_not_matched"
    if privacy.linked_flag and not _linked_flag_on(recording, privacy.linked_flag):
        return "linked_flag_not_on"
    return None


def _visited_trigger_url(recording: Recording, triggers: list[re.Pattern[str]]) -> bool:
    """Whether the session ever showed a page matching a URL trigger.

    posthog-js uploads only from the page where a trigger matched. Here a session
    is kept whole once any of its pages matched, pages before the trigger page
    included: only a client that ignored the trigger sent them, and they show how
    the user got there. Triggers choose sessions worth keeping; the URL blocklist,
    enforced at ingest, is the tool for pages that must never be stored.
    The cheap sources go first; the blobs are read only while nothing matched.
    """
    if url_triggered([recording.first_url], triggers):
        return True
    events = Event.objects.filter(
        project_id=recording.project_id, session_id=recording.session_id
    )
    urls = events.values_list("properties__$current_url", flat=True)
    if url_triggered((url for url in urls if isinstance(url, str)), triggers):
        return True
    return any(
        url_triggered(page_urls(blobs.open_chunk(key)), triggers)
        for key in _data_keys(recording.chunks.all())
    )


def _linked_flag_on(recording: Recording, flag: str) -> bool:
    """Whether the session's analytics events show the linked flag on.

    A session that sent no analytics events (a plain rrweb client) never does.
    """
    events = Event.objects.filter(
        project_id=recording.project_id, session_id=recording.session_id
    )
    properties = events.values_list("properties", flat=True)
    return any(
        flag_active(props, flag)
        for props in properties.iterator(chunk_size=200)
        if isinstance(props, dict)
    )


def recording_discard(*, recording: Recording, reason: str) -> None:
    """Delete a recording the rules exclude, and say why in its session's ledger."""
    sessions = [SessionRef("", recording.session_id, recording.distinct_id)]
    recording_purge(recording=recording)
    ledger_record_refusal(project=recording.project, sessions=sessions, reason=reason)


def _compact_window(recording: Recording, window_id: str) -> bool:
    """Merge one window's chunks into a new blob; False if there was nothing to do."""
    with transaction.atomic():
        # Unlike ingest, this holds a transaction (and the recording's row lock)
        # across blob reads and writes: retroactive redaction takes the same lock
        # (privacy.services.recording_redact), and chunks read before it rewrote
        # them, merged after, would store the window unredacted. Compaction runs on
        # idle recordings, so a batch of the session rarely waits for it.
        if _locked(recording) is None:
            return False  # purged meanwhile
        chunks = list(_window_chunks(recording, window_id))
        if all(chunk.compacted_into for chunk in chunks):
            return False  # merged meanwhile by another run
        old_keys = _data_keys(recording.chunks.filter(pk__in=[c.pk for c in chunks]))
        events = _read_sorted(old_keys)
        key = blobs.window_key(
            recording.project_id, recording.session_id, window_id, uuid.uuid4().hex[:12]
        )
        blobs.put_chunk(key, blobs.encode_events(events))
        SnapshotChunk.objects.filter(pk__in=[c.pk for c in chunks]).update(
            compacted_into=key
        )
    # Only once no row points at them; a failure here leaves orphans for the sweeper.
    blobs.delete_blobs(old_keys)
    logger.info(
        "compacted %d chunk(s) of recording %s window %s into %s",
        len(chunks),
        recording.session_id,
        window_id or "-",
        key,
    )
    return True


@transaction.atomic
def _mark_compacted(recording: Recording) -> None:
    locked = _locked(recording)
    if locked is not None and not locked.chunks.filter(compacted_into="").exists():
        locked.compacted = True
        locked.size_bytes = _stored_bytes(locked)
        locked.save(update_fields=["compacted", "size_bytes"])


def _locked(recording: Recording) -> Recording | None:
    """The recording's row, locked until the transaction ends; None once deleted.

    Compaction, retroactive redaction and purge take it before they change the
    recording's blobs or chunk rows, so they take turns. It comes before any chunk
    row lock, and compaction and redaction never wait for the session's ledger row
    while holding it: ingest locks the ledger first and the recording second, so
    against them it only ever waits.
    """
    return Recording.objects.select_for_update().filter(pk=recording.pk).first()


def _stored_bytes(recording: Recording) -> int:
    keys = _data_keys(recording.chunks.all())
    return sum(blobs.size(key) for key in keys)


def events_ingest(
    *, project: Project, events: list[AnalyticsEvent], ip: str = ""
) -> int:
    """Store analytics events once each (a retried request repeats uuids).

    `ip` is the sender's address: stored as `$ip` only if the project stores IP
    addresses; otherwise no `$ip` is kept, whatever the client sent.
    """
    privacy = privacy_for(project)
    rules = mask_rules_for(privacy)
    stored_ip = ip if privacy.store_ip_addresses else None
    for event in events:
        _set_ip(event, stored_ip)
        # Card numbers and patterns in URLs, element texts and custom properties.
        scrub_json(event.properties, rules)
        scrub_json(event.person_set, rules)
        scrub_json(event.person_set_once, rules)
    rows = [
        Event(
            project=project,
            uuid=event.uuid,
            name=event.name,
            distinct_id=event.distinct_id,
            session_id=event.session_id,
            timestamp=event.timestamp,
            properties=event.properties,
        )
        for event in events
    ]
    with transaction.atomic():
        created = Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        for event in events:
            if event.person_set or event.person_set_once or event.anon_distinct_id:
                _person_update(project, event, stored_ip)
    return len(created)


def _set_ip(event: AnalyticsEvent, ip: str | None) -> None:
    """`$ip` is the server's to set: `ip`, or none at all when None (not stored)."""
    drop_ip(event.properties)
    event.person_set.pop("$ip", None)
    event.person_set_once.pop("$ip", None)
    if ip:
        event.properties["$ip"] = ip


def _person_update(project: Project, event: AnalyticsEvent, ip: str | None) -> None:
    """Fold `$set` / `$set_once` / `$identify` into the person (idempotent on retry).

    `ip` becomes the person's `$ip`; None (the project stores no IP addresses)
    removes one stored earlier.
    """
    if not event.distinct_id:
        return
    person = _lock_or_create(
        Person, {"project": project, "distinct_id": event.distinct_id}, {}
    )
    person.properties = {
        **event.person_set_once,
        **person.properties,
        **event.person_set,
    }
    if ip is None:
        person.properties.pop("$ip", None)
    elif ip:
        person.properties["$ip"] = ip
    anon = event.anon_distinct_id
    if anon and anon != event.distinct_id and anon not in person.anon_distinct_ids:
        person.anon_distinct_ids = [*person.anon_distinct_ids, anon][-20:]
    person.updated = now()
    person.save()
    if person_excluded(person.properties, privacy_for(project).excluded_people):
        _discard_person_recordings(project, person)


def _discard_person_recordings(project: Project, person: Person) -> None:
    """A person the rules exclude (e.g. internal users): drop what was recorded."""
    ids = [person.distinct_id, *person.anon_distinct_ids]
    for recording in Recording.objects.filter(project=project, distinct_id__in=ids):
        recording_discard(recording=recording, reason="excluded_person")


def person_is_excluded(*, project: Project, distinct_ids: set[str]) -> bool:
    """Whether batches from these distinct ids belong to an excluded person."""
    rules = privacy_for(project).excluded_people
    if not rules or not distinct_ids:
        return False
    people = Person.objects.filter(project=project, distinct_id__in=distinct_ids)
    return any(person_excluded(p.properties, rules) for p in people)


def recording_purge(*, recording: Recording) -> None:
    """Delete a recording: its blobs first, then its rows.

    Blobs go first so that a storage failure leaves the row (and the deletion can be
    retried) rather than a blob that no row points at any more.
    """
    keys = _data_keys(recording.chunks.all())
    blobs.delete_blobs(keys)
    with transaction.atomic():
        # The cascade deletes the chunk rows before the recording's: without its
        # lock first, a compaction or redaction holding it and waiting for a chunk
        # row would deadlock with this.
        _locked(recording)
        recording.delete()
    logger.info(
        "purged recording %s (project %s, %d blobs)",
        recording.session_id,
        recording.project_id,
        len(keys),
    )


def _ledger(project: Project, session_id: str) -> SessionLedger:
    return _lock_or_create(
        SessionLedger, {"project": project, "session_id": session_id}, {}
    )


def _ledger_duplicates(project: Project, session_id: str, count: int) -> None:
    changes = {"batches_duplicate": F("batches_duplicate") + count, "last_seen": now()}
    with transaction.atomic():
        _ledger_update(project, session_id, changes)


def _ledger_update(project: Project, session_id: str, changes: dict[str, Any]) -> None:
    rows = SessionLedger.objects.filter(project=project, session_id=session_id)
    if not rows.update(**changes):
        _ledger(project, session_id)  # first batch of the session: create the row
        rows.update(**changes)


def ledger_record_refusal(
    *, project: Project, sessions: list[SessionRef], reason: str
) -> None:
    """Note in each session's ledger that a batch was refused, and why.

    Best effort: the refusal itself must reach the client even when the database is
    what failed, so a failure here is logged, never raised.
    """
    try:
        with transaction.atomic():
            for ref in sessions:
                _ledger_refusal(project, ref, reason)
    except DatabaseError:
        logger.exception("could not note refusal %r in the ingest ledger", reason)


def _ledger_refusal(project: Project, ref: SessionRef, reason: str) -> None:
    ledger = _ledger(project, ref.session_id)
    ledger.batches_refused += 1
    ledger.refusals[reason] = ledger.refusals.get(reason, 0) + 1
    ledger.last_refusal = reason
    ledger.distinct_id = ref.distinct_id or ledger.distinct_id
    ledger.last_seen = now()
    ledger.save()


@dataclasses.dataclass(frozen=True, slots=True)
class CaptureHealth:
    lib_version: str
    total: int  # sessions that sent data
    missing: int  # ... of which no full snapshot ever arrived

    @property
    def rate(self) -> float:
        return self.missing / self.total if self.total else 0.0


def project_capture_health(*, project: Project, days: int) -> list[CaptureHealth]:
    """Missing-recordings rate per SDK version: sessions with data, no full snapshot."""
    rows = (
        SessionLedger.objects.filter(
            project=project,
            batches_accepted__gt=0,
            last_seen__gte=now() - dt.timedelta(days=days),
        )
        .values("lib_version")
        .annotate(
            total=Count("id"), missing=Count("id", filter=Q(has_full_snapshot=False))
        )
        .order_by("-total")
    )
    return [CaptureHealth(r["lib_version"], r["total"], r["missing"]) for r in rows]
