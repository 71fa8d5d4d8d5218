"""What one capture request costs per decompressed MB, shape by shape.

Issue 10 found request shapes where a small body bought seconds of a worker: many
`$snapshot`s of one session, many sessions, a huge FullSnapshot, many `$identify`
events. This posts each shape through the whole request path in-process (Django's
test client: middleware, DRF, parsing, firewall, database, blobs) and divides the
wall time by the request's fully decompressed size (outer gzip and posthog's `cv`
fields, what REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES bounds). The yardstick is the
same figures for real posthog-js traffic, measured in the same run from the
72-second main session (shared/fixtures), with fresh ids: per request, its 18 `/s/`
bodies and 30 analytics bodies as sent (small, so the fixed cost of a request, a
blob fsync and a commit, dominates); per MB, its real content in bulk (its rrweb
events 80 times in one `$snapshot`, its analytics events 16 times in one body).

    .venv/bin/python -m bench.ingest.capture_cost          # PostgreSQL scratch db
    .venv/bin/python -m bench.ingest.capture_cost --sqlite --repeat 1
    .venv/bin/python -m bench.ingest.capture_cost \
        --shapes s-snapshots-2000,e-identify-2000

PostgreSQL on 127.0.0.1:5432 (user postgres, trust) as for bench/ingest/throughput.py;
the database `replayhub_bench_cost` is created and dropped. Blobs go to a temp dir.
Only this process's time is measured (the database server's CPU is not counted,
its round trips are).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from bench.harness.corpus import (
    FULL_SESSION,
    WIRE_GZIP_LEVEL,
    ensure_repo_importable,
    generate_bodies,
    load_templates,
    main_session_events,
)

TOKEN = "phc_bench_capture_cost"
DB_NAME = "replayhub_bench_cost"
# Inflating for the size figure only; the server applies its own bound.
_MEASURE_LIMIT = 1 << 34
T0 = 1_790_000_000_000


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    body: bytes  # as sent (gzip)


# --- shapes -------------------------------------------------------------------------


def _gzip(value: Any) -> bytes:
    return gzip.compress(orjson.dumps(value), WIRE_GZIP_LEVEL, mtime=0)


def _snapshot(session: str, window: str, events: list[Any]) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "event": "$snapshot",
        "properties": {
            "$snapshot_data": events,
            "$session_id": session,
            "$window_id": window,
            "token": TOKEN,
            "distinct_id": "bench-person",
            "$lib": "web",
            "$lib_version": "1.449.2",
        },
    }


def _mouse_move(i: int) -> dict[str, Any]:
    positions = [{"x": i % 800, "y": i % 600, "id": 5, "timeOffset": 0}]
    return {
        "type": 3,
        "timestamp": T0 + i,
        "data": {"source": 1, "positions": positions},
    }


def _element(node_id: int, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": 2,
        "id": node_id,
        "tagName": "div",
        "attributes": attributes,
        "childNodes": [],
    }


def _page(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = {
        "type": 2,
        "id": 3,
        "tagName": "body",
        "attributes": {},
        "childNodes": nodes,
    }
    html = {
        "type": 2,
        "id": 2,
        "tagName": "html",
        "attributes": {},
        "childNodes": [body],
    }
    snapshot = {
        "node": {"type": 0, "id": 1, "childNodes": [html]},
        "initialOffset": {"left": 0, "top": 0},
    }
    meta = {
        "type": 4,
        "timestamp": T0,
        "data": {"href": "https://shop.test/", "width": 1},
    }
    return [meta, {"type": 2, "timestamp": T0 + 1, "data": snapshot}]


def snapshots(count: int) -> Callable[[], list[Request]]:
    """`count` one-event $snapshots of one session and window in one body."""

    def make() -> list[Request]:
        session = str(uuid.uuid4())
        items = [_snapshot(session, "w", [_mouse_move(i)]) for i in range(count)]
        return [Request("/s/", _gzip(items))]

    return make


def sessions(count: int) -> Callable[[], list[Request]]:
    """`count` sessions of one one-event $snapshot each in one body."""

    def make() -> list[Request]:
        items = [
            _snapshot(str(uuid.uuid4()), "w", [_mouse_move(i)]) for i in range(count)
        ]
        return [Request("/s/", _gzip(items))]

    return make


def full_snapshot(nodes: int) -> Callable[[], list[Request]]:
    """One FullSnapshot of `nodes` empty sibling elements."""

    def make() -> list[Request]:
        page = _page([_element(10 + i, {}) for i in range(nodes)])
        return [Request("/s/", _gzip([_snapshot(str(uuid.uuid4()), "w", page)]))]

    return make


def masked_page_then_snapshots(nodes: int, count: int) -> Callable[[], list[Request]]:
    """A page of `nodes` masked elements (a big scrub state), then `count`
    one-event $snapshots of the same window, all in one body."""

    def make() -> list[Request]:
        session = str(uuid.uuid4())
        page = _page([_element(10 + i, {"class": "ph-mask"}) for i in range(nodes)])
        items = [_snapshot(session, "w", page)]
        items += [_snapshot(session, "w", [_mouse_move(i)]) for i in range(count)]
        return [Request("/s/", _gzip(items))]

    return make


def tiny_events(count: int) -> Callable[[], list[Request]]:
    """One $snapshot of `count` mouse-move events."""

    def make() -> list[Request]:
        events = [_mouse_move(i) for i in range(count)]
        return [Request("/s/", _gzip([_snapshot(str(uuid.uuid4()), "w", events)]))]

    return make


def big_string(mib: int) -> Callable[[], list[Request]]:
    """One text node holding a `mib` MiB string (highly compressible)."""

    def make() -> list[Request]:
        text = {
            "type": 3,
            "id": 10,
            "textContent": "lorem ipsum " * ((mib << 20) // 12),
        }
        page = _page([{**_element(9, {}), "childNodes": [text]}])
        return [Request("/s/", _gzip([_snapshot(str(uuid.uuid4()), "w", page)]))]

    return make


def identify(count: int, people: int) -> Callable[[], list[Request]]:
    """`count` $identify events (with $set) of `people` distinct ids in one body."""

    def make() -> list[Request]:
        run = uuid.uuid4().hex[:8]
        batch = [
            {
                "uuid": str(uuid.uuid4()),
                "event": "$identify",
                "timestamp": "2026-11-22T09:44:18.594Z",
                "properties": {
                    "distinct_id": f"user-{run}-{i % people}",
                    "$anon_distinct_id": f"anon-{run}-{i}",
                    "$session_id": "bench-session",
                },
                "$set": {"email": f"u{i}@shop.test", "plan": "pro"},
            }
            for i in range(count)
        ]
        return [Request("/i/v0/e/", _gzip({"api_key": TOKEN, "batch": batch}))]

    return make


def real_snapshots() -> list[Request]:
    """The main session's 18 real /s/ bodies, moved to a fresh session."""
    templates = load_templates()[:18]  # the main session's, in arrival order
    bodies = generate_bodies(templates, count=18, sessions=1, token=TOKEN)
    return [Request("/s/", body) for body in bodies]


