"""A web worker's resident memory under sustained hostile capture load.

Issue 24 (item 14): each capture request is bounded, but a worker did not give its
memory back: 12 sequential 60 KB gzip requests took a fresh gunicorn worker to
643 MiB. This starts the Procfile's gunicorn with one worker (its 4 threads) and
sends, with the project's public token, gzip bodies of 30-120 KB that inflate to
just under REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES, in turn:

* `/s/` and `/api/v1/ingest/rrweb/`: one page holding one string of the bound
  less 4 MiB (stored, 200);
* `/s/`: a DOM of nodes of 8 JSON values each, just under the values bound (one
  value per 64 bytes of the bound): the shape that grows most when parsed (200);
* `/i/v0/e/`: analytics events of 900 KB, under the 1 MiB event cap (200);
* `/e/`: one event of one such string: parsed whole, then refused (413).

It follows the worker's resident size (RSS, psutil):

* idle: the worker after one small warm-up request;
* per-request bound: the peak growth (VmHWM, reset before it) of one request of
  each shape in a fresh worker; the largest is the bound;
* sequential: N requests one after the other, RSS after each;
* concurrent: rounds of 8 requests at once (the worker's 4 threads busy), RSS
  after each round;
* the peak, sampled every 20 ms while the requests run.

The goal: after the requests the worker stays under its idle size plus twice the
per-request bound. Results and the causes found: docs/benchmarks/memory.md.

    .venv/bin/python -m bench.ingest.worker_memory     # PostgreSQL, 200 + 200
    .venv/bin/python -m bench.ingest.worker_memory --sqlite --requests 40 \
        --concurrent 16
    .venv/bin/python -m bench.ingest.worker_memory --bound 32 --per-request 64 -v
    .venv/bin/python -m bench.ingest.worker_memory --env MALLOC_ARENA_MAX=2

`--bound` sets REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES (MiB), `--per-request`
gives the bound instead of measuring it, `--env` adds to the server's environment,
`--logs DIR` keeps gunicorn's logs, `-v` prints RSS after every request or round.
PostgreSQL on 127.0.0.1:5432 (user postgres, trust) as for bench/ingest/throughput.py;
the database `replayhub_bench_memory` is created and dropped. Blobs go to a temp dir.
A full run takes 5-20 minutes (each request inflates 60 MiB).
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.harness.servers import (
    base_env,
    free_port,
    gunicorn,
    prepare_replayhub,
    procfile_web_command,
    run_cleanly,
    scratch_database,
)

TOKEN = "phc_bench_worker_memory"
DB_NAME = "replayhub_bench_memory"
MIB = 1024 * 1024
T0 = 1_790_000_000_000


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201


# --- hostile bodies -----------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _page(text: str) -> list[dict[str, Any]]:
    meta = {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/"}}
    node = {
        "type": 2,
        "id": 2,
        "tagName": "p",
        "attributes": {},
        "childNodes": [{"type": 3, "id": 3, "textContent": text}],
    }
    full = {
        "type": 2,
        "timestamp": T0 + 1,
        "data": {"node": {"type": 0, "id": 1, "childNodes": [node]}},
    }
    return [meta, full]


def _snapshot(session: str, events: Any) -> list[dict[str, Any]]:
    props = {
        "$session_id": session,
        "$window_id": "w",
        "token": TOKEN,
        "distinct_id": "hostile",
        "$snapshot_data": events,
    }
    return [{"uuid": session + "-1", "event": "$snapshot", "properties": props}]


def _rrweb(session: str, events: Any) -> dict[str, Any]:
    return {
        "token": TOKEN,
        "session_id": session,
        "window_id": "w",
        "batch_id": session + "-1",
        "events": events,
    }


def _analytics(texts: list[str]) -> dict[str, Any]:
    batch = [
        {
            "uuid": f"e{i}",
            "event": "big",
            "properties": {"distinct_id": "hostile", "$session_id": "s", "text": t},
        }
        for i, t in enumerate(texts)
    ]
    return {"api_key": TOKEN, "batch": batch}


def _streamed(template: bytes, runs: list[tuple[bytes, int]]) -> bytes:
    """Gzip `template` with its k-th "@@" replaced by `runs[k]` (a piece repeated
    so many times), streaming: the inflated body is never held here."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = []
    pieces = [*runs, (b"", 0)]
    for head, (piece, times) in zip(template.split(b"@@"), pieces, strict=True):
        parts.append(compressor.compress(head))
        parts.extend(compressor.compress(piece) for _ in range(times))
    parts.append(compressor.flush())
    return b"".join(parts)


