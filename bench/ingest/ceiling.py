"""The ceiling: how close to the floor can a durable, firewalled `/s/` server get here?

    .venv/bin/python -m bench.ingest.ceiling [--duration 10] [--rounds 3]
        [--concurrency 8] [--rungs parse,firewall,write,blob,row,log]

Issue 3 asks ReplayHub for at least half the floor's throughput
(bench/ingest/throughput.py). This runs, in one go and under the same gunicorn
command and load as that benchmark, the floor, then bare WSGI apps
(bench/ingest/ladder_app.py) that each add one piece of the work ReplayHub's
promises require of every request (parse, the privacy firewall, writing the
blob, fsyncing it, a committed row; or a group-committed log instead of blob
and row), then ReplayHub itself. It prints each one's throughput and its ratio
to the floor, so a person can see which promise costs what, and the best any
Python server could do on this machine.

No framework in the rungs, no ledger, no recording counters, no reads: each is
cheaper than any real server could be. Rung `django` is `inrow` inside ReplayHub's
own Django + DRF stack (bench/ingest/ladder_django.py): what the framework costs
alone. Needs PostgreSQL on 127.0.0.1:5432 (rung `row` and ReplayHub) and the
shared fixtures, like bench/ingest/throughput.py.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import psycopg

from bench.harness.corpus import ROOT, load_templates
from bench.harness.loadgen import RunResult
from bench.harness.servers import (
    DB_NAME_PREFIX,
    FLOOR_APP,
    base_env,
    floor_command,
    free_port,
    log,
    prepare_replayhub,
    procfile_web_command,
    run_cleanly,
    scratch_database,
)
from bench.ingest.throughput import (
    Options,
    Side,
    SideResult,
    _gunicorn_env,
    bench_side,
    describe_machine,
    floor_side,
    make_bodies,
    replayhub_env,
    replayhub_side,
    say,
)

LADDER = ("parse", "firewall", "write", "blob", "row", "log", "inrow", "django")
# Issue 16's goal: the bytes-in-row design (rung `inrow`) reaches about 0.46.
GOAL_RATIO = 0.35
# ...with CPU per batch (server + database) within this of rung `inrow`'s.
GOAL_CPU_VS_INROW = 1.5
TABLE_SQL = (
    "CREATE TABLE ladder_chunk (batch_id text PRIMARY KEY, "
    "session_id text NOT NULL, events integer NOT NULL, bytes integer NOT NULL, "
    "data bytea, created timestamptz NOT NULL DEFAULT now())"
)


def parse_args() -> tuple[Options, tuple[str, ...], int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="s per server")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--rungs",
        default=",".join(LADDER),
        help=f"which rungs to run, comma-separated, from {', '.join(LADDER)}",
    )
    parser.add_argument(
        "--no-replayhub", action="store_true", help="skip ReplayHub itself"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="times to run every server, in turn; the report gives medians",
    )
    args = parser.parse_args()
    rungs = tuple(r for r in args.rungs.split(",") if r)
    unknown = set(rungs) - set(LADDER)
    if unknown:
        parser.error(f"unknown rungs: {', '.join(sorted(unknown))}")
    if not args.no_replayhub:
        rungs = (*rungs, "replayhub")
    opts = Options(
        duration=args.duration,
        concurrency=args.concurrency,
        bodies=int(2500 * args.duration),
        sessions=200,
        workers=args.workers,
        warmup=max(40, 4 * args.concurrency),
        profile_requests=0,
        db_name=f"{DB_NAME_PREFIX}_ceiling",
    )
    return opts, rungs, max(1, args.rounds)


def rung_side(rung: str, opts: Options, env: dict[str, str], tmp: Path) -> Side:
    if rung == "django":
        return django_rung_side(opts, env, tmp)
    db_url = env["DATABASE_URL"]
    data_dir = tmp / rung
    env = base_env() | {
        "LADDER_RUNG": rung,
        "LADDER_DATA_DIR": str(data_dir),
        "LADDER_DATABASE_URL": db_url.replace("postgres://", "postgresql://"),
    }
    flags = _gunicorn_env(free_port(), opts.workers)
    command = floor_command(procfile_web_command(flags))
    command = [
        "bench.ingest.ladder_app:application" if word == FLOOR_APP else word
        for word in command
    ]
    return Side(rung, command, env, data_dir, database=opts.db_name)


def django_rung_side(opts: Options, env: dict[str, str], tmp: Path) -> Side:
    """Rung `inrow` as a DRF view in ReplayHub's stack (bench/ingest/ladder_django.py),
    under ReplayHub's own gunicorn command."""
    flags = _gunicorn_env(free_port(), opts.workers)
    command = procfile_web_command(flags)
    command = [command[0], "--pythonpath", str(ROOT), *command[1:]]
    side_env = env | {"DJANGO_SETTINGS_MODULE": "bench.ingest.ladder_django"}
    return Side("django", command, side_env, tmp / "django", database=opts.db_name)


def create_ladder_table(db_url: str) -> None:
    with psycopg.connect(db_url.replace("postgres://", "postgresql://")) as conn:
        conn.execute(TABLE_SQL)


