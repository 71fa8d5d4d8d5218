"""Work that crosses models or touches blob storage: ingest and playback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import uuid
from typing import Any, TypeVar

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
    recording: Recording | None
    stored: bool  # False when the batch was already stored (a client retry) or empty


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


def recording_ingest_batches(
    *, project: Project, batches: list[SnapshotBatch]
) -> list[IngestResult]:
    """Store batches of sessions, each once, folding their numbers into recordings.

    Every batch is checked before the first is written, so a request with one bad
    batch stores nothing. Raises IngestError for data that can never be stored, and
    blobs.StorageError or DatabaseError when storing failed (the caller answers 503
    so that the client retries; batches already stored are then recognised).
    """
    privacy = privacy_for(project)
    rules = mask_rules_for(privacy)
    blocklist = url_blocklist_for(privacy)
    states = _scrub_states(project, {batch.session_id for batch in batches})
    batches = [_scrubbed(batch, rules, blocklist, states) for batch in batches]
    checked = [item for item in map(_check, batches) if item is not None]
    if sum(len(item.raw) for item in checked) >= images.LARGE_PAYLOAD_BYTES:
        checked = [_without_inline_images(item) for item in checked]
    return _store_all(project, checked, states)


ScrubStates = dict[str, dict[str, Any]]  # session id -> window id -> ScrubState dict


def _scrub_states(project: Project, session_ids: set[str]) -> ScrubStates:
    rows = SessionLedger.objects.filter(project=project, session_id__in=session_ids)
    return dict(rows.values_list("session_id", "scrub_state"))


def _scrubbed(
    batch: SnapshotBatch,
    rules: CompiledRules,
    blocklist: list[re.Pattern[str]],
    states: ScrubStates,
) -> SnapshotBatch:
    """The batch as the project's privacy rules allow it to be stored.

    Runs before anything is written, whatever the client was told: masking, blocking
    and card/pattern scrubbing (privacy/scrub.py). The per-window state carries the
    ids of blocked and masked nodes over to the session's next batches.
    """
    windows = states.setdefault(batch.session_id, {})
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
    size: int


def _store_all(
    project: Project, checked: list[_CheckedBatch], states: ScrubStates
) -> list[IngestResult]:
    seen = _stored_batch_ids(project, checked)
    results = []
    sessions = _by_session(checked)
    for session_id, items in sessions.items():
        fresh = [item for item in items if (session_id, item.batch.uuid) not in seen]
        if len(fresh) < len(items):
            _ledger_duplicates(project, session_id, len(items) - len(fresh))
        if fresh:
            state = states.get(session_id, {})
            results.extend(_store_session(project, session_id, fresh, state))
    for session_id in states.keys() - sessions.keys():
        # Everything was dropped (a blocklisted page): nothing to store, but the
        # window's state (which page it is on) must carry over to the next batch.
        with transaction.atomic():
            _ledger_update(project, session_id, {"scrub_state": states[session_id]})
    return results


def _by_session(checked: list[_CheckedBatch]) -> dict[str, list[_CheckedBatch]]:
    groups: dict[str, list[_CheckedBatch]] = {}
    for item in checked:
        groups.setdefault(item.batch.session_id, []).append(item)
    return groups


def _stored_batch_ids(
    project: Project, checked: list[_CheckedBatch]
) -> set[tuple[str, str]]:
    """(session id, batch id) of this request's batches already stored: retries,
    found in one query."""
    stored = SnapshotChunk.objects.filter(
        recording__project=project,
        recording__session_id__in={item.batch.session_id for item in checked},
        batch_id__in=[item.batch.uuid for item in checked],
    ).values_list("recording__session_id", "batch_id")
    wanted = {(item.batch.session_id, item.batch.uuid) for item in checked}
    return {pair for pair in stored if pair in wanted}


def _store_session(
    project: Project,
    session_id: str,
    items: list[_CheckedBatch],
    scrub_state: dict[str, Any],
) -> list[IngestResult]:
    written = []
    for item in items:
        key = blobs.chunk_key(project.pk, session_id, item.batch.uuid)
        data = blobs.compress(item.raw)
        # Upload outside the transaction: a slow storage write must not hold row
        # locks, and a blob with no row is harmless (the same key is rewritten on
        # retry), while a row pointing at a missing blob could not play.
        blobs.put_chunk(key, data)
        written.append(_Blob(item=item, key=key, size=len(data)))
    return _record_chunks(project, session_id, written, scrub_state)


@transaction.atomic
def _record_chunks(
    project: Project,
    session_id: str,
    written: list[_Blob],
    scrub_state: dict[str, Any],
) -> list[IngestResult]:
    """One transaction per session per request: rows, counters and ledger."""
    span = (
        min(blob.item.span[0] for blob in written),
        max(blob.item.span[1] for blob in written),
    )
    recording = _locked_recording(project, session_id, span)
    # Re-checked under the lock: a concurrent retry of the same batch may have won.
    won = set(
        recording.chunks.filter(
            batch_id__in=[blob.item.batch.uuid for blob in written]
        ).values_list("batch_id", flat=True)
    )
    fresh = [blob for blob in written if blob.item.batch.uuid not in won]
    SnapshotChunk.objects.bulk_create(_chunk_row(recording, blob) for blob in fresh)
    for blob in fresh:
        _fold_stats(recording, blob.item, blob.size)
    recording.save(update_fields=_FOLDED_FIELDS)
    items = [blob.item for blob in fresh]
    _ledger_accepted(project, session_id, items, len(won), scrub_state)
    stored = {blob.item.batch.uuid for blob in fresh}
    return [
        IngestResult(recording=recording, stored=blob.item.batch.uuid in stored)
        for blob in written
    ]


def _chunk_row(recording: Recording, blob: _Blob) -> SnapshotChunk:
    item = blob.item
    return SnapshotChunk(
        recording=recording,
        batch_id=item.batch.uuid,
        window_id=item.batch.window_id,
        blob_key=blob.key,
        size_bytes=blob.size,
        event_count=item.stats.event_count,
        first_timestamp=item.span[0],
        last_timestamp=item.span[1],
    )


def _locked_recording(
    project: Project, session_id: str, span: tuple[dt.datetime, dt.datetime]
) -> Recording:
    """The session's recording, created if new, locked against concurrent batches."""
    return _lock_or_create(
        Recording,
        {"project": project, "session_id": session_id},
        {"started_at": span[0], "ended_at": span[1]},
    )


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


