"""Privacy settings: changing them with an audit trail, and applying them again to
what is already stored (reading them is privacy.policy's)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models, transaction
from django.utils.timezone import now

from privacy.models import PrivacyAuditEntry, PrivacySettings
from privacy.policy import mask_rules_for, privacy_for, scrub_json
from privacy.rules import drop_ip
from privacy.scrub import CompiledRules, ScrubReport, ScrubState, scrub_events
from recordings.models import Event, Person, Project, Recording
from recordings.services.storage import BlobRewrite, recording_rewrite_blobs

logger = logging.getLogger(__name__)


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
    mutations. A blob is rewritten, whole and under the same key, only if it
    changed (recordings.services.recording_rewrite_blobs, under the recording's
    row lock, which compaction takes too).
    """

    def firewall() -> BlobRewrite[ScrubReport]:
        state = ScrubState()  # one per window
        return lambda events: scrub_events(events, rules, state)

    reports = recording_rewrite_blobs(recording=recording, rewrite=firewall)
    return Redaction(
        recordings=int(bool(reports)),
        blobs=len(reports),
        values=sum(map(_values_changed, reports)),
        events_dropped=sum(report.events_dropped for report in reports),
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