def _text(nbytes: int) -> tuple[bytes, int]:
    piece = b"lorem ipsum " * (65536 // 12)
    return piece, nbytes // len(piece)


_NODE = b'{"type":2,"id":7,"tagName":"div","attributes":{"class":"c"},"childNodes":[]}'


@dataclass(frozen=True, slots=True)
class Hostile:
    name: str
    path: str
    body: bytes


def hostile_bodies(bound: int, session: str) -> list[Hostile]:
    """One body per shape, each inflating to just under `bound` bytes (or, for the
    DOM, to just under its JSON values bound): the most one request may ask."""
    string = bound - 4 * MIB  # room for the rest of the body
    nodes = bound // 64 // 8 - 16  # 8 JSON values a node; one value per 64 bytes
    dom = {"type": 2, "timestamp": T0 + 1, "data": {"node": {"childNodes": ["@@"]}}}
    dom_template = _dumps(_snapshot(session + "-n", [dom])).replace(
        b'"@@"', b"@@" + _NODE
    )
    events = string // 900_000
    return [
        Hostile(
            "s-string",
            "/s/",
            _streamed(_dumps(_snapshot(session, _page("@@"))), [_text(string)]),
        ),
        Hostile("s-nodes", "/s/", _streamed(dom_template, [(_NODE + b",", nodes - 1)])),
        Hostile(
            "rrweb-string",
            "/api/v1/ingest/rrweb/",
            _streamed(_dumps(_rrweb(session + "-r", _page("@@"))), [_text(string)]),
        ),
        Hostile(
            "e-events",
            "/i/v0/e/",
            _streamed(_dumps(_analytics(["@@"] * events)), [_text(900_000)] * events),
        ),
        Hostile(
            "e-string", "/e/", _streamed(_dumps(_analytics(["@@"])), [_text(string)])
        ),
    ]


def warm_body() -> bytes:
    return _streamed(_dumps(_snapshot("warm", _page("@@"))), [_text(1 << 17)])


# --- measuring ----------------------------------------------------------------------


def worker_of(master: int) -> psutil.Process:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = psutil.Process(master).children()
        if children:
            return children[0]
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def rss(worker: psutil.Process) -> int:
    return int(worker.memory_info().rss)


def status_bytes(worker: psutil.Process, name: str) -> int:
    for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


def reset_peak(worker: psutil.Process) -> None:
    Path(f"/proc/{worker.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def post(port: int, path: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Sampler:
    """RSS every `interval` seconds in a thread, for the peak between requests."""

    worker: psutil.Process
    interval: float = 0.02
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.worker))
            time.sleep(self.interval)


@dataclass
class Run:
    label: str
    statuses: dict[int, int] = field(default_factory=dict)
    after: list[int] = field(default_factory=list)  # RSS after each request/round
    peak: int = 0
    seconds: float = 0.0

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def sequential(
    port: int, worker: psutil.Process, bodies: list[Hostile], n: int, verbose: bool
) -> Run:
    run = Run("sequential")
    started = time.monotonic()
    with Sampler(worker).running() as sampler:
        for i in range(n):
            hostile = bodies[i % len(bodies)]
            run.count(post(port, hostile.path, hostile.body))
            run.after.append(rss(worker))
            if verbose:
                say(f"  {i + 1:>4} {hostile.name:<14} {run.after[-1] / MIB:7.1f} MiB")
    run.peak = sampler.peak
    run.seconds = time.monotonic() - started
    return run


def concurrent(
    port: int,
    worker: psutil.Process,
    bodies: list[Hostile],
    n: int,
    width: int,
    verbose: bool,
) -> Run:
    run = Run(f"concurrent ({width} at once)")
    started = time.monotonic()
    with (
        Sampler(worker).running() as sampler,
        ThreadPoolExecutor(width) as pool,
    ):
        for first in range(0, n, width):
            last = min(n, first + width)
            picks = [bodies[i % len(bodies)] for i in range(first, last)]
            for status in pool.map(lambda h: post(port, h.path, h.body), picks):
                run.count(status)
            run.after.append(rss(worker))
            if verbose:
                say(f"  round {first // width + 1:>3} {run.after[-1] / MIB:7.1f} MiB")
    run.peak = sampler.peak
    run.seconds = time.monotonic() - started
    return run


# --- setup --------------------------------------------------------------------------


@contextmanager
def database(sqlite: bool, data_dir: str) -> Iterator[str]:
    if sqlite:
        yield f"sqlite:///{data_dir}/replayhub.sqlite3"
        return
    with scratch_database(DB_NAME) as url:
        yield url


