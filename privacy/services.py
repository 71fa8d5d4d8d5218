"""Privacy settings: reading them for a project, changing them with an audit trail,
and applying them again to what is already stored."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models, transaction
from django.db.models import F
from django.utils.timezone import now

from privacy.models import (
    PrivacyAuditEntry,
    PrivacySettings,
    split_lines,
    split_selectors,
)
from privacy.rules import drop_ip
from privacy.scrub import (
    CompiledRules,
    MaskRules,
    ScrubReport,
    ScrubState,
    compile_rules,
    scrub_events,
    scrub_text,
)
from privacy.scrub.regex import Regex, compile_regex
from recordings import blobs
from recordings.models import Event, Person, Project, Recording, SnapshotChunk

logger = logging.getLogger(__name__)


def privacy_for(project: Project) -> PrivacySettings:
    """The project's settings; defaults (saved) for a project that has none yet."""
    try:
        # Loaded with select_related("privacy") on hot paths. django-stubs does not
        # always see this reverse one-to-one across apps (it does with every app
        # loaded, as in `mypy .`), hence the ignore.
        cached: PrivacySettings = project.privacy  # type: ignore[attr-defined,unused-ignore]
        return cached
    except PrivacySettings.DoesNotExist:
        settings, _ = PrivacySettings.objects.get_or_create(project=project)
        return settings


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a field value for the audit log."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


@transaction.atomic
def privacy_settings_update(
    *,
    settings: PrivacySettings,
    actor: User | AnonymousUser | None,
    before: dict[str, Any],
) -> PrivacyAuditEntry | None:
    """Save settings already changed in memory, and record what changed and who.

    `before` holds the field values as they were; unchanged fields leave no trace,
    and a save that changes nothing writes no audit entry.
    """
    changes = {
        name: [_plain(old), _plain(getattr(settings, name))]
        for name, old in before.items()
        if old != getattr(settings, name)  # Decimal("1.000") == Decimal("1")
    }
    settings.updated = now()
    settings.save()
    if not changes:
        return None
    user = actor if isinstance(actor, User) else None
    return PrivacyAuditEntry.objects.create(
        project=settings.project,
        actor=user,
        actor_name=user.get_username() if user else "",
        changes=changes,
    )


def audited_fields() -> list[str]:
    return [
        f.name
        for f in PrivacySettings._meta.concrete_fields
        if f.name not in {"id", "project", "updated"}
    ]


# When a project's saved selectors or patterns no longer compile (a newer parser, a
# row saved before patterns ran on RE2, a hand-edited row), capture must neither
# crash nor store more than asked: fall back to masking every text and input,
# keeping the card scrubbing and the patterns that do compile, and say so in the log.
_STRICTEST = MaskRules(mask_all_inputs=True, mask_all_text=True)


def mask_rules_for(privacy: PrivacySettings) -> CompiledRules:
    """The project's masking rules, compiled (and cached by their values)."""
    rules = MaskRules(
        mask_all_inputs=privacy.mask_all_inputs,
        mask_all_text=privacy.mask_all_text,
        mask_selectors=tuple(split_selectors(privacy.mask_selectors)),
        block_selectors=tuple(split_selectors(privacy.block_selectors)),
        unmask_selectors=tuple(split_selectors(privacy.unmask_selectors)),
        scrub_card_numbers=privacy.scrub_card_numbers,
        extra_patterns=tuple(split_lines(privacy.scrub_patterns)),
        record_cross_origin_iframes=privacy.record_cross_origin_iframes,
    )
    try:
        return compile_rules(rules)
    except ValueError as exc:
        return _strictest_rules(rules, str(exc))


@functools.lru_cache(maxsize=64)
def _strictest_rules(rules: MaskRules, error: str) -> CompiledRules:
    # Cached like compile_rules, so the log says it once per process, not per batch.
    logger.error(
        "privacy rules do not compile (%s); masking all text and inputs", error
    )
    return compile_rules(
        dataclasses.replace(_STRICTEST, extra_patterns=_runnable(rules.extra_patterns))
    )