def _real_analytics() -> Iterator[tuple[str, dict[str, Any]]]:
    for line in (FULL_SESSION / "requests.jsonl").read_text().splitlines():
        row = orjson.loads(line)
        if row["path"] in ("/e/", "/i/v0/e/") and row.get("body_file"):
            body = (FULL_SESSION / row["body_file"]).read_bytes()
            yield row["path"], orjson.loads(gzip.decompress(body))


def _fresh(payload: dict[str, Any]) -> dict[str, Any]:
    batch = [
        {
            **e,
            "uuid": str(uuid.uuid4()),
            "properties": {**e["properties"], "token": TOKEN},
        }
        for e in payload["batch"]
    ]
    return {**payload, "api_key": TOKEN, "batch": batch}


def real_events() -> list[Request]:
    """The main session's 30 real analytics bodies, with fresh uuids, our token."""
    return [Request(path, _gzip(_fresh(p))) for path, p in _real_analytics()]


def real_session_large(copies: int) -> Callable[[], list[Request]]:
    """Real content in bulk: the main session's 356 rrweb events (cv expanded: a
    Meta, a FullSnapshot, mutations, input, mouse, console), `copies` times over
    in one $snapshot, as if the page were reloaded that often. Per MB, this is
    what real recording content costs once the per-request overhead is spread."""

    def make() -> list[Request]:
        events = main_session_events()
        span = events[-1]["timestamp"] - events[0]["timestamp"] + 1
        batch = [
            {**event, "timestamp": event["timestamp"] + copy * span}
            for copy in range(copies)
            for event in events
        ]
        return [Request("/s/", _gzip([_snapshot(str(uuid.uuid4()), "w", batch)]))]

    return make


def real_events_large(copies: int) -> Callable[[], list[Request]]:
    """The main session's 60 real analytics events, `copies` times, in one body."""

    def make() -> list[Request]:
        batch = [e for _, p in _real_analytics() for e in p["batch"]] * copies
        return [Request("/i/v0/e/", _gzip(_fresh({"batch": batch})))]

    return make


SHAPES: dict[str, Callable[[], list[Request]]] = {
    "s-real-session": real_snapshots,
    "s-real-x80": real_session_large(80),
    "e-real-session": real_events,
    "e-real-x16": real_events_large(16),
    "s-snapshots-2000": snapshots(2000),
    "s-snapshots-100": snapshots(100),
    "s-sessions-1000": sessions(1000),
    "s-sessions-10": sessions(10),
    "s-fullsnapshot-150k": full_snapshot(150_000),
    "s-fullsnapshot-120k": full_snapshot(120_000),
    "s-masked-page-50k+99": masked_page_then_snapshots(50_000, 99),
    "s-mouse-moves-80k": tiny_events(80_000),
    "s-string-16MiB": big_string(16),
    "e-identify-2000": identify(2000, 2000),
    "e-identify-1000": identify(1000, 1000),
    "e-identify-1000-1-person": identify(1000, 1),
}
# Per MB, against real content in bulk; per request, real requests as sent.
BASELINES = {"/s/": "s-real-x80", "/i/v0/e/": "e-real-x16"}
PER_REQUEST = {"/s/": "s-real-session", "/i/v0/e/": "e-real-session"}


