"""Where ReplayHub's ingest time goes: the `/s/` path in-process, one thread.

Posts fresh realistic bodies through Django's test client (the whole request path:
middleware, DRF, parsing, services, database, blob storage), twice:

1. plain, for the wall and CPU time of a request with nothing measuring inside;
2. timed, with light wrappers around the main stages and every database query,
   to split a request's wall time into parse / JSON / DB / blob work;
3. under cProfile, to list the top functions by cumulative and by own time.

bench/ingest/throughput.py runs this against its PostgreSQL database. Run alone it uses
whatever DATABASE_URL says, or a fresh SQLite file in a temp directory:
    .venv/bin/python -m bench.ingest.profile_ingest [--requests 300]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import os
import pstats
import secrets
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.harness.corpus import (
    ROOT,
    auto_sessions,
    ensure_repo_importable,
    generate_bodies,
    load_templates,
)

# (module, attribute) the request path looks each stage up by, and its label. For
# the timed pass each is replaced by a wrapper that adds its *own* time (less any
# nested stage) to the label; attributes the code no longer has are skipped.
BLOB_ENCODE = "events to JSON (blob + kept as sent) and gzip-6"
STAGES: tuple[tuple[str, str, str], ...] = (
    (
        "recordings.capture.endpoints",
        "decode_body",
        "decode body (outer gunzip + orjson.loads)",
    ),
    (
        "recordings.capture.endpoints",
        "parse_snapshot_request",
        "parse $snapshots (cv gunzip + orjson, checks)",
    ),
    (
        "recordings.capture.admission",
        "project_for_token",
        "project lookup (cached per process)",
    ),
    (
        "recordings.capture.endpoints",
        "recording_ingest_batches",
        "services: Python (plan, fold, rows, SQL params)",
    ),
    ("recordings.capture.store", "scrub_events", "privacy firewall (scrub_events)"),
    (
        "recordings.capture.store",
        "drop_blocked_pages",
        "privacy firewall (scrub_events)",
    ),
    ("recordings.capture.store", "summarize", "batch stats (summarize)"),
    ("recordings.blobs", "encode_events", BLOB_ENCODE),
    ("recordings.blobs", "dumps", BLOB_ENCODE),
    ("recordings.blobs", "compress", BLOB_ENCODE),
    ("recordings.blobs", "put_chunks", "blob write (create, write, fsync file + dir)"),
)
DB_LABEL = "database queries (round trips)"
COMMIT_LABEL = "database commits (WAL flush)"
OTHER_LABEL = "rest: Django + DRF request/response, middleware"
TOP_FUNCTIONS = 25


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201


# --- Django setup -------------------------------------------------------------------


def setup_django(token: str) -> None:
    """Configure Django from the environment (SQLite in a temp dir if unset)."""
    ensure_repo_importable()
    # WhiteNoise notes the missing collectstatic output on every start.
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replayhub.settings")
    standalone = "DATABASE_URL" not in os.environ
    if standalone and "REPLAYHUB_DATA_DIR" not in os.environ:
        os.environ["REPLAYHUB_DATA_DIR"] = tempfile.mkdtemp(prefix="replayhub-prof-")
    os.environ.setdefault("REPLAYHUB_INGEST_RATE_PER_MINUTE", "0")
    import django

    django.setup()
    if standalone:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    from recordings.models import Project

    Project.objects.get_or_create(token=token, defaults={"name": "ingest profile"})


def database_vendor() -> str:
    from django.db import connection

    return str(connection.vendor)


# --- posting ------------------------------------------------------------------------


def post_all(bodies: list[bytes]) -> float:
    """Post each body to /s/ in-process; the wall time taken. Fails on a non-200."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    start = time.perf_counter()
    for body in bodies:
        response = client.post("/s/", data=body, content_type="text/plain")
        if response.status_code != 200:
            raise RuntimeError(
                f"/s/ answered {response.status_code}: {response.content[:300]!r}"
            )
    return time.perf_counter() - start


def post_all_cpu(bodies: list[bytes]) -> tuple[float, float]:
    """Like post_all; the wall time and this process's CPU time (user + system)."""
    cpu = time.process_time()
    wall = post_all(bodies)
    return wall, time.process_time() - cpu


# --- the timed pass -----------------------------------------------------------------