def server_env(data_dir: str, url: str, port: int, extra: list[str]) -> dict[str, str]:
    env = base_env()
    env.update(
        DATABASE_URL=url,
        REPLAYHUB_DATA_DIR=data_dir,
        REPLAYHUB_BIND=f"127.0.0.1:{port}",
        REPLAYHUB_WEB_WORKERS="1",
        REPLAYHUB_INGEST_RATE_PER_MINUTE="0",
        ALLOWED_HOSTS="127.0.0.1",
    )
    for assignment in extra:
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


@contextmanager
def fresh_worker(
    stack_dir: str, env: dict[str, str], port: int, name: str
) -> Iterator[psutil.Process]:
    command = procfile_web_command(env)
    log_path = Path(stack_dir) / f"{name}.log"
    with gunicorn(name, command, env, port, log_path) as server:
        worker = worker_of(server.pid)
        status = post(port, "/s/", warm_body())
        if status != 200:
            raise RuntimeError(f"the warm-up request answered {status}")
        time.sleep(0.5)
        yield worker


def per_request_bound(
    tmp: str, env: dict[str, str], port: int, bodies: list[Hostile]
) -> dict[str, int]:
    """Peak growth of one request of each shape, in a fresh worker each."""
    growth: dict[str, int] = {}
    for hostile in bodies:
        with fresh_worker(tmp, env, port, f"bound-{hostile.name}") as worker:
            before = rss(worker)
            reset_peak(worker)
            status = post(port, hostile.path, hostile.body)
            growth[hostile.name] = status_bytes(worker, "VmHWM") - before
            say(
                f"  {hostile.name:<14} {hostile.path:<22} {status} "
                f"wire {len(hostile.body) / 1024:6.1f} KB  "
                f"peak growth {growth[hostile.name] / MIB:6.1f} MiB"
            )
    return growth


def report(idle: int, bound: int, runs: list[Run]) -> None:
    goal = idle + 2 * bound
    say(
        f"idle {idle / MIB:.1f} MiB, per-request bound {bound / MIB:.1f} MiB: "
        f"goal, RSS after the requests under {goal / MIB:.1f} MiB"
    )
    say(
        f"{'run':<24}{'answers':>16}{'time':>7}{'max after':>11}{'final':>9}"
        f"{'/ goal':>8}{'peak':>9}"
    )
    for run in runs:
        answers = ", ".join(f"{k}×{v}" for k, v in sorted(run.statuses.items()))
        worst = max(run.after)
        say(
            f"{run.label:<24}{answers:>16}{run.seconds:>6.0f}s"
            f"{worst / MIB:>11.1f}{run.after[-1] / MIB:>9.1f}"
            f"{worst / goal:>8.2f}{run.peak / MIB:>9.1f}  "
            f"{'meets' if worst < goal else 'MISSES'} the goal"
        )
    say("(MiB; max after: the most RSS after a request or a round; peak: sampled")
    say(" every 20 ms while they ran, when 4 threads may each hold one request)")


def run(args: argparse.Namespace) -> None:
    bound = args.bound * MIB
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rh-mem-"))
        url = stack.enter_context(database(args.sqlite, tmp))
        port = free_port()
        env = server_env(tmp, url, port, args.env)
        logs = args.logs or tmp
        env["REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES"] = str(bound)
        prepare_replayhub(env, TOKEN)
        bodies = hostile_bodies(bound, "hostile")
        if args.shapes:
            bodies = [b for b in bodies if b.name in args.shapes.split(",")]
        say(f"[bench] {'SQLite' if args.sqlite else 'PostgreSQL'}; env {args.env}")
        if args.per_request:
            per_request = args.per_request * MIB
        else:
            say("per-request peak growth, a fresh worker per shape:")
            per_request = max(per_request_bound(logs, env, port, bodies).values())
        runs: list[Run] = []
        with fresh_worker(logs, env, port, "load") as worker:
            idle = rss(worker)
            say(f"idle worker {idle / MIB:.1f} MiB")
            if args.requests:
                runs.append(
                    sequential(port, worker, bodies, args.requests, args.verbose)
                )
            if args.concurrent:
                runs.append(
                    concurrent(
                        port, worker, bodies, args.concurrent, args.width, args.verbose
                    )
                )
        report(idle, per_request, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a temp SQLite file")
    parser.add_argument("--requests", type=int, default=200, help="sequential")
    parser.add_argument("--concurrent", type=int, default=200, help="in rounds")
    parser.add_argument("--width", type=int, default=8, help="requests a round")
    parser.add_argument("--bound", type=int, default=64, help="decompressed MiB")
    parser.add_argument("--shapes", default="", help="comma-separated names")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument(
        "--per-request", type=int, default=0, help="MiB; given, not measured"
    )
    parser.add_argument("--logs", default="", help="keep gunicorn's logs here")
    args = parser.parse_args()
    raise SystemExit(run_cleanly(lambda: run(args)))


if __name__ == "__main__":
    main()
