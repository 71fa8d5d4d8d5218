"""The Procfile: web, worker and one scheduler (beat), each its own process type.

The scheduler runs once per installation; any number of web and worker processes
may run beside it. A worker that embedded beat (`worker --beat`) made every node
schedule every job: two nodes ran each periodic task twice.
"""

from __future__ import annotations

import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.processes import (
    ROOT,
    embedded_env,
    free_port,
    get,
    procfile,
    running,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="starts the Procfile's processes"
)


def celery_command(line: str) -> str | None:
    """The celery subcommand a Procfile line runs (worker, beat), or None."""
    words = shlex.split(line)
    if not words[0].endswith("/celery"):
        return None
    return words[words.index("--app") + 2]


def test_it_has_one_beat_process_type_and_the_worker_embeds_none() -> None:
    commands = {name: celery_command(line) for name, line in procfile().items()}
    assert commands == {"web": None, "worker": "worker", "beat": "beat"}
    worker = shlex.split(procfile()["worker"])
    assert not {"--beat", "-B"} & set(worker)


def test_make_run_starts_web_worker_and_beat_on_the_embedded_defaults(
    tmp_path: Path,
) -> None:
    """What `make run` starts: the web answers, beat sends a job, the worker runs it."""
    port = free_port()
    env = embedded_env(
        tmp_path / "var",
        REPLAYHUB_BIND=f"127.0.0.1:{port}",
        REPLAYHUB_WEB_WORKERS="1",
        REPLAYHUB_WORKER_CONCURRENCY="1",
        # Every minute, so that a run is due soon after beat starts.
        REPLAYHUB_SIGNALS_CRON="* * * * *",
    )
    bootstrap = [sys.executable, "manage.py", "bootstrap"]
    done = subprocess.run(bootstrap, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    honcho = [str(Path(sys.executable).parent / "honcho"), "--procfile", "Procfile"]
    out = tmp_path / "honcho.out"
    with running([*honcho, "start"], env, out, tmp_path / "honcho.err"):
        wait_until(lambda: get(port, "/healthz") == 200, "the web process")
        task = "recordings.tasks.recordings_signals_refresh"
        wait_until(
            lambda: f"{task}[" in out.read_text() and "succeeded" in out.read_text(),
            f"beat to send {task} and the worker to run it",
            timeout=150,
        )
    log = out.read_text()
    sent = [line for line in log.splitlines() if "Sending due task" in line]
    assert sent and all(" beat.1 " in line for line in sent), log[-3000:]
    received = [line for line in log.splitlines() if f"{task}[" in line]
    assert received and all(" worker.1 " in line for line in received)
    # It ran under its run-once lock, in the same SQLite file the web process uses.
    with closing(sqlite3.connect(tmp_path / "var" / "replayhub.sqlite3")) as db:
        lock = db.execute(
            "SELECT holder, last_outcome FROM recordings_joblock WHERE name = ?",
            [task],
        ).fetchall()
    assert lock == [("", "done")]
    # beat keeps its schedule in the data directory, not in the working directory.
    assert list((tmp_path / "var").glob("celerybeat-schedule*")), log[-3000:]
    assert not list(ROOT.glob("celerybeat-schedule*"))
    # Stopping honcho stops them all: nothing of ours still listens.
    assert get(port, "/healthz") is None
