"""Celery tasks: load by id, call one service; one retry policy (task_policy)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.timezone import now

from recordings.models import Recording
from recordings.services import compaction, purge, recording_signals, storage, usage
from recordings.services.jobs import run_once
from recordings.services.task_policy import for_row, retrying_task


@retrying_task()
@for_row(Recording)
def recording_compact(recording: Recording) -> None:
    compaction.recording_compact(recording=recording)


@shared_task(ignore_result=True)
@run_once
def recordings_compact() -> int:
    """Sweeper: fan out one compaction per idle recording with loose chunks."""
    ids = compaction.recordings_to_compact(
        now=now(), idle_minutes=settings.REPLAYHUB_COMPACT_IDLE_MINUTES
    )
    for recording_id in ids:
        recording_compact.delay(recording_id)
    return len(ids)


@shared_task(ignore_result=True)
@run_once
def orphan_blobs_delete() -> int:
    """Sweeper: delete blobs no chunk points at (a crash between write and commit)."""
    grace = dt.timedelta(minutes=settings.REPLAYHUB_ORPHAN_BLOB_GRACE_MINUTES)
    return storage.orphan_blobs_delete(written_before=now() - grace)


@shared_task(ignore_result=True)
@run_once
def projects_cap_enforce() -> int:
    """Beat: stop capture for projects at their monthly cap, resume the others."""
    return usage.projects_cap_enforce(now=now())


@retrying_task()
@for_row(Recording)
def recording_signals_update(recording: Recording) -> None:
    recording_signals.recording_signals_update(recording=recording)


@shared_task(ignore_result=True)
@run_once
def recordings_signals_refresh() -> int:
    """Sweeper: recompute the signals of live recordings that are behind."""
    ids = recording_signals.recordings_signals_behind(
        now=now(), refresh_minutes=settings.REPLAYHUB_SIGNALS_REFRESH_MINUTES
    )
    for recording_id in ids:
        recording_signals_update.delay(recording_id)
    return len(ids)


@shared_task(ignore_result=True)
def recordings_purge(
    recording_ids: list[int], actor_id: int | None, action: str, details: dict[str, Any]
) -> dict[str, int]:
    """Delete the recordings a person was shown and confirmed (never a filter:
    one compiled here, without that person, would find another set)."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    report = purge.recordings_purge(
        recording_ids=recording_ids, actor=actor, action=action, details=details
    )
    return report.as_dict()


# The privacy audit log's name for a delete by filter (API and admin).
DELETE_BY_FILTER = "delete_by_filter"


def recordings_purge_confirmed(
    *,
    found: purge.PurgeSet,
    actor: User | None,
    details: dict[str, Any],
    action: str = DELETE_BY_FILTER,
    background: bool,
) -> purge.PurgeReport:
    """Delete a set someone confirmed: now, or by the task once the request's
    transaction is in. Either way only its ids; the task never sees a filter."""
    ids = list(found.ids)
    if not background:
        return purge.recordings_purge(
            recording_ids=ids, actor=actor, action=action, details=details
        )
    actor_id = actor.pk if actor else None
    transaction.on_commit(
        lambda: recordings_purge.delay(ids, actor_id, action, details)
    )
    return purge.PurgeReport.of_set(found)
