"""Deleting every recording a filter finds ("delete all matching"), legal holds kept.

The admin's "Delete everything matching" page and `POST /api/v1/recordings/delete/`
call `recordings_purge_matching`; a large set is deleted by the Celery task of
the same name, which runs the same filter again (recordings/tasks.py).
"""

from __future__ import annotations

import dataclasses
import logging

from django.db.models import QuerySet

from recordings import blobs
from recordings.models import Recording
from recordings.services.storage import RecordingOnHold, recording_purge

logger = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class PurgeReport:
    """What a purge found and did: `held` recordings were kept (legal hold),
    `failed` ones could not be deleted now (storage down) and are still there."""

    matched: int = 0
    deleted: int = 0
    held: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def recordings_purge_matching(
    *, recordings: QuerySet[Recording], dry_run: bool
) -> PurgeReport:
    """Delete the recordings (blobs, then rows) except those on legal hold.

    With `dry_run`, only counts. Each recording goes in its own transaction under
    its lock (recording_purge), so a hold placed meanwhile is honoured and a
    storage failure leaves that one recording whole and the rest deleted.
    """
    report = PurgeReport(
        matched=recordings.count(), held=recordings.filter(legal_hold=True).count()
    )
    if dry_run:
        return report
    for recording in recordings.filter(legal_hold=False).order_by().iterator():
        try:
            recording_purge(recording=recording)
        except RecordingOnHold:
            report.held += 1  # placed on hold after the count
            continue
        except blobs.StorageError:
            logger.exception("could not delete recording %s", recording.code)
            report.failed += 1
            continue
        report.deleted += 1
    logger.info(
        "purged %d of %d matching recordings (%d on legal hold kept, %d failed)",
        report.deleted,
        report.matched,
        report.held,
        report.failed,
    )
    return report
