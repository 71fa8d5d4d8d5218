"""What the ingest rate limit costs a batch on the embedded default (SQLite).

Without Redis the limit counts in the database (recordings/models/ratelimit.py),
one upsert per batch, so that all web processes share one count. This times
IngestRateLimit.retry_after() on a fresh SQLite file (WAL, as settings.py opens
it): alone, and with PROCESSES processes asking at once as gunicorn's workers do,
next to the per-process count in local memory it replaced.

    .venv/bin/python -m bench.ingest.rate_limit [--calls 5000] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def setup(cache: str) -> int:
    """Django on the SQLite file of DATABASE_URL; the project's id."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "replayhub.settings"
    import django

    django.setup()
    from django.conf import settings

    if cache == "locmem":  # the old per-process count, in the cache
        import recordings.capture.throttles

        settings.CACHES["default"] = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache"
        }
        recordings.capture.throttles._cache_counts_atomically = lambda: True
    from recordings.models import Project

    project, _ = Project.objects.get_or_create(
        name="rate limit bench", defaults={"ingest_rate_limit": 10**9}
    )
    return project.pk


def child(cache: str, calls: int, start: float) -> None:
    """One web process: its calls' median, 99th percentile and mean, in µs."""
    pk = setup(cache)
    from recordings.capture.throttles import IngestRateLimit
    from recordings.models import Project

    project = Project.objects.get(pk=pk)
    limiter = IngestRateLimit()
    time.sleep(max(0.0, start - time.time()))
    took = []
    for _ in range(calls):
        began = time.perf_counter()
        limiter.retry_after(project)
        took.append((time.perf_counter() - began) * 1e6)
    took.sort()
    median, p99 = statistics.median(took), took[int(len(took) * 0.99)]
    say(f"{median:.0f} {p99:.0f} {statistics.mean(took):.0f}")


def measure(cache: str, calls: int, processes: int, env: dict[str, str]) -> str:
    start = time.time() + 4  # after every process has imported Django
    command = [sys.executable, "-m", "bench.ingest.rate_limit", "--child", cache]
    command += ["--calls", str(calls)]
    runs = [
        subprocess.Popen(
            [*command, "--start", str(start)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outs = [run.communicate()[0].split() for run in runs]
    times = ", ".join(f"{o[0]} µs (p99 {o[1]}, mean {o[2]})" for o in outs)
    return f"{cache}, {processes} process(es): median per batch {times}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--start", type=float, default=0.0)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls, args.start)
        return
    with tempfile.TemporaryDirectory(prefix="rh-rate-") as data_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL"}
        }
        env["REPLAYHUB_DATA_DIR"] = data_dir
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
            env=env,
            check=True,
        )
        for cache in ("locmem", "database"):
            for processes in (1, args.processes):
                say(measure(cache, args.calls, processes, env))


if __name__ == "__main__":
    main()
