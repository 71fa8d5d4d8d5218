"""Ingest benchmark: ReplayHub's `/s/` against the floor, on PostgreSQL.

    .venv/bin/python -m bench.ingest.throughput [--duration 20] [--concurrency 8]
        [--bodies N] [--quick]

1. Stored bytes per recorded minute of the real 72-second session: ReplayHub's
   gzip blobs against zstd (no server needed).
2. Builds N distinct realistic `/s/` bodies from the real posthog-js captures.
3. The floor: a bare WSGI app (bench/ingest/floor_app.py) under the Procfile's gunicorn
   flags that only gunzips, parses and writes each body; loaded for --duration s.
4. ReplayHub under the same gunicorn flags on a scratch PostgreSQL database,
   loaded with the same bodies for --duration s.
5. An in-process profile of ReplayHub's ingest path (bench/ingest/profile_ingest.py).
6. A table: batches/s, MB/s (compressed bytes sent), latency, errors, peak RSS
   of the gunicorn tree, CPU per batch, and the ReplayHub/floor ratio.

Everything it starts (gunicorn, the database `replayhub_bench`, temp dirs) is
stopped and removed on the way out, also on Ctrl-C or a failure.
See docs/benchmarks/ingest.md for results and how to read them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import secrets
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil
import psycopg

from bench.harness.corpus import ROOT, Template, generate_bodies, load_templates
from bench.harness.loadgen import (
    Clients,
    RssSampler,
    RunResult,
    UsageMeter,
    summarise,
    tree_rss,
)
from bench.harness.servers import (
    DB_NAME_PREFIX,
    PYTHON,
    backend_pids,
    base_env,
    floor_command,
    free_port,
    gunicorn,
    log,
    prepare_replayhub,
    procfile_web_command,
    run_cleanly,
    scratch_database,
)
from bench.storage.bytes_per_minute import format_storage, storage_rows

GOAL_RATIO = (
    0.35  # issue 16 (issue 3 asked 0.5; bench/ingest/ceiling.py showed it out of reach)
)
# Assumed top rate when sizing the body list: no body is ever sent twice.
AUTO_BODIES_PER_SECOND = 2000
MB = 1024 * 1024
# At ~70 batches/s ReplayHub sees each session every ~3 s, as posthog-js sends.
DEFAULT_SESSIONS = 200
BUSY_PERCENT = 15.0


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    concurrency: int
    bodies: int
    sessions: int
    workers: int
    warmup: int
    profile_requests: int
    db_name: str


def parse_args() -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark ReplayHub's /s/ ingest against a bare WSGI floor."
    )
    parser.add_argument("--duration", type=float, default=20.0, help="s per side")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument(
        "--bodies",
        type=int,
        default=0,
        help="distinct bodies, each sent at most once per side; a side stops "
        f"early when they run out (default: {AUTO_BODIES_PER_SECOND} x duration)",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        help="live sessions the bodies are spread over, round-robin (each sends a "
        "batch in turn, as ~200 active users would)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (Procfile default)"
    )
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--db-name", default=DB_NAME_PREFIX)
    parser.add_argument(
        "--quick", action="store_true", help="a 5 s smoke run of everything"
    )
    args = parser.parse_args()
    duration = 5.0 if args.quick else args.duration
    bodies = args.bodies or int(AUTO_BODIES_PER_SECOND * duration)
    return Options(
        duration=duration,
        concurrency=args.concurrency,
        bodies=bodies,
        sessions=args.sessions,
        workers=args.workers,
        warmup=max(40, 4 * args.concurrency),
        profile_requests=100 if args.quick else args.profile_requests,
        db_name=args.db_name,
    )


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - the report is the program's output


# --- the machine ------------------------------------------------------------------


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _postgres_version() -> str:
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0]}" if row else "PostgreSQL ?"
    except psycopg.Error as exc:
        return f"PostgreSQL unavailable ({exc})"


def describe_machine() -> None:
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("django", "djangorestframework", "gunicorn", "orjson", "psycopg")
    )
    memory = psutil.virtual_memory().total / 1024**3
    log(f"date      {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    log(f"machine   {_cpu_model()}, {os.cpu_count()} cores, {memory:.0f} GiB")
    log(f"software  Python {platform.python_version()}, {versions}")
    log(f"database  {_postgres_version()} on 127.0.0.1")
    warn_if_busy()


def warn_if_busy() -> None:
    """Say so when other work is using the CPU: it skews every number."""
    busy = psutil.cpu_percent(interval=1.0)
    if busy > BUSY_PERCENT:
        log(
            f"WARNING: the CPU was {busy:.0f}% busy in the second before starting; "
            "the numbers will be noisy"
        )


# --- the two sides ----------------------------------------------------------------


class Progress:
    """Prints a line every few seconds while a side is under load."""

    def __init__(self, name: str, sampler: RssSampler) -> None:
        self.name = name
        self.sampler = sampler
        self.last = (time.perf_counter(), 0, 0)

    def __call__(self, clients: Clients) -> None:
        now = time.perf_counter()
        ok = clients.ok_count()
        sent = sum(log.ok_bytes for log in clients.logs)
        then, ok_then, sent_then = self.last
        span = max(now - then, 1e-9)
        self.last = (now, ok, sent)
        log(
            f"{self.name:>9} {now - clients.started_at:5.1f} s  {ok:6d} ok  "
            f"{(ok - ok_then) / span:6.0f} batches/s  "
            f"{(sent - sent_then) / span / 1e6:5.2f} MB/s  "
            f"errors {clients.errors()}  rss {self.sampler.latest / MB:.0f} MiB"
        )


def _warm_up(name: str, port: int, bodies: list[bytes], concurrency: int) -> None:
    clients = Clients(port, bodies, concurrency, duration=60.0)
    clients.run()
    if clients.errors():
        raise RuntimeError(
            f"{name} failed during warm-up: {clients.errors()} errors, "
            f"first: {clients.first_error()}"
        )


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True, slots=True)
class Side:
    name: str
    command: list[str]
    env: Mapping[str, str]
    blob_dir: Path
    database: str = ""  # the PostgreSQL database it uses, for its backends' CPU


@dataclass(frozen=True, slots=True)
class SideResult:
    run: RunResult
    blob_bytes: int


def bench_side(
    side: Side, opts: Options, bodies: list[bytes], warmup: list[bytes], tmp: Path
) -> SideResult:
    port = int(side.command[side.command.index("--bind") + 1].rsplit(":", 1)[1])
    log_path = tmp / f"{side.name}.log"
    with gunicorn(side.name, side.command, side.env, port, log_path) as server:
        log(f"{side.name}: warming up with {len(warmup)} requests")
        _warm_up(side.name, port, warmup, opts.concurrency)
        warm_blobs = _dir_bytes(side.blob_dir)
        idle_rss = tree_rss(server.pid)
        log(
            f"{side.name}: {opts.concurrency} clients for up to {opts.duration:.0f} s "
            f"or {len(bodies)} bodies"
        )
        backends = partial(backend_pids, side.database) if side.database else None
        meter = UsageMeter(server.pid, backends)
        clients = Clients(port, bodies, opts.concurrency, opts.duration)
        with RssSampler(server.pid) as sampler:
            clients.run(on_tick=Progress(side.name, sampler))
        result = summarise(side.name, clients, sampler, idle_rss, meter.delta())
    if result.errors:
        log(f"{side.name}: errors {result.errors}; first: {clients.first_error()}")
        log(f"{side.name}: server log: {log_path}")
    if result.exhausted:
        log(f"{side.name}: ran out of bodies before the time was up (see --bodies)")
    return SideResult(result, _dir_bytes(side.blob_dir) - warm_blobs)


def _gunicorn_env(port: int, workers: int) -> dict[str, str]:
    return {
        "REPLAYHUB_BIND": f"127.0.0.1:{port}",
        "REPLAYHUB_WEB_WORKERS": str(workers),
        # No worker recycling during a run: a recycled worker's database
        # connection ends, and the CPU its backend used is then uncounted.
        "REPLAYHUB_WEB_MAX_REQUESTS": "0",
        "REPLAYHUB_WEB_MAX_REQUESTS_JITTER": "0",
    }


def floor_side(opts: Options, tmp: Path) -> Side:
    env = base_env() | {"FLOOR_DATA_DIR": str(tmp / "floor")}
    flags = _gunicorn_env(free_port(), opts.workers)
    command = floor_command(procfile_web_command(flags))
    return Side("floor", command, env, tmp / "floor")


def replayhub_env(db_url: str, tmp: Path) -> dict[str, str]:
    return base_env() | {
        "DJANGO_SETTINGS_MODULE": "replayhub.settings",
        "DATABASE_URL": db_url,
        "REPLAYHUB_DATA_DIR": str(tmp / "replayhub"),
        # The benchmark measures ingest, not the per-minute limiter (default 6000).
        "REPLAYHUB_INGEST_RATE_PER_MINUTE": "0",
    }


def replayhub_side(opts: Options, env: dict[str, str], tmp: Path) -> Side:
    flags = _gunicorn_env(free_port(), opts.workers)
    command = procfile_web_command(flags)
    blob_dir = tmp / "replayhub" / "blobs"
    return Side("replayhub", command, env, blob_dir, database=opts.db_name)


def run_profile(env: Mapping[str, str], token: str, requests: int) -> None:
    log(f"profiling ReplayHub's ingest in-process ({requests} requests)")
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "bench.ingest.profile_ingest",
            "--token",
            token,
            "--requests",
            str(requests),
        ],
        cwd=ROOT,
        env=dict(env),
        check=True,
    )


# --- report -----------------------------------------------------------------------


def format_results(sides: list[SideResult]) -> str:
    header = (
        f"{'side':<10} {'batches/s':>9} {'MB/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ok':>6} {'errors':>6} {'peak RSS':>9} {'srv CPU':>8} {'db CPU':>8} "
        f"{'cli CPU':>8} {'machine':>7} {'stored':>8}"
    )
    units = (
        f"{'':<10} {'':>9} {'':>6} {'':>7} {'':>7} {'':>6} {'':>6} "
        f"{'MiB':>9} {'ms/batch':>8} {'ms/batch':>8} {'ms/batch':>8} {'busy':>7} "
        f"{'B/batch':>8}"
    )
    lines = [header, units, "-" * len(header)]
    for side in sides:
        r = side.run
        cores = os.cpu_count() or 1
        busy = r.machine_busy / (r.elapsed * cores) if r.elapsed else 0.0
        server_ms = r.per_batch_ms(r.server_cpu)
        database_ms = r.per_batch_ms(r.database_cpu)
        client_ms = r.per_batch_ms(r.client_cpu)
        lines.append(
            f"{r.name:<10} {r.batches_per_s:>9.1f} {r.mb_per_s:>6.3f} "
            f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.ok:>6} "
            f"{sum(r.errors.values()):>6} {r.peak_rss / MB:>9.0f} "
            f"{server_ms:>8.2f} {database_ms:>8.2f} {client_ms:>8.2f} "
            f"{busy:>7.0%} {side.blob_bytes / max(r.ok, 1):>8.0f}"
        )
    return "\n".join(lines)


def format_ratio(floor: RunResult, replayhub: RunResult) -> str:
    ratio = replayhub.batches_per_s / floor.batches_per_s if floor.ok else 0.0
    verdict = "meets" if ratio >= GOAL_RATIO else "misses"
    return (
        f"throughput ratio ReplayHub/floor = {ratio:.3f} "
        f"({verdict} the goal of >= {GOAL_RATIO})"
    )


def _errors(result: RunResult) -> str:
    if not result.errors:
        return "none"
    return ", ".join(f"{status}: {n}" for status, n in result.errors.items())


def report(
    storage: str, floor: SideResult, replayhub: SideResult, opts: Options
) -> None:
    say()
    say("== stored bytes per recorded minute (72 s main session) ==")
    say(storage)
    say()
    say(
        f"== ingest under load: {opts.concurrency} keep-alive clients, "
        f"{opts.duration:.0f} s per side, gunicorn --workers {opts.workers} "
        "--threads 4 =="
    )
    say(format_results([floor, replayhub]))
    say()
    for side in (floor, replayhub):
        r = side.run
        say(
            f"{r.name}: {r.ok} batches in {r.elapsed:.1f} s, max latency "
            f"{r.max_ms:.0f} ms, idle RSS {r.idle_rss / MB:.0f} MiB, "
            f"errors by status: {_errors(r)}"
        )
    say(format_ratio(floor.run, replayhub.run))


# --- main -------------------------------------------------------------------------


def make_bodies(
    templates: list[Template], opts: Options, token: str
) -> tuple[list[bytes], list[bytes]]:
    """The measured bodies and a separate warm-up set, all distinct."""
    count = opts.bodies + opts.warmup
    sessions = opts.sessions
    log(
        f"building {count} distinct /s/ bodies over {sessions} sessions "
        f"from {len(templates)} captured requests"
    )
    bodies = generate_bodies(templates, count=count, sessions=sessions, token=token)
    mean = sum(map(len, bodies)) / len(bodies)
    log(f"bodies ready: mean {mean:,.0f} bytes gzip")
    return bodies[opts.warmup :], bodies[: opts.warmup]


def run(opts: Options) -> None:
    describe_machine()
    log("measuring stored bytes (gzip vs zstd)")
    storage = format_storage(storage_rows())
    token = "phc_bench_" + secrets.token_hex(12)
    bodies, warmup = make_bodies(load_templates(), opts, token)
    with tempfile.TemporaryDirectory(prefix="replayhub-bench-") as tmp_name:
        tmp = Path(tmp_name)
        floor = bench_side(floor_side(opts, tmp), opts, bodies, warmup, tmp)
        with scratch_database(opts.db_name) as db_url:
            env = replayhub_env(db_url, tmp)
            prepare_replayhub(env, token)
            side = replayhub_side(opts, env, tmp)
            replayhub = bench_side(side, opts, bodies, warmup, tmp)
            chunks = chunk_table_report(env, db_url, replayhub.run)
            if opts.profile_requests > 0:
                run_profile(env, token, opts.profile_requests)
    report(storage, floor, replayhub, opts)
    say(chunks)


_CHUNK_TABLE_SQL = (
    "SELECT count(*), count(data), coalesce(sum(length(data)), 0), "
    "pg_total_relation_size('recordings_snapshotchunk') FROM recordings_snapshotchunk"
)


def _chunk_table(db_url: str) -> str:
    url = db_url.replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:  # VACUUM: no transaction
        conn.execute("VACUUM recordings_snapshotchunk")  # as autovacuum would
        found = conn.execute(_CHUNK_TABLE_SQL).fetchone()
    assert found is not None  # an aggregate always has a row
    rows, live, live_bytes, table = found
    return (
        f"{rows:,} chunk rows, {live:,} holding bytes ({live_bytes / 2**20:.1f} MiB, "
        f"{live_bytes / max(live, 1):,.0f} B each); table with its TOAST and "
        f"indexes {table / 2**20:.1f} MiB"
    )


def chunk_table_report(env: Mapping[str, str], db_url: str, run: RunResult) -> str:
    """What the load left in the database's chunk table, then after compaction.

    Capture commits live batches' bytes in their rows (SnapshotChunk.data) until
    compaction moves them into one blob per window. At a steady rate the table
    holds about rate x (idle minutes + compaction period) of bytes; this shows
    the load's share and that compaction empties it.
    """
    log("chunk table: measuring, then compacting every recording")
    loaded = _chunk_table(db_url)
    subprocess.run(
        [str(PYTHON), "manage.py", "compact_recordings", "--idle-minutes", "0"],
        cwd=ROOT,
        env=dict(env),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    compacted = _chunk_table(db_url)
    return (
        f"== the database's chunk table ==\n"
        f"after the load ({run.ok:,} requests at {run.batches_per_s:,.0f}/s): "
        f"{loaded}\n"
        f"after compaction: {compacted}\n"
        "(at a steady rate, the live bytes are about the bytes per second times "
        "(compaction idle time + compaction period))"
    )


def main() -> int:
    opts = parse_args()
    return run_cleanly(lambda: run(opts))


if __name__ == "__main__":
    raise SystemExit(main())