def _runnable(patterns: tuple[str, ...]) -> tuple[str, ...]:
    def runs(pattern: str) -> bool:
        try:
            compile_rules(MaskRules(extra_patterns=(pattern,)))
        except ValueError:
            return False
        return True

    return tuple(filter(runs, patterns))


def scrub_json(value: Any, rules: CompiledRules) -> int:
    """Scrub card numbers and patterns from every string inside a JSON value, in
    place (an analytics event's properties); return how many were found."""
    found = 0
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(items):
            if isinstance(child, str):
                cleaned, hits = scrub_text(child, rules)
                if hits:
                    node[key] = cleaned
                    found += hits
            elif isinstance(child, dict | list):
                stack.append(child)
    return found


def url_blocklist_for(privacy: PrivacySettings) -> list[Regex]:
    """The blocklist's regexes. A line RE2 cannot run blocks every page (logged):
    what it was meant to keep out cannot be told apart from the rest."""
    return [
        _regex(line, "URL blocklist") or _EVERY_URL
        for line in split_lines(privacy.url_blocklist)
    ]


def url_triggers_for(privacy: PrivacySettings) -> list[Regex]:
    """The URL triggers' regexes; a line RE2 cannot run is skipped (logged)."""
    compiled = (
        _regex(line, "URL trigger") for line in split_lines(privacy.url_triggers)
    )
    return [regex for regex in compiled if regex is not None]


_EVERY_URL = compile_regex("")  # the empty pattern matches every URL


@functools.lru_cache(maxsize=256)
def _regex(line: str, what: str) -> Regex | None:
    # Cached: every batch asks, and a line that cannot run is logged once per process.
    try:
        return compile_regex(line)
    except ValueError as exc:
        logger.error("%s entry cannot be used: %s", what, exc)
        return None


# --- retroactive redaction ---------------------------------------------------------

_ROWS_PER_PAGE = 500


@dataclasses.dataclass
class Redaction:
    """What applying the rules again to stored data changed: counts, no content."""

    recordings: int = 0  # recordings with at least one blob rewritten
    blobs: int = 0  # blobs rewritten
    # Input values and texts masked, card numbers and patterns scrubbed, frame
    # documents dropped. Elements blocked by a new selector show in `blobs` only:
    # the firewall cannot tell a new placeholder from one it made before.
    values: int = 0
    events_dropped: int = 0  # rrweb events no longer kept (inside blocked elements)
    analytics_events: int = 0  # Event rows rewritten
    people: int = 0  # Person rows rewritten

    def add(self, other: Redaction) -> None:
        for name, value in dataclasses.asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def recordings_redact(
    *, project: Project, actor: User | None = None
) -> PrivacyAuditEntry:
    """Apply the project's current privacy rules to everything it has stored.

    Recording blobs (live chunks and compacted windows), analytics events and
    people are rewritten where the rules now change them (with IP storage off,
    `$ip` goes too), and the privacy audit log says who asked and how much changed.
    """
    privacy = privacy_for(project)
    rules = mask_rules_for(privacy)
    total = Redaction()
    # Ids first: no cursor stays open on a table this loop writes to.
    ids = list(Recording.objects.for_project(project).values_list("pk", flat=True))
    for recording_id in ids:
        recording = Recording.objects.filter(pk=recording_id).first()
        if recording is not None:  # purged meanwhile
            total.add(recording_redact(recording=recording, rules=rules))
    strip_ip = not privacy.store_ip_addresses
    total.analytics_events = _redact_properties(
        Event.objects.filter(project=project), rules, strip_ip
    )
    total.people = _redact_properties(
        Person.objects.filter(project=project), rules, strip_ip
    )
    logger.info("applied the privacy rules of %s to stored data: %s", project, total)
    return PrivacyAuditEntry.objects.create(
        project=project,
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        changes={"retroactive_redaction": [None, dataclasses.asdict(total)]},
    )


