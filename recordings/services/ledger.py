"""The per-session ingest ledger ("why is this recording missing?") and its health."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, IntegrityError, models, transaction
from django.db.models import Count, F, Q
from django.utils.timezone import now

from recordings.ingest.parse import SessionRef
from recordings.models import (
    Project,
    SessionLedger,
)

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)


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


def ledger_lock(*, project: Project, session_id: str) -> SessionLedger:
    """The session's ledger row, locked until commit; created if it is new."""
    return _lock_or_create(
        SessionLedger, {"project": project, "session_id": session_id}, {}
    )


def ledger_record_duplicates(*, project: Project, session_id: str, count: int) -> None:
    changes = {"batches_duplicate": F("batches_duplicate") + count, "last_seen": now()}
    with transaction.atomic():
        _ledger_update(project, session_id, changes)


def _ledger_update(project: Project, session_id: str, changes: dict[str, Any]) -> None:
    rows = SessionLedger.objects.filter(project=project, session_id=session_id)
    if not rows.update(**changes):
        ledger_lock(
            project=project, session_id=session_id
        )  # first batch of the session: create the row
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
    ledger = ledger_lock(project=project, session_id=ref.session_id)
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
