"""Deleting a set of recordings people were shown ("delete all matching"), legal
holds kept, audited.

The admin's "Delete everything matching" page and `POST /api/v1/recordings/delete/`
resolve the filter to recording ids once, with the user who asks
(`recordings_purge_set`): the count on the confirmation is that set's, its
`fingerprint` goes back with the confirmation, and only those ids are deleted,
in the request or by the Celery task of the same name as `recordings_purge`
(recordings/tasks.py), which never sees the filter. Whoever deletes, each project
gets a privacy audit entry with what was really deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from privacy.models import PrivacyAuditEntry
from recordings import blobs
from recordings.models import Recording
from recordings.services.storage import RecordingOnHold, recording_purge

logger = logging.getLogger(__name__)

# An audit entry lists the codes of the recordings it deleted up to this many;
# past it, the counts only (an entry stays readable in the admin).
AUDIT_CODES_MAX = 200
# Recordings loaded per query while deleting.
_BATCH = 500


@dataclasses.dataclass(frozen=True, slots=True)
class PurgeSet:
    """The recordings a deletion was shown: sorted ids, and those on legal hold."""

    ids: tuple[int, ...]
    held_ids: frozenset[int]

    @property
    def matched(self) -> int:
        return len(self.ids)

    @property
    def held(self) -> int:
        return len(self.held_ids)

    @property
    def to_delete(self) -> int:
        return self.matched - self.held

    @property
    def fingerprint(self) -> str:
        """Names the set: a confirmation carrying it deletes this set or nothing.

        The counts (readable) and a hash of the ids and their holds.
        """
        text = ",".join(f"{i}{'h' if i in self.held_ids else ''}" for i in self.ids)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"{self.to_delete}-{self.held}-{digest}"


def recordings_purge_set(*, recordings: QuerySet[Recording]) -> PurgeSet:
    """The set a delete would remove now: resolve it once, show it, delete it."""
    rows = recordings.order_by().values_list("pk", "legal_hold")
    found = sorted(rows)
    return PurgeSet(
        ids=tuple(pk for pk, _ in found),
        held_ids=frozenset(pk for pk, held in found if held),
    )


@dataclasses.dataclass(slots=True)
class PurgeReport:
    """What a purge found and did: `held` recordings were kept (legal hold),
    `failed` ones could not be deleted now (storage down) and are still there,
    `gone` ones had been deleted by someone else before this purge reached them."""

    matched: int = 0
    deleted: int = 0
    held: int = 0
    failed: int = 0
    gone: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def of_set(cls, found: PurgeSet) -> PurgeReport:
        """A dry run's report: what the set holds."""
        return cls(matched=found.matched, held=found.held)


@dataclasses.dataclass(slots=True)
class _ProjectTally:
    deleted: list[str] = dataclasses.field(default_factory=list)  # codes
    held: int = 0
    failed: int = 0
    gone: int = 0


def recordings_purge(
    *,
    recording_ids: Sequence[int],
    actor: User | None,
    action: str,
    details: dict[str, Any],
) -> PurgeReport:
    """Delete these recordings (blobs, then rows), except those on legal hold.

    Only these ids, whatever was added since; one already gone is counted as
    `gone`. Each recording goes in its own transaction under its lock
    (recording_purge), so a hold placed meanwhile is honoured and a storage
    failure leaves that one whole and the rest deleted. Every project touched
    gets a privacy audit entry under `action` with `details` (the filter, who
    asked through what) and the real counts.
    """
    report = PurgeReport(matched=len(recording_ids))
    tallies: dict[int, _ProjectTally] = {}
    seen = 0
    for recording in _load(recording_ids):
        seen += 1
        tally = tallies.setdefault(recording.project_id, _ProjectTally())
        _purge_one(recording, tally)
    report.gone = report.matched - seen
    for project_id, tally in tallies.items():
        report.deleted += len(tally.deleted)
        report.held += tally.held
        report.failed += tally.failed
        report.gone += tally.gone
        _audit(project_id, actor, action, {**details, **_summary(tally)})
    logger.info("%s: %s", action, report.as_dict())
    return report


def _load(ids: Sequence[int]) -> Iterator[Recording]:
    fields = ("pk", "code", "session_id", "legal_hold", "project_id")
    for start in range(0, len(ids), _BATCH):
        rows = Recording.objects.filter(pk__in=ids[start : start + _BATCH])
        yield from rows.only(*fields).order_by("pk")


def _purge_one(recording: Recording, tally: _ProjectTally) -> None:
    if recording.legal_hold:
        tally.held += 1
        return
    try:
        deleted = recording_purge(recording=recording)
    except RecordingOnHold:
        tally.held += 1  # placed on hold after it was shown
        return
    except blobs.StorageError:
        logger.exception("could not delete recording %s", recording.code)
        tally.failed += 1
        return
    if deleted:
        tally.deleted.append(str(recording.code))
    else:
        tally.gone += 1


def _summary(tally: _ProjectTally) -> dict[str, Any]:
    codes = tally.deleted if len(tally.deleted) <= AUDIT_CODES_MAX else None
    return {
        "deleted": len(tally.deleted),
        "recordings": codes,
        "kept_on_legal_hold": tally.held,
        "failed": tally.failed,
        "already_gone": tally.gone,
    }


def _audit(project_id: int, actor: User | None, action: str, what: object) -> None:
    PrivacyAuditEntry.objects.create(
        project_id=project_id,
        actor=actor,
        actor_name=actor.get_username() if actor else action,
        changes={action: [None, what]},
    )