@dataclass
class StageTimes:
    """Own time per stage label: a stage's time less that of stages nested in it."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    queries: int = 0
    commits: int = 0
    # Per SQL text (Django passes it with %s placeholders): [count, seconds].
    by_sql: defaultdict[str, list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0.0])
    )
    # Time taken by nested stages, one entry per stage now running.
    _nested: list[float] = field(default_factory=list)

    def timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._nested.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = self._nested.pop()
                self.seconds[label] += elapsed - nested
                if self._nested:
                    self._nested[-1] += elapsed

        return wrapper

    def db_wrapper(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any
    ) -> Any:
        self.queries += 1
        start = time.perf_counter()
        try:
            return self.timed(DB_LABEL, execute)(sql, params, many, ctx)
        finally:
            entry = self.by_sql[sql]
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    def commit_wrapper(self, commit: Callable[[], None]) -> Callable[[], None]:
        timed = self.timed(COMMIT_LABEL, commit)

        def counted() -> None:
            self.commits += 1
            timed()

        return counted


@contextmanager
def _patched(module_name: str, attr: str, replacement: Any) -> Iterator[None]:
    module = importlib.import_module(module_name)
    original = getattr(module, attr)
    setattr(module, attr, replacement)
    try:
        yield
    finally:
        setattr(module, attr, original)


@contextmanager
def instrumented(times: StageTimes) -> Iterator[list[str]]:
    """Wrap the stages and the database; yields the labels that were not found."""
    from django.db import connections

    missing = []
    with ExitStack() as stack:
        for module_name, attr, label in STAGES:
            module = importlib.import_module(module_name)
            if not hasattr(module, attr):
                missing.append(f"{module_name}.{attr}")
                continue
            wrapped = times.timed(label, getattr(module, attr))
            stack.enter_context(_patched(module_name, attr, wrapped))
        connection = connections["default"]
        stack.enter_context(connection.execute_wrapper(times.db_wrapper))
        # atomic() commits through the wrapper's commit(), not through execute.
        commit = times.commit_wrapper(connection.commit)
        connection.commit = commit  # type: ignore[method-assign]
        stack.callback(delattr, connection, "commit")
        yield missing


def query_report(times: StageTimes, requests: int, top: int = 10) -> str:
    """The SQL statements that took the most time, per request."""
    ranked = sorted(times.by_sql.items(), key=lambda kv: -kv[1][1])
    lines = [f"top {top} SQL statements by time:", f"{'ms/req':>8} {'n/req':>6}  SQL"]
    for sql, (count, seconds) in ranked[:top]:
        text = " ".join(sql.split())
        text = text if len(text) <= 110 else text[:107] + "..."
        lines.append(
            f"{seconds / requests * 1000:>8.3f} {count / requests:>6.1f}  {text}"
        )
    return "\n".join(lines)


def stage_report(times: StageTimes, wall: float, requests: int) -> str:
    stages = [label for _m, _a, label in STAGES]
    labels = [*dict.fromkeys(stages), DB_LABEL, COMMIT_LABEL]
    known = sum(times.seconds[label] for label in labels)
    rows = [(label, times.seconds[label]) for label in labels]
    rows.append((OTHER_LABEL, wall - known))
    lines = [f"{'stage':<48} {'ms/request':>10} {'share':>6}"]
    for label, seconds in rows:
        lines.append(
            f"{label:<48} {seconds / requests * 1000:>10.3f} {seconds / wall:>6.1%}"
        )
    lines.append(
        f"{'total':<48} {wall / requests * 1000:>10.3f} {1:>6.0%}   "
        f"({times.queries / requests:.1f} queries, "
        f"{times.commits / requests:.1f} commits per request)"
    )
    return "\n".join(lines)


# --- the cProfile pass --------------------------------------------------------------


def _where(key: FuncKey) -> str:
    filename, line, func = key
    if filename == "~":
        return func  # a built-in
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({func})"


# Own time is charged to the first group whose marker is in the function's file
# (or, for built-ins, in its name).
PACKAGE_GROUPS: tuple[tuple[str, str], ...] = (
    ("site-packages/django/db/", "Django ORM (django.db)"),
    ("site-packages/psycopg", "psycopg (driver, waits on PostgreSQL)"),
    ("site-packages/rest_framework/", "Django REST framework"),
    ("site-packages/django/test/", "Django test client (not in production)"),
    ("site-packages/django/", "Django (other: handlers, middleware, ...)"),
    (str(ROOT / "recordings"), "ReplayHub code (recordings/)"),
    ("zlib", "zlib (gunzip, gzip)"),
    ("orjson", "orjson"),
    ("posix", "file system calls"),
    ("io.", "file system calls"),
    ("sqlite3", "sqlite3 (driver)"),
    ("site-packages/", "other packages"),
)
PyStats = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
FuncKey = tuple[str, int, str]


def _group(key: FuncKey) -> str:
    filename, _line, func = key
    where = func if filename == "~" else filename
    for marker, group in PACKAGE_GROUPS:
        if marker in where:
            return group
    return "built-ins" if filename == "~" else "Python standard library"


def _by_package(entries: PyStats, requests: int) -> list[str]:
    own: defaultdict[str, float] = defaultdict(float)
    for key, (_cc, _nc, tottime, _ct, _callers) in entries.items():
        own[_group(key)] += tottime
    total = sum(own.values())
    lines = ["own time by package (under cProfile, so Python-heavy code is inflated):"]
    lines.append(f"{'ms/req':>8} {'share':>6}  package")
    for group, seconds in sorted(own.items(), key=lambda kv: -kv[1]):
        lines.append(
            f"{seconds / requests * 1000:>8.3f} {seconds / total:>6.1%}  {group}"
        )
    return lines


def _ranked(
    entries: PyStats, requests: int, title: str, column: int, only_repo: bool
) -> list[str]:
    items = [
        (key, value)
        for key, value in entries.items()
        if not only_repo or key[0].startswith(str(ROOT / "recordings"))
    ]
    items.sort(key=lambda kv: kv[1][column], reverse=True)
    lines = [title, f"{'cum ms':>8} {'own ms':>8} {'calls/req':>9}  function"]
    for key, (_cc, ncalls, tottime, cumtime, _callers) in items[:TOP_FUNCTIONS]:
        lines.append(
            f"{cumtime / requests * 1000:>8.3f} {tottime / requests * 1000:>8.3f} "
            f"{ncalls / requests:>9.1f}  {_where(key)}"
        )
    return lines


def profile_report(profiler: cProfile.Profile, requests: int) -> str:
    entries: PyStats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    sections = [
        _by_package(entries, requests),
        _ranked(
            entries,
            requests,
            f"top {TOP_FUNCTIONS} ReplayHub functions by cumulative time, per request:",
            3,
            only_repo=True,
        ),
        _ranked(
            entries,
            requests,
            f"top {TOP_FUNCTIONS} functions by own time, per request:",
            2,
            only_repo=False,
        ),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections)


# --- main ---------------------------------------------------------------------------


def run(token: str, requests: int, warmup: int) -> None:
    setup_django(token)
    templates = load_templates()
    count = warmup + 3 * requests
    bodies = generate_bodies(
        templates, count=count, sessions=auto_sessions(count, templates), token=token
    )
    warm, plain, timed, profiled = (
        bodies[:warmup],
        bodies[warmup : warmup + requests],
        bodies[warmup + requests : warmup + 2 * requests],
        bodies[warmup + 2 * requests :],
    )
    post_all(warm)
    plain_wall, plain_cpu = post_all_cpu(plain)
    times = StageTimes()
    with instrumented(times) as missing:
        wall = post_all(timed)
    profiler = cProfile.Profile()
    profiler.enable()
    post_all(profiled)
    profiler.disable()
    vendor = database_vendor()
    say(
        f"in-process ingest, {requests} fresh /s/ requests, one thread, "
        f"{vendor} (Django test client; no HTTP server):"
    )
    say(
        f"  {plain_wall / requests * 1000:.2f} ms/request wall "
        f"({requests / plain_wall:.0f} requests/s), of which "
        f"{plain_cpu / requests * 1000:.2f} ms CPU in this process (the database "
        "server's is not counted)"
    )
    say(f"  with the timing wrappers below: {wall / requests * 1000:.2f} ms/request")
    say()
    say(stage_report(times, wall, requests))
    say()
    say(query_report(times, requests))
    if missing:
        say(f"(not found, so not split out: {', '.join(missing)})")
    say()
    say(profile_report(profiler, requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--token", default="phc_bench_profile_" + secrets.token_hex(8))
    args = parser.parse_args()
    run(args.token, args.requests, args.warmup)


if __name__ == "__main__":
    main()
