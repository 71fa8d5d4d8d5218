"""Celery tasks: load by id, call one service; retry policy in the decorator."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth.models import User
from django.db import DatabaseError

from privacy import services
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
