"""Retention: what a project keeps, for how long, and the legal holds that override it.

A session's data expires `retention_days` after its last batch arrived (the server's
clock, not the browser's): its recording (rows and blobs), its analytics events and
its ingest-ledger row. A recording on legal hold is kept past its period, with its
events and ledger row, and cannot be deleted until the hold is lifted. Every run
that deleted anything, and every hold placed or lifted, leaves an entry in the
project's privacy audit log holding counts and recording codes, never personal data.
Holds are placed and lifted by recordings.services.recordings_hold (a field of
Recording, which purge refuses to delete).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from privacy.models import PrivacyAuditEntry
from privacy.policy import privacy_for
from recordings.models import Event, Project, Recording, SessionLedger
from recordings.services.storage import RecordingOnHold, recording_purge

logger = logging.getLogger(__name__)

# Rows deleted per statement, and recordings purged between progress reports.
BATCH = 500


@dataclasses.dataclass
class Expiry:
    """What one project's retention run deleted (or, in a dry run, would delete)."""

    cutoff: dt.datetime
    recordings: int = 0
    bytes: int = 0
    markers: int = 0  # deleted with their recordings
    events: int = 0
    ledger_rows: int = 0
    held: int = 0  # recordings past the cutoff kept for a legal hold

    @property
    def deleted_anything(self) -> bool:
        return bool(self.recordings or self.events or self.ledger_rows)

    def summary(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "recordings": self.recordings,
            "bytes": self.bytes,
            "markers": self.markers,
            "events": self.events,
            "ledger_rows": self.ledger_rows,
            "kept_on_legal_hold": self.held,
        }


Progress = Callable[[Project, Expiry], None]


def retention_cutoff(project: Project, now: dt.datetime) -> dt.datetime:
    """Sessions whose last batch arrived before this have expired."""
    return now - dt.timedelta(days=privacy_for(project).retention_days)


def recordings_expired(project: Project, now: dt.datetime) -> QuerySet[Recording]:
    """The project's recordings past retention and not on legal hold."""
    cutoff = retention_cutoff(project, now)
    return Recording.objects.filter(
        project=project, last_batch_at__lt=cutoff, legal_hold=False
    )


def project_expire(
    *,
    project: Project,
    now: dt.datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Expiry:
    """Delete what the project keeps past its retention; return what was deleted.

    Recordings go one by one through the same purge as a manual delete (blobs
    first, then rows, under the recording's lock), so a failure part-way leaves
    the rest for the next run and never a row without its blobs.
    """
    cutoff = retention_cutoff(project, now)
    expiry = Expiry(cutoff=cutoff)
    held = _held_sessions(project)
    expiry.held = (
        Recording.objects.filter(project=project, last_batch_at__lt=cutoff)
        .filter(legal_hold=True)
        .count()
    )
    # Ids first: no cursor stays open on the table the loop deletes from.
    expired = recordings_expired(project, now)
    for ids in _batches(expired.values_list("pk", flat=True)):
        for recording in Recording.objects.filter(pk__in=ids, legal_hold=False):
            markers = recording.markers.count()
            if not dry_run:
                try:
                    if not recording_purge(recording=recording):
                        continue  # another run deleted it: its audit counts it
                except RecordingOnHold:  # held since the query above: kept
                    expiry.held += 1
                    continue
            expiry.recordings += 1
            expiry.bytes += recording.size_bytes
            expiry.markers += markers
        if progress is not None:
            progress(project, expiry)
    events = Event.objects.filter(project=project, created__lt=cutoff).exclude(
        session_id__in=held
    )
    ledger = SessionLedger.objects.filter(
        project=project, last_seen__lt=cutoff
    ).exclude(session_id__in=held)
    expiry.events = rows_delete(events, dry_run=dry_run)
    expiry.ledger_rows = rows_delete(ledger, dry_run=dry_run)
    if expiry.deleted_anything and not dry_run:
        _audit(project, None, {"retention_expiry": [None, expiry.summary()]})
    logger.info(
        "retention of %s%s: %s",
        project,
        " (dry run)" if dry_run else "",
        expiry.summary(),
    )
    return expiry


def projects_expire(
    *, now: dt.datetime, dry_run: bool = False, progress: Progress | None = None
) -> dict[Project, Expiry]:
    """Run retention over every project."""
    return {
        project: project_expire(
            project=project, now=now, dry_run=dry_run, progress=progress
        )
        for project in Project.objects.order_by("pk")
    }


def _held_sessions(project: Project) -> QuerySet[Recording, str]:
    held = Recording.objects.filter(project=project, legal_hold=True)
    return held.values_list("session_id", flat=True)


def _batches(ids: QuerySet[Recording, int]) -> Iterable[list[int]]:
    pending = list(ids)
    for start in range(0, len(pending), BATCH):
        yield pending[start : start + BATCH]


def rows_delete(rows: QuerySet[Any], *, dry_run: bool) -> int:
    """Delete `rows` BATCH at a time (no huge statement or lock); how many went.

    The count is of rows this call deleted, as the database says: a row another
    run deleted between the select and the delete is not counted twice. A dry run
    counts instead. Also used by erasure (privacy.erasure).
    """
    if dry_run:
        return rows.count()
    deleted = 0
    label = rows.model._meta.label
    while True:
        ids = list(rows.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        _, per_model = rows.model.objects.filter(pk__in=ids).delete()
        deleted += per_model.get(label, 0)


def _audit(project: Project, actor: User | None, changes: dict[str, object]) -> None:
    PrivacyAuditEntry.objects.create(
        project=project,
        actor=actor,
        actor_name=actor.get_username() if actor else "retention",
        changes=changes,
    )
