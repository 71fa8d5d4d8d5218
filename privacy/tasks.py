"""Celery tasks: load by id, call one service; retry policy in the decorator."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.utils.timezone import now

from privacy import retention, services
from recordings.blobs import StorageError
from recordings.models import Project


@shared_task(
    ignore_result=True,
    autoretry_for=(StorageError, DatabaseError),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=5,
)
def recordings_redact(project_id: int, actor_id: int | None = None) -> None:
    # A retry starts over: blobs already redacted are unchanged, so not rewritten.
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        actor = User.objects.filter(pk=actor_id).first() if actor_id else None
        services.recordings_redact(project=project, actor=actor)


@shared_task(
    ignore_result=True,
    autoretry_for=(StorageError, DatabaseError),
    retry_backoff=60,
    retry_jitter=True,
    max_retries=5,
)
def expire_recordings() -> int:
    """Beat: delete what every project keeps past its retention; recordings deleted.

    A retry starts over: what was deleted is gone, the rest is found again.
    """
    expired = retention.projects_expire(now=now())
    return sum(expiry.recordings for expiry in expired.values())
