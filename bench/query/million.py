"""Filters at a million (issue 13): the filter language against hand-written SQL.

    .venv/bin/python -m bench.query.million [--recordings 1000000] [--repeat 20]
        [--keep-db] [--reuse-db] [--only TEXT]

1. A scratch PostgreSQL database (`replayhub_bench_query`), migrated, loaded with
   COPY: N recordings of one project (plus N/50 of another, so the project
   condition is real), their people, analytics events and markers
   (bench/query/data.py, bench/query/load.py). `--reuse-db` uses the one a
   `--keep-db` run left.
2. For each filter of bench/query/filters.py, the first page of 50 and the count,
   through the ORM compiler (`recordings_matching`) and through the
   hand-written SQL, alternately, --repeat times each: p50, p95 and the ratios.
   First, once, the ORM's first page and count are checked against the
   hand-written ones: a difference is a bug in one of them, printed loudly.
3. The goal verdicts (first page p95 under 100 ms and within 2x of hand-written;
   count within 2x) and EXPLAIN (ANALYZE, BUFFERS) of the three slowest ORM queries.

Django runs in-process (DATABASE_URL points at the scratch database), so the ORM
side's times include compiling the document, as a request's would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.harness.corpus import ensure_repo_importable
from bench.harness.servers import (
    ADMIN_DSN,
    DB_NAME_PREFIX,
    DB_URL_TEMPLATE,
    base_env,
    log,
    manage,
    run_cleanly,
)
from bench.query.filters import PAGE_SIZE, Context, Filter, all_filters
from bench.query.load import Loader, LoadStats

DB_NAME = f"{DB_NAME_PREFIX}_query"
SEED = 13
PAGE_GOAL_MS = 100.0
RATIO_GOAL = 2.0
# A query this slow the first time is run 3 times, not --repeat.
SLOW_S = 3.0
SLOW_REPEAT = 3
STATEMENT_TIMEOUT = "120s"
META_TABLE = "bench_query_meta"


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - the report is the program's output


@dataclass(frozen=True, slots=True)
class Options:
    recordings: int
    repeat: int
    keep_db: bool
    reuse_db: bool
    only: str
    explain: int


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true", help="leave the database")
    parser.add_argument(
        "--reuse-db", action="store_true", help="use the database a --keep-db left"
    )
    parser.add_argument(
        "--only", default="", help="filters whose name has TEXT (comma: any of)"
    )
    parser.add_argument("--explain", type=int, default=3, help="plans to print")
    args = parser.parse_args()
    return Options(
        recordings=args.recordings,
        repeat=args.repeat,
        keep_db=args.keep_db or args.reuse_db,
        reuse_db=args.reuse_db,
        only=args.only,
        explain=args.explain,
    )


# --- the database -------------------------------------------------------------------


def _exists(name: str) -> bool:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        return conn.execute(query, [name]).fetchone() is not None


@contextmanager
def bench_database(opts: Options) -> Iterator[tuple[str, bool]]:
    """The database's URL and whether it is new; dropped afterwards unless kept."""
    reused = opts.reuse_db and _exists(DB_NAME)
    if not reused:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(DB_NAME)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
        log(f"created database {DB_NAME}")
    try:
        yield DB_URL_TEMPLATE.format(name=DB_NAME), not reused
    finally:
        if opts.keep_db:
            log(f"kept database {DB_NAME} (--reuse-db uses it again)")
        else:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(DB_NAME)))
            log(f"dropped database {DB_NAME}")


def setup_django(url: str) -> None:
    """Migrate the database (a subprocess, as deployments do), then Django here."""
    env = base_env() | {"DATABASE_URL": url}
    started = time.monotonic()
    manage(["migrate", "--noinput", "--verbosity", "0"], env)
    log(f"manage.py migrate: {time.monotonic() - started:.0f} s")
    ensure_repo_importable()
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replayhub.settings")
    import django

    django.setup()


def _meta_read(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [META_TABLE]
        ).fetchone()
        if not found or not found[0]:
            return {}
        rows = conn.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()
    return {key: value for key, value in rows}