@dataclass
class Ladder:
    """Every run of a ceiling measurement: floors between rounds, rungs within."""

    floors: list[SideResult] = field(default_factory=list)
    rounds: list[dict[str, SideResult]] = field(default_factory=list)

    def ratios(self, rung: str) -> list[float]:
        """Per round: the rung's rate over the mean floor just before and after it."""
        found = []
        for k, results in enumerate(self.rounds):
            before, after = self.floors[k].run, self.floors[k + 1].run
            floor = (before.batches_per_s + after.batches_per_s) / 2
            found.append(results[rung].run.batches_per_s / floor if floor else 0.0)
        return found


def report(ladder: Ladder, rungs: tuple[str, ...], opts: Options) -> None:
    say()
    say(
        f"== the ceiling: {len(ladder.rounds)} round(s), {opts.concurrency} keep-alive "
        f"clients, {opts.duration:.0f} s per server, gunicorn --workers {opts.workers} "
        "--threads 4 =="
    )
    header = (
        f"{'server':<10} {'vs floor':>9} {'range':>13} {'batches/s':>10} "
        f"{'p99 ms':>7} {'errors':>6} {'srv CPU':>8} {'db CPU':>8}"
    )
    say(header)
    say(
        f"{'':<10} {'median':>9} {'':>13} {'median':>10} {'median':>7} {'':>6} "
        f"{'ms/batch':>8} {'ms/batch':>8}"
    )
    say("-" * len(header))
    floors = [side.run for side in ladder.floors]
    say(_row("floor", [1.0], floors))
    for rung in rungs:
        runs = [results[rung].run for results in ladder.rounds]
        say(_row(rung, ladder.ratios(rung), runs))
    say()
    rates = ", ".join(f"{run.batches_per_s:.0f}" for run in floors)
    say(f"floor runs, before, between and after the rounds: {rates} batches/s")
    say(
        f"goal: ReplayHub >= {GOAL_RATIO} x floor; no server that must do a rung's "
        "work can beat that rung"
    )
    if "inrow" not in rungs:
        return
    for name in ("django", "replayhub"):
        if name in rungs:
            cpu, inrow = _cpu_per_batch(ladder, name), _cpu_per_batch(ladder, "inrow")
            say(
                f"CPU per batch (server + database): {name} {cpu:.2f} ms, "
                f"inrow {inrow:.2f} ms: {cpu / inrow:.2f}x "
                f"(goal for ReplayHub <= {GOAL_CPU_VS_INROW}x)"
            )


def _cpu_per_batch(ladder: Ladder, rung: str) -> float:
    runs = [results[rung].run for results in ladder.rounds]
    return median(
        run.per_batch_ms(run.server_cpu) + run.per_batch_ms(run.database_cpu)
        for run in runs
    )


def _row(name: str, ratios: list[float], runs: list[RunResult]) -> str:
    errors = sum(sum(run.errors.values()) for run in runs)
    server = median(run.per_batch_ms(run.server_cpu) for run in runs)
    database = median(run.per_batch_ms(run.database_cpu) for run in runs)
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    return (
        f"{name:<10} {median(ratios):>9.3f} {spread:>13} "
        f"{median(run.batches_per_s for run in runs):>10.0f} "
        f"{median(run.p99_ms for run in runs):>7.1f} {errors:>6} "
        f"{server:>8.2f} {database:>8.2f}"
    )


def run(opts: Options, rungs: tuple[str, ...], rounds: int) -> None:
    describe_machine()
    token = "phc_bench_" + secrets.token_hex(12)
    templates = load_templates()
    ladder = Ladder()
    with (
        tempfile.TemporaryDirectory(prefix="replayhub-ceiling-") as tmp_name,
        scratch_database(opts.db_name) as db_url,
    ):
        tmp = Path(tmp_name)
        create_ladder_table(db_url)
        env = replayhub_env(db_url, tmp)
        if "replayhub" in rungs:
            prepare_replayhub(env, token)
        for k in range(rounds):
            log(f"round {k + 1} of {rounds}")
            # Fresh bodies each round: no server ever sees a batch id twice.
            bodies, warmup = make_bodies(templates, opts, token)
            if k == 0:
                ladder.floors.append(_measure("floor", opts, env, tmp, bodies, warmup))
            ladder.rounds.append(
                {
                    rung: _measure(rung, opts, env, tmp, bodies, warmup, k)
                    for rung in rungs
                }
            )
            # The floor between rounds: the machine's speed drifts (other load,
            # clocks), and a ratio against one distant run would carry that drift.
            ladder.floors.append(_measure("floor", opts, env, tmp, bodies, warmup))
    report(ladder, rungs, opts)


def _measure(
    name: str,
    opts: Options,
    env: dict[str, str],
    tmp: Path,
    bodies: list[bytes],
    warmup: list[bytes],
    round_no: int = 0,
) -> SideResult:
    if name == "floor":
        side = floor_side(opts, tmp)
    elif name == "replayhub":
        side = replayhub_side(opts, env, tmp)
    else:
        side = rung_side(name, opts, env, tmp / f"round{round_no}")
    return bench_side(side, opts, bodies, warmup, tmp)


def main() -> int:
    opts, rungs, rounds = parse_args()
    log(f"repository {ROOT}")
    return run_cleanly(lambda: run(opts, rungs, rounds))


if __name__ == "__main__":
    raise SystemExit(main())
