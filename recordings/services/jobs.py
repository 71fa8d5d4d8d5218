"""Periodic jobs run once at a time, however many workers and schedulers start them.

Each run takes the job's JobLock row with one conditional UPDATE ("free, or lapsed:
now mine"), which a single statement makes atomic on SQLite (one writer at a time)
and on PostgreSQL (a second UPDATE waits for the first, then finds the row taken).
It works wherever the database is shared: several gunicorn and Celery processes on
the embedded SQLite file, or nodes on PostgreSQL, with or without Redis. A start
that finds the job running skips, logs it with the job's name and counts it on the
row. The lock lapses after the job's Celery time limit (settings.PERIODIC_JOBS), so
a worker that died mid-run blocks the job at most that long.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from celery import current_app
from django.db.models import F, Q
from django.utils.timezone import now

from recordings.models import JobLock

logger = logging.getLogger(__name__)

# A job with no Celery time limit (none of the beat's) holds its lock this long.
DEFAULT_LEASE = dt.timedelta(hours=1)

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class JobSkipped:
    """What a start of a job that was already running returns instead of its work."""

    job: str
    holder: str  # who was running it
    since: dt.datetime | None


def job_lease(name: str) -> dt.timedelta:
    """How long a run of the job may hold its lock: the task's time limit."""
    task = current_app.tasks.get(name)
    limit = getattr(task, "time_limit", None)
    return dt.timedelta(seconds=limit) if limit else DEFAULT_LEASE


def job_acquire(*, name: str, holder: str, lease: dt.timedelta) -> bool:
    """Take the job's lock for `holder` if it is free or lapsed; whether it did."""
    JobLock.objects.bulk_create([JobLock(name=name)], ignore_conflicts=True)
    # Each process's clock; leases are minutes long, clocks seconds apart at worst.
    at = now()
    free = Q(holder="") | Q(expires_at__isnull=True) | Q(expires_at__lte=at)
    taken = JobLock.objects.filter(free, name=name).update(
        holder=holder, acquired_at=at, expires_at=at + lease
    )
    return taken == 1


def job_release(*, name: str, holder: str, outcome: JobLock.Outcome) -> None:
    """Give the lock back, unless it lapsed and another run holds it now."""
    JobLock.objects.filter(name=name, holder=holder).update(
        holder="", expires_at=None, finished_at=now(), last_outcome=outcome
    )


def job_skip(*, name: str) -> JobSkipped:
    """Count and log a start that found the job running."""
    JobLock.objects.filter(name=name).update(
        skipped=F("skipped") + 1, last_skipped_at=now()
    )
    lock = JobLock.objects.get(name=name)
    logger.warning(
        "job %s skipped: already running (%s, since %s)",
        name,
        lock.holder or "finished meanwhile",
        lock.acquired_at.isoformat() if lock.acquired_at else "-",
    )
    return JobSkipped(job=name, holder=lock.holder, since=lock.acquired_at)


@contextmanager
def job_running(*, name: str, lease: dt.timedelta) -> Iterator[JobSkipped | None]:
    """Hold the job's lock for the block, or give what the skipped start returns.

    Outside a transaction (as Celery runs tasks), so that other processes see the
    lock as soon as it is taken.
    """
    holder = f"{socket.gethostname()} pid {os.getpid()} run {uuid.uuid4().hex[:8]}"
    if not job_acquire(name=name, holder=holder, lease=lease):
        yield job_skip(name=name)
        return
    outcome = JobLock.Outcome.FAILED
    try:
        yield None
        outcome = JobLock.Outcome.DONE
    finally:
        job_release(name=name, holder=holder, outcome=outcome)


def run_once(job: Callable[P, R]) -> Callable[P, R | JobSkipped]:
    """A periodic task that skips (returning JobSkipped) while a run is in progress.

    Goes under @shared_task, which names the task after the function (kept here).
    """
    name = f"{job.__module__}.{job.__name__}"

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R | JobSkipped:
        with job_running(name=name, lease=job_lease(name)) as skipped:
            return skipped if skipped is not None else job(*args, **kwargs)

    return run
