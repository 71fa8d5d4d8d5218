"""Erasure requests (GDPR Art. 17): everything a project holds about a person, deleted.

A request names distinct ids. With them go the anonymous ids their person had
before identify(), then every session any of those ids recorded in: recordings
(rows, then blobs), analytics events, ingest-ledger rows, and the person records.
Recordings on legal hold are kept (Art. 17(3)(e)) and counted in the receipt, with
their session's events and ledger rows.

Order matters: the tombstones are written first, in the transaction that records
the request, so capture refuses the person's batches before anything is deleted;
a batch that capture admitted just before (its project cache lives for
REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS) is caught by the settle pass that runs
after that time. The audit entry and the receipt hold counts, never an id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from privacy.models import ErasureRequest, PrivacyAuditEntry, Tombstone
from privacy.policy import subject_hash
from privacy.retention import rows_delete
from recordings.models import Event, Person, Project, Recording, SessionLedger
from recordings.services.storage import RecordingOnHold, recording_purge

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Receipt:
    """What an erasure deleted (or, for a dry run, would delete)."""

    distinct_ids: int = 0  # named, plus the anonymous ids of their people
    recordings: int = 0
    bytes: int = 0
    markers: int = 0  # deleted with their recordings, as are the three below
    comments: int = 0  # staff's notes about the person's sessions
    pins: int = 0  # places in playlists
    share_links: int = 0
    events: int = 0
    ledger_rows: int = 0
    people: int = 0
    kept_on_legal_hold: int = 0

    def add(self, other: Receipt) -> None:
        """Fold in a later pass: deletions add up, what stays is counted once."""
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if field.name in _NOT_SUMMED:
                setattr(self, field.name, max(mine, theirs))
            else:
                setattr(self, field.name, mine + theirs)


_NOT_SUMMED = {"distinct_ids", "kept_on_legal_hold"}


def clean_distinct_ids(text: str) -> list[str]:
    """Distinct ids from a form or a command line: one a line, stripped, unique."""
    return list(
        dict.fromkeys(line.strip() for line in text.splitlines() if line.strip())
    )


def erasure_request(
    *,
    project: Project,
    distinct_ids: list[str],
    actor: User | None,
    dry_run: bool = False,
) -> ErasureRequest:
    """Record a request; for a real one, tombstone the ids before anything else.

    A dry run only counts (its receipt says what a real run would delete). A real
    request is left pending: erasure_run() does the deleting.
    """
    if not distinct_ids:
        raise ValueError("an erasure request names at least one distinct id")
    # With the anonymous ids found now: the first pass deletes the person record
    # that lists them, and the settle pass must still know them.
    every_id = _with_anonymous_ids(project, distinct_ids)
    with transaction.atomic():
        request = ErasureRequest.objects.create(
            project=project,
            requested_by=actor,
            requested_by_name=actor.get_username() if actor else "",
            status=ErasureRequest.Status.DRY_RUN
            if dry_run
            else ErasureRequest.Status.PENDING,
            subjects=len(distinct_ids),
            pending_distinct_ids=[] if dry_run else every_id,
        )
        if dry_run:
            request.receipt = dataclasses.asdict(
                _erase(project, distinct_ids, dry_run=True)
            )
            request.completed = now()
            request.save(update_fields=["receipt", "completed"])
            return request
        _tombstone(project, every_id, request)
    return request


def erasure_run(*, request: ErasureRequest, final: bool = True) -> Receipt:
    """Delete everything the request's ids left; with `final`, close the request.

    Safe to run again (a retry, the settle pass): what is gone is not counted
    twice. Closing it drops the ids, fills the receipt and writes the audit entry.
    """
    if request.status != ErasureRequest.Status.PENDING:
        return Receipt(**request.receipt) if request.receipt else Receipt()
    ids = _with_anonymous_ids(request.project, list(request.pending_distinct_ids))
    # An anonymous id the person gained since the request: refused from now on too.
    _tombstone(request.project, ids, request)
    receipt = _erase(request.project, ids, dry_run=False)
    so_far = Receipt(**request.receipt) if request.receipt else Receipt()
    so_far.add(receipt)
    request.receipt = dataclasses.asdict(so_far)
    request.pending_distinct_ids = ids  # with any anonymous id found this pass
    fields = ["receipt", "pending_distinct_ids"]
    if final:
        request.status = ErasureRequest.Status.DONE
        request.pending_distinct_ids = []
        request.completed = now()
        fields += ["status", "completed"]
        PrivacyAuditEntry.objects.create(
            project=request.project,
            actor=request.requested_by,
            actor_name=request.requested_by_name or "erasure",
            changes={"erasure": [None, {"request": request.pk, **request.receipt}]},
        )
    request.save(update_fields=fields)
    logger.info("erasure #%s in %s: %s", request.pk, request.project, request.receipt)
    return so_far


def erasures_stalled(*, created_before: dt.datetime) -> list[int]:
    """Ids of real erasures still pending that were requested before this: their
    tasks were lost (a worker crash, a broker restart) and must run again."""
    pending = ErasureRequest.objects.filter(
        status=ErasureRequest.Status.PENDING, created__lt=created_before
    )
    return list(pending.order_by("created").values_list("pk", flat=True))


def _with_anonymous_ids(project: Project, distinct_ids: list[str]) -> list[str]:
    """The ids and every anonymous id their person had before identify()."""
    found = list(distinct_ids)
    people = Person.objects.filter(project=project, distinct_id__in=distinct_ids)
    for anon_ids in people.values_list("anon_distinct_ids", flat=True):
        found += [a for a in anon_ids or [] if isinstance(a, str) and a]
    return list(dict.fromkeys(found))


def _tombstone(project: Project, ids: list[str], request: ErasureRequest) -> None:
    Tombstone.objects.bulk_create(
        [
            Tombstone(
                project=project, subject_hash=subject_hash(project, d), erasure=request
            )
            for d in ids
        ],
        ignore_conflicts=True,
    )


def _erase(project: Project, distinct_ids: list[str], *, dry_run: bool) -> Receipt:
    ids = _with_anonymous_ids(project, distinct_ids)
    receipt = Receipt(distinct_ids=len(ids))
    sessions = _sessions_of(project, ids)
    held = set(
        Recording.objects.filter(
            project=project, session_id__in=sessions, legal_hold=True
        ).values_list("session_id", flat=True)
    )
    recordings = Recording.objects.filter(project=project, session_id__in=sessions)
    for recording in recordings.exclude(session_id__in=held):
        gone = _with_recording(recording)
        if not dry_run:
            try:
                if not recording_purge(recording=recording):
                    continue  # deleted meanwhile (a retry, retention): not by us
            except RecordingOnHold:  # held since the query above
                held.add(recording.session_id)
                continue
        receipt.add(gone)
    receipt.kept_on_legal_hold = len(held)
    mine = Q(distinct_id__in=ids) | Q(session_id__in=sessions)
    events = Event.objects.filter(mine, project=project).exclude(session_id__in=held)
    ledger = SessionLedger.objects.filter(mine, project=project).exclude(
        session_id__in=held
    )
    people = Person.objects.filter(project=project, distinct_id__in=ids)
    receipt.events = rows_delete(events, dry_run=dry_run)
    receipt.ledger_rows = rows_delete(ledger, dry_run=dry_run)
    receipt.people = rows_delete(people, dry_run=dry_run)
    return receipt


def _with_recording(recording: Recording) -> Receipt:
    """What deleting the recording deletes: it, its bytes, and what hangs on it
    (markers, comments, tags and views, playlist pins, share links) by cascade."""
    return Receipt(
        recordings=1,
        bytes=recording.size_bytes,
        markers=recording.markers.count(),
        comments=recording.comments.count(),
        pins=recording.pins.count(),  # type: ignore[attr-defined,unused-ignore]
        share_links=recording.share_links.count(),  # type: ignore[attr-defined,unused-ignore]
    )


def _sessions_of(project: Project, ids: list[str]) -> list[str]:
    """Every session in which any of these ids recorded or sent anything."""
    sessions: set[str] = set()
    for model in (Recording, Event, SessionLedger):
        rows = model.objects.filter(project=project, distinct_id__in=ids)
        sessions.update(rows.values_list("session_id", flat=True))
    sessions.discard("")
    return sorted(sessions)
