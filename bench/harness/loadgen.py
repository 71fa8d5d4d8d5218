"""A closed-loop load generator: N keep-alive clients posting prepared bodies.

Each client thread holds one HTTP/1.1 connection and posts the next unsent body as
soon as its previous answer arrives. A run ends when its time is up or every body
was sent once (no body is sent twice, so ReplayHub never sees a retry).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

HEADERS = {
    # What posthog-js sends with a gzip body (wire-protocol §2): no compression
    # marker, text/plain.
    "Content-Type": "text/plain",
    "Connection": "keep-alive",
}
PATH = "/s/"
REQUEST_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 2.0
SAMPLE_EVERY_S = 0.2

ProgressFn = Callable[["Clients"], None]


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)  # noqa: T201


# --- resource sampling ------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of the process tree: the live processes, and the children the
    root has reaped (gunicorn's recycled workers), which no live process shows."""
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        reaped = psutil.Process(pid).cpu_times()
        total += reaped.children_user + reaped.children_system
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def pids_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of these processes still alive."""
    found = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[pid] = times.user + times.system
    return found


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class RssSampler:
    """Peak resident memory of a process tree (master + workers), sampled."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = tree_rss(pid)
        self.latest = self.peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.latest = tree_rss(self.pid)
            self.peak = max(self.peak, self.latest)


# --- the clients ------------------------------------------------------------------


@dataclass
class ClientLog:
    latencies: list[float] = field(default_factory=list)  # seconds, answered 200
    statuses: Counter[str] = field(default_factory=Counter)
    ok_bytes: int = 0
    finished_at: float = 0.0
    first_error: str = ""  # status and start of the body of the first non-200


class Clients:
    """`concurrency` threads sharing one list of bodies, each sent at most once."""

    def __init__(
        self, port: int, bodies: list[bytes], concurrency: int, duration: float
    ) -> None:
        self.port = port
        self.bodies = bodies
        self.concurrency = concurrency
        self.duration = duration
        self.logs = [ClientLog() for _ in range(concurrency)]
        self.stop = threading.Event()
        self._next = itertools.count()
        self.started_at = 0.0

    def run(self, on_tick: ProgressFn | None = None) -> None:
        self.started_at = time.perf_counter()
        deadline = self.started_at + self.duration
        threads = [
            threading.Thread(target=self._client, args=(log, deadline), daemon=True)
            for log in self.logs
        ]
        for thread in threads:
            thread.start()
        try:
            self._wait(threads, on_tick)
        except BaseException:
            # Ctrl-C: let in-flight requests go; the server is stopped next anyway.
            self.stop.set()
            for thread in threads:
                thread.join(2.0)
            raise

    def _wait(
        self, threads: list[threading.Thread], on_tick: ProgressFn | None
    ) -> None:
        next_tick = time.perf_counter() + PROGRESS_EVERY_S
        while any(thread.is_alive() for thread in threads):
            threads[0].join(0.1)
            if on_tick is not None and time.perf_counter() >= next_tick:
                on_tick(self)
                next_tick += PROGRESS_EVERY_S

    def _client(self, log: ClientLog, deadline: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, REQUEST_TIMEOUT_S)
        try:
            while not self.stop.is_set() and time.perf_counter() < deadline:
                index = next(self._next)
                if index >= len(self.bodies):
                    break
                conn = self._post(conn, self.bodies[index], log)
        finally:
            conn.close()
            log.finished_at = time.perf_counter()

    def _post(
        self, conn: http.client.HTTPConnection, body: bytes, log: ClientLog
    ) -> http.client.HTTPConnection:
        """Post one body; returns the connection to use next (new after an error)."""
        start = time.perf_counter()
        try:
            conn.request("POST", PATH, body=body, headers=HEADERS)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.statuses[f"error:{type(exc).__name__}"] += 1
            conn.close()
            return http.client.HTTPConnection("127.0.0.1", self.port, REQUEST_TIMEOUT_S)
        if response.status == 200:
            log.latencies.append(time.perf_counter() - start)
            log.ok_bytes += len(body)
        elif not log.first_error:
            log.first_error = f"{response.status} {answer[:300]!r}"
        log.statuses[str(response.status)] += 1
        if response.will_close:
            conn.close()  # http.client reconnects on the next request
        return conn

    # Live numbers for progress lines (read without locks: approximate is fine).
    def answered(self) -> int:
        return sum(sum(log.statuses.values()) for log in self.logs)

    def ok_count(self) -> int:
        return sum(log.statuses["200"] for log in self.logs)

    def errors(self) -> int:
        return self.answered() - self.ok_count()

    def first_error(self) -> str:
        return next((log.first_error for log in self.logs if log.first_error), "")


# --- results ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    name: str
    elapsed: float
    ok: int
    ok_bytes: int
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    peak_rss: int
    idle_rss: int
    server_cpu: float
    client_cpu: float
    database_cpu: float
    machine_busy: float
    exhausted: bool

    @property
    def batches_per_s(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.ok_bytes / self.elapsed / 1e6 if self.elapsed else 0.0

    @property
    def errors(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.statuses.items()) if k != "200"}

    def per_batch_ms(self, seconds: float) -> float:
        return seconds / self.ok * 1000 if self.ok else 0.0


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(q) - 1]


def summarise(
    name: str, clients: Clients, sampler: RssSampler, idle_rss: int, usage: Usage
) -> RunResult:
    latencies = sorted(x for log in clients.logs for x in log.latencies)
    statuses: Counter[str] = Counter()
    for log_ in clients.logs:
        statuses.update(log_.statuses)
    finished = max(log_.finished_at for log_ in clients.logs)
    return RunResult(
        name=name,
        elapsed=finished - clients.started_at,
        ok=statuses["200"],
        ok_bytes=sum(log_.ok_bytes for log_ in clients.logs),
        statuses=dict(statuses),
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else 0.0,
        peak_rss=sampler.peak,
        idle_rss=idle_rss,
        server_cpu=usage.server,
        client_cpu=usage.client,
        database_cpu=usage.database,
        machine_busy=usage.machine,
        exhausted=sum(statuses.values()) >= len(clients.bodies),
    )


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds spent during a run by the server tree, this process, the
    database server processes serving the server, the machine."""

    server: float
    client: float
    database: float
    machine: float


class UsageMeter:
    """CPU used from now until delta(). `database_pids` names the database server
    processes working for the server (its connections come and go, so it is asked
    at the start and at the end)."""

    def __init__(
        self, server_pid: int, database_pids: Callable[[], list[int]] | None = None
    ) -> None:
        self.server_pid = server_pid
        self.database_pids = database_pids or list
        self._start = self._read()
        self._database = pids_cpu_seconds(self.database_pids())

    def _read(self) -> Usage:
        return Usage(
            server=tree_cpu_seconds(self.server_pid),
            client=time.process_time(),
            database=0.0,
            machine=machine_busy_seconds(),
        )

    def _database_delta(self) -> float:
        end = pids_cpu_seconds(self.database_pids())
        return sum(cpu - self._database.get(pid, 0.0) for pid, cpu in end.items())

    def delta(self) -> Usage:
        end = self._read()
        return Usage(
            server=end.server - self._start.server,
            client=end.client - self._start.client,
            database=self._database_delta(),
            machine=end.machine - self._start.machine,
        )
