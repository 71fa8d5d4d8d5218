"""What computing a recording's signals costs: per 1,000 events, per compaction,
and the backfill's rate.

    .venv/bin/python -m bench.storage.compaction_signals [--repeat 20]
        [--recordings 200]

1. Per 1,000 events: the real recordings of the shared fixtures (every
   `sessions/*.rrweb.json` and the plain rrweb flows) through
   `recordings.ingest.signal_scan.signals_of`, against the baseline of what reading
   them costs anyway: inflating and parsing the same events from their stored
   gzip (`blobs.decode`), measured in the same run.
2. Per compaction and the backfill: on a scratch PostgreSQL database (127.0.0.1,
   trust auth), N recordings are captured through the real `/s/` and rrweb
   endpoints (Django's test client), then compacted with signals (what the worker
   does) and compacted again with the signals step timed apart; then
   `manage.py recompute_signals` runs over all of them: recordings per second.

Prints each figure and its ratio to the baseline. Needs the shared fixtures.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.harness.corpus import FIXTURES, ensure_repo_importable
from bench.harness.servers import DB_NAME_PREFIX, scratch_database

TOKEN = "phc_bench_signals"


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fixture_recordings() -> list[list[dict[str, Any]]]:
    """Every real recording of the fixtures, each one window's events in order."""
    paths = sorted((FIXTURES / "sessions").glob("*.rrweb.json"))
    paths += sorted((FIXTURES.parent / "rrweb").glob("*.json"))
    found = []
    for path in paths:
        events = orjson.loads(path.read_bytes())
        if isinstance(events, dict):
            events = events.get("events", [])
        found.append(sorted(events, key=lambda e: e.get("timestamp", 0)))
    return [events for events in found if events]


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of `repeat` runs, in seconds (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def per_thousand_events(repeat: int) -> None:
    from recordings import blobs
    from recordings.ingest.signal_scan import signals_of

    recordings = fixture_recordings()
    events = sum(len(r) for r in recordings)
    stored = [blobs.encode_events(r) for r in recordings]
    baseline = best_of(repeat, lambda: [blobs.decode(d, "bench") for d in stored])
    signals = best_of(repeat, lambda: [signals_of({"w": r}) for r in recordings])
    say(
        f"== signals per 1,000 events ({len(recordings)} real recordings, "
        f"{events:,} events, best of {repeat}) =="
    )
    say(f"inflate + parse as stored (baseline): {baseline / events * 1e6:8.2f} ms")
    say(
        f"signals_of:                           {signals / events * 1e6:8.2f} ms"
        f"   ({signals / baseline:.2f}x the baseline)"
    )


def setup_django(db_url: str, data_dir: str) -> None:
    ensure_repo_importable()
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ.update(
        REPLAYHUB_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="replayhub.settings",
        REPLAYHUB_INGEST_RATE_PER_MINUTE="0",
        REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS=str(10**9),
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=db_url,
    )
    for name in ("REDIS_URL", "REPLAYHUB_S3_BUCKET", "DEBUG"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logging.getLogger("recordings").setLevel(logging.WARNING)  # one line a compaction


def capture_recordings(count: int) -> None:
    """`count` recordings, each a real fixture recording under a new session id."""
    from django.test import Client

    from recordings.models import Project

    project = Project.objects.create(name="Bench", token=TOKEN)
    client = Client()
    recordings = fixture_recordings()
    for n in range(count):
        events = recordings[n % len(recordings)]
        body = {"token": project.token, "session_id": f"bench-{n}", "events": events}
        answer = client.post(
            "/api/v1/ingest/rrweb/", orjson.dumps(body), content_type="application/json"
        )
        if answer.status_code != 200:
            raise SystemExit(
                f"capture answered {answer.status_code}: {answer.content!r}"
            )


def per_compaction_and_backfill(count: int) -> None:
    from django.core.management import call_command

    from recordings.models import Recording
    from recordings.services.compaction import recording_compact
    from recordings.services.recording_signals import recording_signals_update

    capture_recordings(count)
    ids = list(Recording.objects.order_by("pk").values_list("pk", flat=True))
    started = time.perf_counter()
    for recording in Recording.objects.filter(pk__in=ids):
        recording_compact(recording=recording)
    compaction = time.perf_counter() - started
    started = time.perf_counter()
    for recording in Recording.objects.filter(pk__in=ids):
        recording_signals_update(recording=recording)
    signals = time.perf_counter() - started
    started = time.perf_counter()
    call_command("recompute_signals", stdout=io.StringIO())
    backfill = time.perf_counter() - started
    say(f"== per compaction and backfill ({count} recordings, PostgreSQL) ==")
    say(
        f"compaction with signals:        {compaction / count * 1000:8.2f} ms/recording"
    )
    say(
        f"  of which the signals step:    {signals / count * 1000:8.2f} ms/recording"
        f"   ({signals / compaction:.2f}x of compaction)"
    )
    say(f"backfill (recompute_signals):   {count / backfill:8.1f} recordings/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--recordings", type=int, default=200)
    args = parser.parse_args()
    ensure_repo_importable()
    per_thousand_events(args.repeat)
    with (
        tempfile.TemporaryDirectory(prefix="replayhub-signals-") as tmp,
        scratch_database(f"{DB_NAME_PREFIX}_signals") as db_url,
    ):
        setup_django(db_url, str(Path(tmp)))
        per_compaction_and_backfill(args.recordings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