def recording_redact(*, recording: Recording, rules: CompiledRules) -> Redaction:
    """Run the firewall with `rules` again over a recording's stored blobs.

    Each window's blobs go through in time order with one ScrubState, as ingest
    scrubbed its batches, so what a snapshot masks or blocks stays so in later
    mutations. A blob is rewritten, whole and under the same key, only if it changed.
    """
    result = Redaction()
    failure: blobs.StorageError | None = None
    with transaction.atomic():
        # Unlike ingest, this holds a transaction and the recording's row lock
        # across blob reads and writes: compaction takes the same lock
        # (recordings.services.storage.recording_lock), and a compaction that read
        # the chunks before they were rewritten here would store its window blob
        # unredacted.
        # Ingest of this session waits meanwhile; on SQLite every write does.
        if Recording.objects.select_for_update().filter(pk=recording.pk).first():
            try:
                _redact_windows(recording, rules, result)
            except blobs.StorageError as exc:
                # The blobs rewritten so far stay so: commit their new sizes.
                failure = exc
    if failure is not None:
        raise failure
    result.recordings = int(result.blobs > 0)
    return result


def _redact_windows(
    recording: Recording, rules: CompiledRules, result: Redaction
) -> None:
    for keys in _windows(recording):
        state = ScrubState()
        for key in keys:
            _redact_blob(recording, key, rules, state, result)


def _windows(recording: Recording) -> list[list[str]]:
    """The recording's blob keys, per window, in time order."""
    chunks = recording.chunks.order_by("first_timestamp", "created").values_list(
        "window_id", "blob_key", "compacted_into"
    )
    windows: dict[str, dict[str, None]] = {}
    for window_id, blob_key, compacted_into in chunks:
        windows.setdefault(window_id, {})[compacted_into or blob_key] = None
    return [list(keys) for keys in windows.values()]


def _redact_blob(
    recording: Recording,
    key: str,
    rules: CompiledRules,
    state: ScrubState,
    result: Redaction,
) -> None:
    events = blobs.open_chunk(key)
    before = blobs.dumps(events)
    kept, report = scrub_events(events, rules, state)
    after = blobs.dumps(kept)
    if after == before:
        return
    old_size = blobs.size(key)
    data = blobs.compress(after)
    # Same key, replaced whole: a rename on local disk, one PUT on S3, so a reader
    # gets the old blob or the new one, never half of either.
    blobs.put_chunk(key, data)
    _recount(recording, key, len(data) - old_size, len(kept), report.events_dropped)
    result.blobs += 1
    result.values += _values_changed(report)
    result.events_dropped += report.events_dropped


def _recount(
    recording: Recording, key: str, size_change: int, kept: int, dropped: int
) -> None:
    # A loose chunk alone in its blob follows it; the events of a blob shared by
    # several chunks (a window blob, or one request's batches of a window) are not
    # split by chunk, so only the recording's totals follow those.
    loose = SnapshotChunk.objects.filter(
        recording=recording, blob_key=key, compacted_into=""
    )
    if loose.count() == 1:
        loose.update(size_bytes=F("size_bytes") + size_change, event_count=kept)
    Recording.objects.filter(pk=recording.pk).update(
        size_bytes=F("size_bytes") + size_change,
        event_count=F("event_count") - dropped,
    )


def _values_changed(report: ScrubReport) -> int:
    return (
        report.inputs_masked
        + report.texts_masked
        + report.cards_scrubbed
        + report.patterns_scrubbed
        + report.frames_dropped
    )


def _redact_properties(
    rows: models.QuerySet[Any], rules: CompiledRules, strip_ip: bool
) -> int:
    """Scrub the `properties` of every row, a page at a time; return rows changed."""
    changed_rows = 0
    last = 0
    while True:
        with transaction.atomic():
            # Locked: ingest folds `$set` into people with read-modify-write.
            page = list(
                rows.select_for_update()
                .filter(pk__gt=last)
                .order_by("pk")
                .only("pk", "properties")[:_ROWS_PER_PAGE]
            )
            if not page:
                return changed_rows
            last = page[-1].pk
            changed = [
                row for row in page if _redact_json(row.properties, rules, strip_ip)
            ]
            rows.bulk_update(changed, ["properties"])
        changed_rows += len(changed)


def _redact_json(value: Any, rules: CompiledRules, strip_ip: bool) -> int:
    if not isinstance(value, dict | list):
        return 0
    found = scrub_json(value, rules)
    if strip_ip and isinstance(value, dict):
        found += drop_ip(value)
    return found
