"""Each periodic job runs once at a time: a second start skips, and says so.

Two schedulers (or a run outlasting its period) start the same job twice; the run
that takes the job's lock does the work, the other returns JobSkipped, logs the
job's name and counts the skip. A lock whose holder died lapses after the job's
time limit. The concurrent tests run in threads, each on its own connection to the
real database (SQLite file or PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import shared_task
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils.timezone import now

from privacy.models import PrivacyAuditEntry
from privacy.tasks import projects_expire
from recordings.models import JobLock, Project, Recording
from recordings.services.jobs import JobSkipped, job_acquire, job_lease, run_once
from replayhub.celery import app
from tests.base import ReplayTestCase, temp_blob_storage
from tests.finding import make_recording

HELD_JOB = f"{__name__}.held_job"
FAILING_JOB = f"{__name__}.failing_job"
DAY = dt.timedelta(days=1)
release_held_job = threading.Event()


@shared_task(ignore_result=True, time_limit=30)
@run_once
def held_job(result: str) -> str:
    """A periodic job that runs until the test lets it finish."""
    assert release_held_job.wait(30), "the test never let the job finish"
    return result


@shared_task(ignore_result=True)
@run_once
def failing_job() -> int:
    raise RuntimeError("the job failed")


def periodic_tasks() -> list[str]:
    app.loader.import_default_modules()
    return [task for task, _, _, _ in settings.PERIODIC_JOBS.values()]


def in_thread(work: Callable[[], Any], results: list[Any]) -> threading.Thread:
    """Run `work` on a thread with its own database connection."""

    def run() -> None:
        try:
            results.append(work())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def waiting_for_a_lock() -> int:
    """How many connections to the test database wait for a lock (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        count: int = cursor.fetchone()[0]
    return count


def skip_lines(caplog: pytest.LogCaptureFixture, job: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "recordings.services.jobs" and job in record.getMessage()
    ]


@pytest.mark.django_db(transaction=True)
def test_two_starts_at_once_run_the_job_once(caplog: pytest.LogCaptureFixture) -> None:
    release_held_job.clear()
    results: list[Any] = []
    start = threading.Barrier(2)

    def start_job(name: str) -> Callable[[], Any]:
        def work() -> Any:
            start.wait(10)
            return held_job(name)

        return work

    threads = [in_thread(start_job(name), results) for name in ("first", "second")]
    wait_until(lambda: len(results) == 1)  # the one that skipped returned at once
    lock = JobLock.objects.get(name=HELD_JOB)
    assert lock.holder and lock.expires_at and lock.acquired_at
    assert lock.expires_at - lock.acquired_at == dt.timedelta(seconds=30)
    release_held_job.set()
    for thread in threads:
        thread.join(30)
    skipped, done = results
    assert isinstance(skipped, JobSkipped)
    assert (skipped.job, skipped.holder) == (HELD_JOB, lock.holder)
    assert done in {"first", "second"}
    (line,) = skip_lines(caplog, HELD_JOB)
    assert f"job {HELD_JOB} skipped: already running ({lock.holder}" in line
    lock = JobLock.objects.get(name=HELD_JOB)
    assert (lock.holder, lock.expires_at, lock.skipped) == ("", None, 1)
    assert lock.last_outcome == JobLock.Outcome.DONE


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs a row lock that blocks one transaction and not the others",
)
def test_two_retention_runs_at_once_delete_and_audit_once(
    tmp_path: Path, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: two nodes' beats each started retention on the same 6."""
    settings.STORAGES = {**settings.STORAGES, "recordings": temp_blob_storage(tmp_path)}
    project = Project.objects.create(name="Shop")
    old = make_recording(project, "old-session", last_batch_at=now() - 40 * DAY)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        # A compaction, say, holding the recording: the first run waits for it.
        with transaction.atomic():
            Recording.objects.select_for_update().get(pk=old.pk)
            locked.set()
            release.wait(10)

    holders: list[Any] = []
    holder = in_thread(hold_the_row, holders)
    assert locked.wait(10)
    first: list[Any] = []
    run = in_thread(projects_expire, first)
    wait_until(lambda: waiting_for_a_lock() == 1)  # the first run, at the row
    second = projects_expire()
    release.set()
    for thread in (holder, run):
        thread.join(30)
    assert isinstance(second, JobSkipped)
    assert first == [1]
    assert not Recording.objects.filter(pk=old.pk).exists()
    assert PrivacyAuditEntry.objects.filter(project=project).count() == 1
    assert len(skip_lines(caplog, "privacy.tasks.projects_expire")) == 1


class PeriodicJobTests(ReplayTestCase):
    def test_every_periodic_job_skips_while_another_run_holds_it(self) -> None:
        tasks = periodic_tasks()
        self.assertEqual(len(tasks), 6)
        for name in tasks:
            with self.subTest(name):
                lease = job_lease(name)
                self.assertEqual(lease.total_seconds(), app.tasks[name].time_limit)
                self.assertTrue(
                    job_acquire(name=name, holder="node-2 pid 7", lease=lease)
                )
                with self.assertLogs("recordings.services.jobs", "WARNING") as logs:
                    skipped = app.tasks[name]()
                self.assertEqual(
                    skipped, JobSkipped(name, "node-2 pid 7", skipped.since)
                )
                self.assertIn(f"job {name} skipped", logs.output[0])
                self.assertIn("node-2 pid 7", logs.output[0])
                self.assertEqual(JobLock.objects.get(name=name).skipped, 1)

    def test_every_periodic_job_runs_when_none_holds_it(self) -> None:
        for name in periodic_tasks():
            with self.subTest(name):
                self.assertEqual(app.tasks[name](), 0)  # nothing to do here
                lock = JobLock.objects.get(name=name)
                self.assertEqual((lock.holder, lock.skipped), ("", 0))
                self.assertEqual(lock.last_outcome, JobLock.Outcome.DONE)
                self.assertIsNotNone(lock.finished_at)

    def test_a_lock_whose_holder_died_lapses(self) -> None:
        name = "recordings.tasks.recordings_compact"
        started = now() - dt.timedelta(minutes=10)
        JobLock.objects.create(
            name=name,
            holder="node-1 pid 4 (killed)",
            acquired_at=started,
            expires_at=started + job_lease(name),  # 4 minutes: lapsed
        )
        self.assertEqual(app.tasks[name](), 0)
        lock = JobLock.objects.get(name=name)
        self.assertEqual((lock.holder, lock.last_outcome), ("", "done"))
        self.assertGreater(lock.acquired_at or started, started)

    def test_a_lock_still_within_its_time_limit_holds(self) -> None:
        name = "recordings.tasks.recordings_compact"
        started = now() - dt.timedelta(minutes=1)
        JobLock.objects.create(
            name=name,
            holder="node-1 pid 4",
            acquired_at=started,
            expires_at=started + job_lease(name),
        )
        with self.assertLogs("recordings.services.jobs", "WARNING"):
            self.assertIsInstance(app.tasks[name](), JobSkipped)
        self.assertEqual(JobLock.objects.get(name=name).holder, "node-1 pid 4")

    def test_a_failed_run_lets_go_of_its_lock(self) -> None:
        with self.assertRaisesMessage(RuntimeError, "the job failed"):
            failing_job()
        lock = JobLock.objects.get(name=FAILING_JOB)
        self.assertEqual((lock.holder, lock.last_outcome), ("", "failed"))
        self.assertIsNone(lock.expires_at)
        with self.assertRaisesMessage(RuntimeError, "the job failed"):
            failing_job()  # not skipped: it runs again
