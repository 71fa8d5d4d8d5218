"""The ingest rate limit holds across web processes, as gunicorn's workers run.

Two real Python processes ask the limiter at once, on the test database (and on
Redis when REDIS_URL is set, as in production): a limit of 30 a minute lets
exactly 30 batches in between them. With a per-process count each let 30 in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection
from django.test import TransactionTestCase

from recordings.models import IngestRateWindow, Project

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 30
CALLS = 200  # per process: 400 asks, 30 let in

# One web process: says it is ready, waits for "go", asks CALLS times; prints how
# many it was let through, and when it asked first and last.
CHILD = """
import sys, time
import django
django.setup()
from recordings.models import Project
from recordings.capture.throttles import IngestRateLimit
project = Project.objects.get(pk=int(sys.argv[1]))
limiter = IngestRateLimit()
print("ready", flush=True)
sys.stdin.readline()
first = time.time()
admitted = sum(limiter.retry_after(project) is None for _ in range(int(sys.argv[2])))
print(admitted, first, time.time())
"""


def database_url() -> str:
    """The test database, as DATABASE_URL names it to another process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait_for_a_fresh_minute() -> None:
    """Sleep past the end of the minute when it is nearly over: the asks share one."""
    into = time.time() % 60
    if into > 45:
        time.sleep(60 - into + 0.1)


class RateLimitAcrossProcessesTests(TransactionTestCase):
    def test_two_processes_let_exactly_the_limit_in(self) -> None:
        project = Project.objects.create(name="Shop", ingest_rate_limit=LIMIT)
        env = {**os.environ, "DATABASE_URL": database_url()}
        env["DJANGO_SETTINGS_MODULE"] = "replayhub.settings"
        args = [str(project.pk), str(CALLS)]
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for child in children:
            assert child.stdout is not None
            self.assertEqual(child.stdout.readline().strip(), "ready")
        wait_for_a_fresh_minute()
        for child in children:  # both at once, then wait for both
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        answers = [child.communicate(timeout=120) for child in children]
        for child, (_out, err) in zip(children, answers, strict=True):
            self.assertEqual(child.returncode, 0, err)
        results = [out.split() for out, _err in answers]
        admitted = [int(result[0]) for result in results]
        self.assertEqual(sum(admitted), LIMIT, admitted)
        # The two asked at the same time, not one after the other.
        (_, first_a, last_a), (_, first_b, last_b) = (
            map(float, result) for result in results
        )
        self.assertLess(max(first_a, first_b), min(last_a, last_b), results)

    def test_a_new_minute_forgets_the_old_ones(self) -> None:
        project = Project.objects.create(name="Shop")
        hit = IngestRateWindow.objects.hit
        self.assertEqual([hit(project_id=project.pk, minute=7) for _ in "ab"], [1, 2])
        self.assertEqual(hit(project_id=project.pk, minute=8), 1)
        rows = IngestRateWindow.objects.values_list("minute", "batches")
        self.assertEqual(list(rows), [(8, 1)])