def _meta_write(url: str, values: dict[str, str]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {META_TABLE} (key text PRIMARY KEY, value text)")
        for key, value in values.items():
            conn.execute(f"INSERT INTO {META_TABLE} VALUES (%s, %s)", [key, value])


def load_data(url: str, recordings: int) -> tuple[dict[str, str], LoadStats]:
    """Two projects and their data; what the measurements need to know."""
    from recordings.models import Project

    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0)
    big = Project.objects.create(name="a million", token="phc_bench_query_big")
    small = Project.objects.create(name="another", token="phc_bench_query_small")
    loader = Loader(url, SEED, int(anchor.timestamp() * 1000))
    stats = loader.load([(big.pk, recordings), (small.pk, max(10, recordings // 50))])
    meta = {
        "anchor": anchor.isoformat(),
        "project": str(big.pk),
        "recordings": str(recordings),
        "load_s": f"{stats.total_s:.0f}",
        "load": _load_line(stats),
    }
    _meta_write(url, meta)
    return meta, stats


def _load_line(stats: LoadStats) -> str:
    rows = stats.recordings + stats.markers + stats.events + stats.people
    return (
        f"{stats.recordings:,} recordings, {stats.markers:,} markers, "
        f"{stats.events:,} events, {stats.people:,} people in "
        f"{stats.total_s / 60:.1f} min (COPY {stats.copy_s:.0f} s at "
        f"{rows / stats.copy_s:,.0f} rows/s, indexes {stats.index_s:.0f} s, "
        f"VACUUM ANALYZE {stats.vacuum_s:.0f} s)"
    )


def context(meta: dict[str, str]) -> Context:
    """The measurements' now (the load's), project and support-queue ids."""
    from django.db import connection

    project = int(meta["project"])
    with connection.cursor() as cursor:
        # 12 identified people and 3 anonymous ones, some with many sessions.
        cursor.execute(
            "(SELECT distinct_id FROM recordings_person WHERE project_id = %s "
            "ORDER BY md5(distinct_id) LIMIT 12) UNION ALL "
            "(SELECT distinct_id FROM recordings_recording WHERE project_id = %s "
            "AND distinct_id NOT LIKE 'usr_%%' ORDER BY id LIMIT 3)",
            [project, project],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return Context(project, dt.datetime.fromisoformat(meta["anchor"]), ids)


# --- the two sides ------------------------------------------------------------------


def orm_queryset(document: dict[str, Any], ctx: Context) -> Any:
    """What the admin and the API run: the document parsed, then compiled."""
    from recordings.models import Recording
    from recordings.search.compiler import recordings_matching
    from recordings.search.language import parse_document

    parsed = parse_document(document)  # raises FilterInvalid: the API's 400
    scoped: Any = Recording.objects.filter(project_id=ctx.project_id)
    return recordings_matching(scoped, parsed, user=None, now=ctx.now)


def orm_page(document: dict[str, Any], ctx: Context) -> list[int]:
    """The admin list's first page: the recordings, built as model objects,
    without the columns no list shows (RecordingQuerySet.for_list)."""
    return [r.pk for r in orm_queryset(document, ctx).for_list()[:PAGE_SIZE]]


def orm_count(document: dict[str, Any], ctx: Context) -> int:
    return int(orm_queryset(document, ctx).count())


def orm_sql(document: dict[str, Any], ctx: Context, side: str) -> str:
    """The SQL the ORM sends for `side` ("orm page" or "orm count")."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        try:
            if side == "orm page":
                orm_page(document, ctx)
            else:
                orm_count(document, ctx)
        except Exception:  # noqa: BLE001 - measure() reports it
            return "SELECT 1"
    return str(captured.captured_queries[-1]["sql"])


def raw_rows(statement: str) -> list[Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement)
        return list(cursor.fetchall())


def hand_page(f: Filter, ctx: Context) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f.page_sql(), f.all_params(ctx))
        return [row[0] for row in cursor.fetchall()]


def hand_count(f: Filter, ctx: Context) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f.count_sql(), f.all_params(ctx))
        row = cursor.fetchone()
        return int(row[0]) if row else 0


# --- measuring ----------------------------------------------------------------------

SIDES = ("orm page", "orm page sql", "hand page", "orm count", "hand count")


@dataclass(slots=True)
class Result:
    filter: Filter
    times: dict[str, list[float]] = field(default_factory=dict)
    matches: int = -1
    problems: list[str] = field(default_factory=list)

    def p(self, side: str, q: float) -> float:
        """The q-quantile (nearest rank) of `side`'s times, in ms."""
        samples = sorted(self.times.get(side, []))
        if not samples:
            return math.nan
        return 1000 * samples[max(0, math.ceil(q * len(samples)) - 1)]


def _timed(work: Callable[[], object]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


def measure(f: Filter, ctx: Context, repeat: int) -> Result:
    """Check once, then run the four queries in turn `repeat` times."""
    result = Result(f)
    page_sql = orm_sql(f.document, ctx, "orm page")
    work: dict[str, Callable[[], object]] = {
        "orm page": lambda: orm_page(f.document, ctx),
        # The ORM's own SQL run alone: its plan's cost without Django's.
        "orm page sql": lambda: raw_rows(page_sql),
        "hand page": lambda: hand_page(f, ctx),
        "orm count": lambda: orm_count(f.document, ctx),
        "hand count": lambda: hand_count(f, ctx),
    }
    first: dict[str, Any] = {}
    for side in SIDES:
        try:
            elapsed, first[side] = _timed(work[side])
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            result.problems.append(f"{side} failed: {type(exc).__name__}: {exc}")
            _reset_connection()
            continue
        result.times[side] = [elapsed]
    result.problems += _compare(first)
    result.matches = first.get("hand count", -1)
    runs = {s: repeat - 1 for s in result.times}
    for side, samples in result.times.items():
        if samples[0] > SLOW_S:
            runs[side] = SLOW_REPEAT - 1
    for i in range(max(runs.values(), default=0)):
        for side in SIDES:
            if side in runs and i < runs[side]:
                result.times[side].append(_timed(work[side])[0])
    return result


def _compare(first: dict[str, Any]) -> list[str]:
    problems = []
    if "orm page" in first and "hand page" in first:
        orm, hand = first["orm page"], first["hand page"]
        if orm != hand:
            how = "same rows, other order" if set(orm) == set(hand) else "other rows"
            problems.append(
                f"MISMATCH first page ({how}): ORM {orm[:5]}... "
                f"({len(orm)}) vs hand-written {hand[:5]}... ({len(hand)})"
            )
    counts = first.get("orm count"), first.get("hand count")
    if None not in counts and counts[0] != counts[1]:
        problems.append(
            f"MISMATCH count: ORM {counts[0]:,} vs hand-written {counts[1]:,}"
        )
    return problems


def _reset_connection() -> None:
    from django.db import connection

    connection.close()
    _configure_connection()


def _configure_connection() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")


# --- the report ---------------------------------------------------------------------


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _ratio(a: float, b: float) -> str:
    return "–" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.1f}x"


def table(results: list[Result]) -> list[str]:
    lines = [
        "| filter | matches | page p50 | page p95 | its SQL p95 | hand page p95 "
        "| page ratio (SQL) | count p50 | count p95 | hand count p95 | count ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        page, hpage = r.p("orm page", 0.95), r.p("hand page", 0.95)
        sql_page = r.p("orm page sql", 0.95)
        count, hcount = r.p("orm count", 0.95), r.p("hand count", 0.95)
        runs = len(r.times.get("orm count", []))
        note = f" (n={runs})" if runs and runs < 10 else ""
        lines.append(
            f"| {r.filter.name} | {r.matches:,} | {_ms(r.p('orm page', 0.5))} "
            f"| {_ms(page)} | {_ms(sql_page)} | {_ms(hpage)} "
            f"| {_ratio(page, hpage)} ({_ratio(sql_page, hpage)}) "
            f"| {_ms(r.p('orm count', 0.5))} | {_ms(count)}{note} | {_ms(hcount)} "
            f"| {_ratio(count, hcount)} |"
        )
    return lines


def verdicts(results: list[Result]) -> list[str]:
    """The goal, filter by filter: which of the three conditions fail."""
    lines, failed = [], 0
    for r in results:
        page, hpage = r.p("orm page", 0.95), r.p("hand page", 0.95)
        count, hcount = r.p("orm count", 0.95), r.p("hand count", 0.95)
        misses = []
        if not page < PAGE_GOAL_MS:
            misses.append(f"first page p95 {_ms(page)} ms >= {PAGE_GOAL_MS:.0f} ms")
        if not page <= RATIO_GOAL * hpage:
            misses.append(_page_ratio_miss(r))
        if not count <= RATIO_GOAL * hcount:
            misses.append(f"count {_ratio(count, hcount)} of hand-written")
        misses += r.problems
        failed += bool(misses)
        verdict = "MISSED: " + "; ".join(misses) if misses else "met"
        lines.append(f"- {r.filter.name}: {verdict}")
    lines.append(
        f"\n{len(results) - failed} of {len(results)} filters meet the goal "
        f"(first page p95 < {PAGE_GOAL_MS:.0f} ms and <= {RATIO_GOAL:.0f}x "
        f"hand-written; count <= {RATIO_GOAL:.0f}x hand-written)."
    )
    return lines


def _page_ratio_miss(r: Result) -> str:
    """Whose the time is: the query's, or Django's around a query as fast."""
    page, hpage = r.p("orm page", 0.95), r.p("hand page", 0.95)
    sql_page = r.p("orm page sql", 0.95)
    text = f"first page {_ratio(page, hpage)} of hand-written"
    if sql_page <= RATIO_GOAL * hpage:
        return (
            f"{text} (its SQL alone {_ratio(sql_page, hpage)}: the rest is "
            f"Django's {_ms(page - sql_page)} ms, compiling and making 50 models)"
        )
    return f"{text} (its SQL alone {_ratio(sql_page, hpage)})"


def slowest(results: list[Result], n: int) -> list[tuple[Result, str, float]]:
    """The `n` slowest ORM queries by p95: (result, side, p95 ms)."""
    found = [
        (r, side, r.p(side, 0.95))
        for r in results
        for side in ("orm page", "orm count")
        if not math.isnan(r.p(side, 0.95))
    ]
    return sorted(found, key=lambda item: -item[2])[:n]


def orm_plan(r: Result, side: str, ctx: Context) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL the ORM sent for `side`."""
    from django.db import connection

    statement = orm_sql(r.filter.document, ctx, side)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return f"{statement}\n\n{plan}"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = str(cursor.fetchone()[0]).split(" on ")[0]
        settings = []
        for name in ("shared_buffers", "work_mem", "jit", "random_page_cost"):
            cursor.execute(f"SHOW {name}")
            settings.append(f"{name} {cursor.fetchone()[0]}")
    return (
        f"{os.cpu_count()} cores ({cpu}, shared with other work), "
        f"Python {platform.python_version()}, {version} ({', '.join(settings)})"
    )


# --- main ---------------------------------------------------------------------------


def run(opts: Options) -> None:
    with bench_database(opts) as (url, fresh):
        setup_django(url)
        meta = {} if fresh else _meta_read(url)
        if not meta:
            log(f"loading {opts.recordings:,} recordings")
            meta, _ = load_data(url, opts.recordings)
        say(f"data: {meta['load']}")
        _configure_connection()
        ctx = context(meta)
        wanted = [part.strip().lower() for part in opts.only.split(",")]
        filters = [
            f for f in all_filters(ctx) if any(w in f.name.lower() for w in wanted)
        ]
        results = []
        for f in filters:
            log(f"measuring: {f.name}")
            results.append(measure(f, ctx, opts.repeat))
            for problem in results[-1].problems:
                say(f"!!! {f.name}: {problem}")
        report(results, ctx, opts)


def report(results: list[Result], ctx: Context, opts: Options) -> None:
    say()
    say("== filters: first page of 50 and count, ORM against hand-written (ms) ==")
    say(f"machine: {machine()}")
    say(f"repeat: {opts.repeat} (queries slower than {SLOW_S:.0f} s: {SLOW_REPEAT})")
    say()
    for line in table(results):
        say(line)
    say()
    for line in verdicts(results):
        say(line)
    for r, side, p95 in slowest(results, opts.explain):
        say()
        say(f"== plan: {r.filter.name}, {side} (p95 {_ms(p95)} ms) ==")
        say(orm_plan(r, side, ctx))


def main() -> int:
    opts = parse_args()
    return run_cleanly(lambda: run(opts))


if __name__ == "__main__":
    raise SystemExit(main())
