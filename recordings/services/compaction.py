"""Compaction of idle recordings, and the recording rules applied when they end."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction

from privacy.models import PrivacySettings
from privacy.policy import (
    privacy_for,
    rules_changed_since,
    url_triggers_for,
)
from privacy.rules import (
    flag_active,
    page_urls,
    url_triggered,
)
from privacy.scrub.regex import Regex
from recordings import blobs
from recordings.ingest.parse import SessionRef
from recordings.ingest.playability import check_window
from recordings.models import (
    Event,
    Recording,
    SnapshotChunk,
    WindowBlob,
)
from recordings.services.exclusions import person_is_excluded
from recordings.services.ledger import ledger_record_refusal
from recordings.services.recording_signals import recording_signals_update
from recordings.services.segments import window_blob_index
from recordings.services.storage import (
    RecordingOnHold,
    blob_events_read,
    chunk_data_keys,
    events_by_key,
    recording_chunks,
    recording_lock,
    recording_purge,
    recording_stored_bytes,
    stored_keys,
)

logger = logging.getLogger(__name__)


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
        try:
            recording_discard(recording=recording, reason=reason)
            return 0
        except RecordingOnHold:
            # A recording on legal hold is kept whatever the rules say.
            logger.info("kept recording %s: on legal hold", recording.code)
    loose = recording.chunks.filter(compacted_into="")
    windows = sorted(set(loose.values_list("window_id", flat=True)))
    written = sum(_compact_window(recording, window_id) for window_id in windows)
    _mark_compacted(recording)
    # The recording has gone idle: its signals, from every window in order.
    recording_signals_update(recording=recording)
    return written


def _excluded_by_rules(recording: Recording) -> str | None:
    """Why the project's recording rules say not to keep this finished recording.

    Only the rules in force when its first batch arrived count: a rule saved
    since applies to the sessions that come next, never to this one, so saving a
    rule never deletes what was already recorded (deleting that is an explicit,
    audited action: privacy.exclusion).
    """
    privacy = privacy_for(recording.project)
    newer = rules_changed_since(recording.project_id, recording.created, _RULES)
    for rule, check in _CHECKS:
        reason = None if rule in newer else check(recording, privacy)
        if reason is not None:
            return reason
    return None


def _too_short(recording: Recording, privacy: PrivacySettings) -> str | None:
    minimum = privacy.minimum_duration_ms
    if minimum and recording.duration_ms < minimum:
        return "below_minimum_duration"
    return None


def _no_trigger_url(recording: Recording, privacy: PrivacySettings) -> str | None:
    triggers = url_triggers_for(privacy)
    if triggers and not _visited_trigger_url(recording, triggers):
        return "url_trigger_not_matched"
    return None


def _flag_off(recording: Recording, privacy: PrivacySettings) -> str | None:
    if privacy.linked_flag and not _linked_flag_on(recording, privacy.linked_flag):
        return "linked_flag_not_on"
    return None


def _person_excluded(recording: Recording, privacy: PrivacySettings) -> str | None:
    """The session's person is one the rules exclude, known only after its first
    batches (identify() comes after the page starts recording)."""
    if not privacy.excluded_people:
        return None
    events = Event.objects.filter(
        project_id=recording.project_id, session_id=recording.session_id
    )
    ids = {recording.distinct_id, *events.values_list("distinct_id", flat=True)}
    ids.discard("")
    excluded = person_is_excluded(
        project=recording.project, distinct_ids=ids, privacy=privacy
    )
    return "excluded_person" if excluded else None


# Each rule applied to a finished recording: the setting, and its check.
_CHECKS: tuple[tuple[str, Callable[[Recording, PrivacySettings], str | None]], ...] = (
    ("minimum_duration_ms", _too_short),
    ("url_triggers", _no_trigger_url),
    ("linked_flag", _flag_off),
    ("excluded_people", _person_excluded),
)
_RULES = tuple(rule for rule, _ in _CHECKS)


def _visited_trigger_url(recording: Recording, triggers: list[Regex]) -> bool:
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
    keys = chunk_data_keys(chunks=recording.chunks.all())
    return any(
        url_triggered(page_urls(events), triggers)
        for events in events_by_key(keys=keys)
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
    """Merge one window's chunks into a new blob; False if there was nothing to do.

    The window blob is the recording's first write to object storage (but for
    batches too big for rows): live chunks empty their bytes in the same commit
    that points them at it.
    """
    with transaction.atomic():
        # Unlike ingest, this holds a transaction (and the recording's row lock)
        # across blob reads and writes: retroactive redaction takes the same lock
        # (storage.recording_rewrite_blobs), and chunks read before it rewrote
        # them, merged after, would store the window unredacted. Compaction runs on
        # idle recordings, so a batch of the session rarely waits for it.
        locked = recording_lock(recording=recording)
        if locked is None:
            return False  # purged meanwhile
        chunks = list(recording_chunks(recording=recording, window_id=window_id))
        if all(chunk.compacted_into for chunk in chunks):
            return False  # merged meanwhile by another run
        old_keys = chunk_data_keys(
            chunks=recording.chunks.filter(pk__in=[c.pk for c in chunks])
        )
        events = blob_events_read(keys=old_keys)
        key = blobs.window_key(
            recording.project_id, recording.session_id, window_id, uuid.uuid4().hex[:12]
        )
        data, segments = blobs.encode_segmented(events)
        blobs.put_chunk(key, data)
        SnapshotChunk.objects.filter(pk__in=[c.pk for c in chunks]).update(
            compacted_into=key, data=None
        )
        # The window's earlier blob (compacted before this batch came) goes.
        WindowBlob.objects.filter(recording=recording, key__in=old_keys).delete()
        window_blob_index(
            recording=locked, window_id=window_id, key=key, segments=segments
        )
        _record_window_check(locked, window_id, events)
    # Only once no row points at them; a failure here leaves orphans for the sweeper.
    blobs.delete_blobs(stored_keys(old_keys))
    # The code, not the session id, window id or blob key (which names the
    # session): log lines outlive an erasure.
    logger.info(
        "compacted %d chunk(s) of a window of recording %s", len(chunks), recording.code
    )
    return True


def _record_window_check(
    recording: Recording, window_id: str, events: list[dict[str, Any]]
) -> None:
    """Store how well this window will play, now that all its events are in hand."""
    check = check_window(events)
    recording.window_checks = {**recording.window_checks, window_id: check.as_dict()}
    checks = [v for v in recording.window_checks.values() if isinstance(v, dict)]
    recording.lost_changes = sum(check.get("lost_changes", 0) for check in checks)
    recording.checked_gap_ms = max(
        (check.get("longest_gap_ms", 0) for check in checks), default=0
    )
    recording.save(update_fields=["window_checks", "lost_changes", "checked_gap_ms"])
    if check.lost_changes:
        logger.warning(
            "recording %s: %d page change(s) in a window refer to elements never "
            "recorded; batches in between were lost",
            recording.code,
            check.lost_changes,
        )


@transaction.atomic
def _mark_compacted(recording: Recording) -> None:
    locked = recording_lock(recording=recording)
    if locked is not None and not locked.chunks.filter(compacted_into="").exists():
        locked.compacted = True
        locked.size_bytes = recording_stored_bytes(recording=locked)
        locked.save(update_fields=["compacted", "size_bytes"])


def recording_compact_windows(*, recording: Recording) -> int:
    """Merge each window's loose chunks into its blob, and nothing else: no
    recording rules, no signals update. For a recording whose signals and markers
    come with it (an import, playback/transfer.py); returns windows written."""
    loose = recording.chunks.filter(compacted_into="")
    windows = sorted(set(loose.values_list("window_id", flat=True)))
    written = sum(_compact_window(recording, window_id) for window_id in windows)
    _mark_compacted(recording)
    return written
