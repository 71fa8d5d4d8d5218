"""Celery tasks: load by id, call one service; one retry policy (task_policy)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.utils.timezone import now

from privacy import erasure, retention, services
from privacy.models import ErasureRequest
from recordings.models import Project
from recordings.services.jobs import run_once
from recordings.services.task_policy import for_row, retrying_task


@retrying_task()
@for_row(Project)
def recordings_redact(project: Project, actor_id: int | None = None) -> None:
    # A retry starts over: blobs already redacted are unchanged, so not rewritten.
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    services.recordings_redact(project=project, actor=actor)


@retrying_task(backoff=60)
@run_once
def projects_expire() -> int:
    """Beat: delete what every project keeps past its retention; recordings deleted.

    A retry starts over: what was deleted is gone, the rest is found again.
    """
    expired = retention.projects_expire(now=now())
    return sum(expiry.recordings for expiry in expired.values())


@retrying_task(max_retries=8)
@for_row(ErasureRequest)
def erasure_run(request: ErasureRequest, final: bool = True) -> None:
    """One pass of an erasure; the final one closes it with its receipt."""
    erasure.erasure_run(request=request, final=final)


def erasure_start(request_id: int) -> None:
    """Erase now, and again once capture's caches have seen the tombstones."""
    erasure_run.delay(request_id, final=False)
    erasure_run.apply_async(
        (request_id,),
        {"final": True},
        countdown=settings.REPLAYHUB_ERASURE_SETTLE_SECONDS,
    )


@shared_task(ignore_result=True)
@run_once
def erasures_resume() -> int:
    """Beat: finish erasures whose tasks were lost; how many were restarted.

    Only those pending well past their settle pass, so a run in progress is left
    alone (running one twice is safe anyway).
    """
    grace = dt.timedelta(seconds=settings.REPLAYHUB_ERASURE_SETTLE_SECONDS + 600)
    stalled = erasure.erasures_stalled(created_before=now() - grace)
    for request_id in stalled:
        erasure_run.delay(request_id, final=True)
    return len(stalled)