_FOLDED_FIELDS = [
    "first_url",
    "max_gap_ms",
    "started_at",
    "ended_at",
    "duration_ms",
    "click_count",
    "keypress_count",
    "console_error_count",
    "has_full_snapshot",
    "size_bytes",
    "event_count",
    "largest_event_bytes",
    "distinct_id",
    "lib",
    "lib_version",
    "last_batch_at",
    "compacted",
]


def _fold_stats(recording: Recording, item: _CheckedBatch, size: int) -> None:
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


def _ledger_accepted(
    project: Project,
    session_id: str,
    items: list[_CheckedBatch],
    duplicates: int,
    scrub_state: dict[str, Any],
) -> None:
    """Count stored batches in the session's ledger: one UPDATE in the common case."""
    changes: dict[str, Any] = {
        "scrub_state": scrub_state,
        "batches_accepted": F("batches_accepted") + len(items),
        "batches_duplicate": F("batches_duplicate") + duplicates,
        "events_accepted": F("events_accepted")
        + sum(i.stats.event_count for i in items),
        "last_seen": now(),
    }
    if any(item.stats.has_full_snapshot for item in items):
        changes["has_full_snapshot"] = True
    newest = items[-1].batch if items else None
    if newest and newest.distinct_id:
        changes["distinct_id"] = newest.distinct_id
    if newest and newest.lib_version:
        changes["lib_version"] = newest.lib_version
    _ledger_update(project, session_id, changes)


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
