"""The beat sweeper's work done by a real Celery worker on the configured broker.

The worker is a separate process on the same database, blob storage and broker as
this test (the filesystem broker by default, Redis when REDIS_URL is set), listening
on a queue of its own so that nothing else picks its messages up.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils.timezone import now

from recordings.models import Project, Recording, SnapshotChunk
from replayhub.celery import app
from tests.capture import FIXTURE_TOKEN, send_full_session_snapshots

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user, host = db["USER"] or "postgres", db["HOST"] or "127.0.0.1"
    return f"postgres://{user}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        # Its own queue, for the sweep and for the tasks the sweep fans out.
        "REPLAYHUB_CELERY_QUEUE": queue,
    }
    command = [
        *(sys.executable, "-m", "celery", "--app", "replayhub", "worker"),
        *("--pool", "solo", "--queues", queue, "--loglevel", "INFO"),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_compacts_idle_recordings(tmp_path: Path) -> None:
    Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
    client = Client()
    send_full_session_snapshots(client)
    Recording.objects.update(last_batch_at=now() - dt.timedelta(hours=1))
    loose = SnapshotChunk.objects.filter(compacted_into="").count()
    assert loose > 10
    queue = f"replayhub-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    worker = start_worker(queue, log)
    try:
        app.send_task("recordings.tasks.recordings_compact", queue=queue)
        compacted = wait_until(
            lambda: not Recording.objects.filter(compacted=False).exists(), 90
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert compacted, log.read_text()[-3000:]
    assert not SnapshotChunk.objects.filter(compacted_into="").exists()
    assert "recordings.tasks.recording_compact" in log.read_text()