# --- measuring ----------------------------------------------------------------------


def decompressed_bytes(request: Request) -> int:
    """What the request inflates to: the body, and for /s/ every `cv` field too."""
    from recordings.ingest.parse import Budget, decode_body, parse_snapshot_request

    budget = Budget(_MEASURE_LIMIT)
    payload = decode_body(request.body, max_decompressed=budget)
    if request.path == "/s/":
        parse_snapshot_request(payload, max_decompressed=budget)
    return budget.used


@dataclass
class Result:
    shape: str
    requests: int
    statuses: set[int]
    wire: int
    inflated: int
    seconds: list[float]  # one figure per repetition: all its requests

    @property
    def ms_per_request(self) -> float:
        return statistics.median(self.seconds) * 1000 / self.requests

    @property
    def ms_per_mb(self) -> float:
        return statistics.median(self.seconds) * 1000 / (self.inflated / 1e6)


def measure(shape: str, repeat: int) -> Result:
    from django.test import Client

    client = Client()
    seconds: list[float] = []
    statuses: set[int] = set()
    wire = inflated = count = 0
    for _ in range(repeat):
        requests = SHAPES[shape]()
        count = len(requests)
        wire = sum(len(r.body) for r in requests)
        inflated = sum(decompressed_bytes(r) for r in requests)
        started = time.perf_counter()
        for request in requests:
            response = client.post(
                request.path, data=request.body, content_type="text/plain"
            )
            statuses.add(response.status_code)
        seconds.append(time.perf_counter() - started)
    return Result(shape, count, statuses, wire, inflated, seconds)


def report(results: list[Result]) -> None:
    by_name = {result.shape: result for result in results}
    say(
        f"{'shape':<26}{'req':>4}{'status':>8}{'wire KB':>9}{'inflated MB':>12}"
        f"{'ms/req':>9}{'x real':>7}{'ms/MB':>9}{'x real':>7}"
    )
    for result in results:
        path = "/s/" if result.shape.startswith("s-") else "/i/v0/e/"
        per_mb = by_name[BASELINES[path]].ms_per_mb
        per_request = by_name[PER_REQUEST[path]].ms_per_request
        status = ",".join(str(s) for s in sorted(result.statuses))
        say(
            f"{result.shape:<26}{result.requests:>4}{status:>8}"
            f"{result.wire / 1024:>9.1f}{result.inflated / 1e6:>12.2f}"
            f"{result.ms_per_request:>9.1f}{result.ms_per_request / per_request:>7.1f}"
            f"{result.ms_per_mb:>9.1f}{result.ms_per_mb / per_mb:>7.1f}"
        )


# --- setup --------------------------------------------------------------------------


@contextmanager
def database(sqlite: bool) -> Iterator[None]:
    if sqlite:
        os.environ.pop("DATABASE_URL", None)
        yield
        return
    from bench.harness.servers import scratch_database

    with scratch_database(DB_NAME) as url:
        os.environ["DATABASE_URL"] = url
        yield
        from django.db import connections

        connections.close_all()  # before the database is dropped


def setup_django() -> None:
    ensure_repo_importable()
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ["DJANGO_SETTINGS_MODULE"] = "replayhub.settings"
    os.environ["REPLAYHUB_INGEST_RATE_PER_MINUTE"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    for name in ("REDIS_URL", "REPLAYHUB_S3_BUCKET", "DEBUG"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from recordings.models import Project

    Project.objects.get_or_create(token=TOKEN, defaults={"name": "capture cost"})


def run(shapes: list[str], repeat: int, sqlite: bool) -> None:
    with ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="rh-cost-"))
        os.environ["REPLAYHUB_DATA_DIR"] = data_dir
        stack.enter_context(database(sqlite))
        setup_django()
        from django.db import connection

        say(f"[bench] {connection.vendor}, {repeat} repetition(s) per shape")
        measure("s-real-session", 1)  # warm up imports, caches, the first session
        results = []
        for shape in shapes:
            results.append(measure(shape, repeat))
            say(f"[bench] {shape}: {results[-1].ms_per_request:.1f} ms/request")
        report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="a temp SQLite file")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated")
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    for baseline in [*BASELINES.values(), *PER_REQUEST.values()]:
        if baseline not in shapes:
            shapes.insert(0, baseline)
    from bench.harness.servers import run_cleanly

    raise SystemExit(run_cleanly(lambda: run(shapes, args.repeat, args.sqlite)))


if __name__ == "__main__":
    main()
