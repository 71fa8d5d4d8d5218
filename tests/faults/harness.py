"""A real ReplayHub under gunicorn, a posthog-js-like client, and the faults.

Linux only: gunicorn workers are found through /proc (no psutil dependency), and
the database fault needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.capture import FIXTURE_TOKEN, full_session

REPO_ROOT = Path(__file__).resolve().parents[2]
# The venv's bin directory (not resolved: .venv/bin/python is a symlink).
VENV_BIN = Path(sys.executable).parent

# posthog-js retries a batch up to 10 times; its backoff is seconds, ours is short.
MAX_RETRIES = 10
BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0
REQUEST_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def uuid7() -> str:
    """A UUIDv7 string, as posthog-js makes for `$snapshot` and session ids."""
    ms = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (ms & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 62) << 64
    value |= 0b10 << 62
    value |= rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def child_pids(parent: int) -> list[int]:
    """Live direct children of a process, from /proc (gunicorn's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process exited meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return sorted(found)


# --- batches ------------------------------------------------------------------


@dataclass
class Batch:
    """One `/s/` request: `$snapshot` events of one session, re-encoded per attempt."""

    number: int
    items: list[dict[str, Any]]

    @property
    def uuids(self) -> list[str]:
        return [item["uuid"] for item in self.items]

    @property
    def session_id(self) -> str:
        session_id: str = self.items[0]["properties"]["$session_id"]
        return session_id

    def expected(self) -> dict[str, tuple[str, int]]:
        """$snapshot uuid -> (session id, rrweb event count)."""
        return {
            item["uuid"]: (
                item["properties"]["$session_id"],
                len(item["properties"]["$snapshot_data"]),
            )
            for item in self.items
        }

    def body(self) -> bytes:
        # A retry carries the same uuids and data, a new sent_at: new bytes.
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        sent_at = now.replace("+00:00", "Z")
        items = [{**item, "sent_at": sent_at} for item in self.items]
        return gzip.compress(json.dumps(items).encode(), mtime=0)


class BatchFactory:
    """Endless distinct batches made of the real `/s/` bodies of a browser session.

    Each batch gets fresh `$snapshot` uuids and one of a few session ids (all items
    of one request share a session and window, as posthog-js sends them); the token
    and the rrweb data stay as the browser sent them.
    """

    def __init__(self, sessions: int = 5) -> None:
        self.templates = [
            gzip.decompress(request.body)
            for request in full_session()
            if request.method == "POST" and request.path == "/s/"
        ]
        assert self.templates, "no /s/ requests in the full-session fixture"
        self.sessions = [(uuid7(), uuid7()) for _ in range(sessions)]
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> Batch:
        with self._lock:
            index = self._next
            self._next += 1
        items: list[dict[str, Any]] = json.loads(
            self.templates[index % len(self.templates)]
        )
        session_id, window_id = self.sessions[
            (index + index // len(self.templates)) % len(self.sessions)
        ]
        for item in items:
            assert item["properties"]["token"] == FIXTURE_TOKEN
            item["uuid"] = uuid7()
            item["properties"]["$session_id"] = session_id
            item["properties"]["$window_id"] = window_id
        return Batch(index, items)


# --- the client -----------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients sent and what they were answered."""

    expected: dict[str, tuple[str, int]] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    acked: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sending(self, batch: Batch) -> None:
        with self._lock:
            self.expected.update(batch.expected())

    def answer(self, kind: str) -> None:
        with self._lock:
            self.answers[kind] += 1

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    def ack(self) -> None:
        with self._lock:
            self.acked += 1

    def wait_for_acks(self, count: int, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.acked} of {count} sends answered 200 after "
                    f"{timeout:.0f} s; answers so far: {dict(self.answers)}"
                )
            time.sleep(0.05)

    def summary(self) -> str:
        return (
            f"{len(self.expected)} $snapshot uuids sent, {self.acked} sends "
            f"answered 200; all answers: {dict(sorted(self.answers.items()))}; "
            f"{len(self.problems)} problem(s)"
        )


def post(port: int, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "text/plain", "Origin": "http://shop.test"},
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def send_like_posthog(
    port: int, batch: Batch, ledger: Ledger, *, first_attempt: int = 0
) -> None:
    """Send until 200, retrying on 5xx and network errors as posthog-js does."""
    ledger.sending(batch)
    for attempt in range(first_attempt, first_attempt + MAX_RETRIES + 1):
        path = f"/s/?retry_count={attempt}" if attempt else "/s/"
        try:
            status, headers, content = post(port, path, batch.body())
        except (OSError, http.client.HTTPException) as exc:
            ledger.answer(f"network error ({type(exc).__name__})")
        else:
            ledger.answer(str(status))
            if status == 200:
                ledger.ack()
                return
            what = (
                f"{status} for batch {batch.uuids} (attempt {attempt}): "
                f"{content[:300]!r}"
            )
            if 400 <= status < 500:
                # posthog-js drops the batch for good: data lost.
                ledger.problem(what)
                return
            if status != 503:
                ledger.problem(what)  # retried, but capture promised 200 or 503
            elif "retry-after" not in {name.lower() for name in headers}:
                ledger.problem(f"503 without Retry-After: {what}")
        time.sleep(min(BACKOFF_S * 2**attempt, MAX_BACKOFF_S))
    ledger.problem(f"batch {batch.uuids} dropped after {MAX_RETRIES} retries")


@contextlib.contextmanager
def clients(
    port: int, ledger: Ledger, *, count: int = 8, pace_s: float = 0.02
) -> Iterator[None]:
    """Clients sending new batches concurrently until the block ends.

    Besides the retries the faults cause, some batches are sent twice on purpose, as
    posthog-js does too: again after a 200 (the answer was lost on the way back), or
    twice at once (the page unloads and beacons a batch whose request is in flight).

    On exit the clients stop taking new batches and finish (with retries) the one
    they are sending.
    """
    factory = BatchFactory()
    stop = threading.Event()

    def send(batch: Batch) -> None:
        if batch.number % 6 == 0:
            beacon = partial(send_like_posthog, port, batch, ledger, first_attempt=1)
            twin = threading.Thread(target=guarded, args=(beacon,))
            twin.start()
            send_like_posthog(port, batch, ledger)
            twin.join()
        else:
            send_like_posthog(port, batch, ledger)
            if batch.number % 6 == 3:
                send_like_posthog(port, batch, ledger, first_attempt=1)

    def guarded(work: Callable[[], None]) -> bool:
        try:
            work()
        except Exception as exc:  # a bug in the client: make it visible
            ledger.problem(f"client crashed: {exc!r}")
            return False
        return True

    def run() -> None:
        while not stop.is_set():
            if not guarded(partial(send, factory())):
                return
            time.sleep(pace_s)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=MAX_RETRIES * (MAX_BACKOFF_S + REQUEST_TIMEOUT_S))
        if any(thread.is_alive() for thread in threads):
            ledger.problem("a client thread did not finish")


# --- the server -------------------------------------------------------------------


class ReplayHubServer:
    """ReplayHub under gunicorn, on its own data directory and database."""

    def __init__(self, data_dir: Path, database_url: str, **env: str) -> None:
        self.data_dir = data_dir
        self.blob_dir = data_dir / "blobs"
        self.database_url = database_url
        self.port = free_port()
        self.log_path = data_dir / "server.log"  # gunicorn's and Django's logs
        self.access_log_path = data_dir / "access.log"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("REPLAYHUB_")
            and key not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "ALLOWED_HOSTS"}
        }
        self.env.update(
            REPLAYHUB_DATA_DIR=str(data_dir),
            DATABASE_URL=database_url,
            ALLOWED_HOSTS="127.0.0.1",
            REPLAYHUB_INGEST_RETRY_AFTER="1",
            # The faults are the only reason for a 503 here, not the rate limit.
            REPLAYHUB_INGEST_RATE_PER_MINUTE="0",
            DJANGO_SETTINGS_MODULE="replayhub.settings",
            **env,
        )
        self.process: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> None:
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "manage.py"), *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            raise AssertionError(
                f"manage.py {args[0]} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )

    def prepare(self) -> None:
        self.manage("migrate", "--noinput")
        # The clients mix pages of the fixture session into synthetic sessions, so
        # node ids of one page meet events of another: with blocking on, the privacy
        # firewall would rightly drop some of them, and the stored event counts could
        # not be compared with what was sent. These tests are about durability.
        self.manage(
            "shell",
            "-c",
            "from recordings.models import Project; "
            "from privacy.models import PrivacySettings; "
            f"p = Project.objects.create(name='Faults', token='{FIXTURE_TOKEN}'); "
            "PrivacySettings.objects.create(project=p, block_selectors='')",
        )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "replayhub.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--graceful-timeout",
                    "3",
                    "--access-logfile",
                    str(self.access_log_path),
                    "--error-logfile",
                    "-",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"gunicorn exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                last = f"{response.status} {response.read()[:200]!r}"
                conn.close()
                if response.status == 200:
                    return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"ReplayHub not healthy ({last}):\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return child_pids(self.process.pid)

    def kill_worker(self) -> int:
        """kill -9 one web worker; gunicorn's master starts a replacement."""
        workers = self.worker_pids()
        assert workers, f"no gunicorn workers to kill:\n{self.log_tail()}"
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        return victim

    def wait_workers(self, count: int = 2, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not restore {count} workers")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        workers = self.worker_pids()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in workers:  # orphans of a killed master
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def access_summary(self, lines: int = 15) -> str:
        """Statuses of all requests, and the last ones that were not a 200."""
        try:
            rows = self.access_log_path.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"<no access log: {exc}>"
        # '... "POST /s/ HTTP/1.1" 200 12 "-" "-"': the status follows the request.
        statuses = Counter(row.split('" ', 1)[-1].split(" ", 1)[0] for row in rows)
        failed = [row for row in rows if '" 200 ' not in row]
        return f"statuses: {dict(statuses)}\n" + "\n".join(failed[-lines:])

    # --- reading back what was stored ---

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.database_url.startswith("sqlite:"):
            path = self.database_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.database_url, connect_timeout=10) as conn:
            return conn.execute(sql).fetchall()

    def check_stored_once(self, expected: dict[str, tuple[str, int]]) -> list[str]:
        """Everything wrong with what was stored; [] when each batch is there once."""
        wrong: list[str] = []
        chunks = self.query(
            "SELECT c.batch_id, r.session_id, c.event_count, c.blob_key, c.size_bytes, "
            "c.data FROM recordings_snapshotchunk c "
            "JOIN recordings_recording r ON r.id = c.recording_id"
        )
        seen = Counter(row[0] for row in chunks)
        missing = sorted(set(expected) - set(seen))
        if missing:
            wrong.append(f"{len(missing)} batch(es) never stored, e.g. {missing[:5]}")
        twice = sorted(batch for batch, n in seen.items() if n > 1)
        if twice:
            wrong.append(f"{len(twice)} batch(es) stored twice+, e.g. {twice[:5]}")
        unknown = sorted(set(seen) - set(expected))
        if unknown:
            wrong.append(
                f"{len(unknown)} chunk(s) of batches never sent: {unknown[:5]}"
            )
        by_blob: dict[str, list[tuple[str, int, int]]] = {}
        for batch_id, session_id, event_count, blob_key, size, data in chunks:
            if batch_id not in expected:
                continue
            want_session, want_events = expected[batch_id]
            if (session_id, event_count) != (want_session, want_events):
                wrong.append(
                    f"chunk {batch_id}: session {session_id}, {event_count} events; "
                    f"sent session {want_session}, {want_events} events"
                )
            row = (batch_id, event_count, size)
            if blob_key:
                by_blob.setdefault(blob_key, []).append(row)
            elif data is None:
                wrong.append(f"chunk {batch_id}: neither bytes in its row nor a blob")
            else:
                wrong.extend(_data_mismatch(f"row of {batch_id}", bytes(data), [row]))
        # A request's batches of one window too big for rows share one blob: its
        # events are theirs together, and their sizes are shares that add up to it.
        for blob_key, rows in by_blob.items():
            wrong.extend(_blob_mismatch(self.blob_dir / blob_key, rows))
        # The numbers folded into each recording match its chunks: no half-writes.
        recordings = self.query(
            "SELECT r.session_id, r.event_count, r.size_bytes, "
            "COALESCE(SUM(c.event_count), 0), COALESCE(SUM(c.size_bytes), 0) "
            "FROM recordings_recording r "
            "LEFT JOIN recordings_snapshotchunk c ON c.recording_id = r.id "
            "GROUP BY r.id, r.session_id, r.event_count, r.size_bytes"
        )
        for session_id, events, size, chunk_events, chunk_size in recordings:
            if (events, size) != (chunk_events, chunk_size):
                wrong.append(
                    f"recording {session_id}: {events} events, {size} bytes; "
                    f"its chunks hold {chunk_events} events, {chunk_size} bytes"
                )
        return wrong


@contextlib.contextmanager
def replayhub(
    data_dir: Path, database_url: str | None = None, **env: str
) -> Iterator[ReplayHubServer]:
    url = database_url or f"sqlite:///{data_dir / 'replayhub.sqlite3'}"
    server = ReplayHubServer(data_dir, url, **env)
    try:
        server.prepare()
        server.start()
        yield server
    except BaseException:
        sys.stderr.write(
            f"--- ReplayHub log (tail) ---\n{server.log_tail(120)}\n"
            f"--- access log ---\n{server.access_summary()}\n"
        )
        raise
    finally:
        server.stop()


# --- faults -------------------------------------------------------------------------


def break_storage(blob_dir: Path) -> Path:
    """Make every blob write fail, even as root: a regular file where the dir was."""
    moved = blob_dir.with_name(blob_dir.name + ".moved")
    blob_dir.mkdir(parents=True, exist_ok=True)
    blob_dir.rename(moved)
    blob_dir.write_text("not a directory: storage is down\n")
    return moved


def restore_storage(blob_dir: Path, moved: Path) -> None:
    blob_dir.unlink()
    try:
        moved.rename(blob_dir)
        return
    except OSError:
        pass  # a write recreated the directory meanwhile: merge the moved files back
    for source in sorted(moved.rglob("*")):
        if source.is_file():
            target = blob_dir / source.relative_to(moved)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():  # else a retry rewrote the same bytes
                source.replace(target)
    shutil.rmtree(moved)


def _pg_version(bindir: Path) -> list[int]:
    return [int(part) for part in bindir.parent.name.split(".") if part.isdigit()]


class ThrowawayPostgres:
    """A PostgreSQL cluster of our own in a temp dir; never the machine's shared one."""

    def __init__(self) -> None:
        installed = Path("/usr/lib/postgresql").glob("*/bin/initdb")
        bindirs = sorted((initdb.parent for initdb in installed), key=_pg_version)
        if not bindirs:
            raise AssertionError(
                "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/"
                "initdb); install the postgresql package to run the fault tests"
            )
        self.bin = bindirs[-1]
        # Not under pytest's tmp_path: as root, the server runs as `postgres`, which
        # cannot enter root's 0700 pytest directory.
        self.dir = Path(tempfile.mkdtemp(prefix="replayhub-faults-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_root:  # initdb and pg_ctl refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.dir
        )
        if result.returncode:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n"
                f"--- postgres log ---\n{self.log_tail()}"
            )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.dir} -c fsync=off "
            "-c max_connections=50"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    except BaseException:
        sys.stderr.write(f"--- postgres log (tail) ---\n{cluster.log_tail()}\n")
        raise
    finally:
        cluster.destroy()


def during_stream(
    ledger: Ledger, fault: Callable[[], None], *, before: int = 30, after: int = 40
) -> None:
    """Let `before` batches through, run the fault, then wait for `after` more."""
    ledger.wait_for_acks(before)
    fault()
    ledger.wait_for_acks(ledger.acked + after)


def _blob_mismatch(path: Path, rows: list[tuple[str, int, int]]) -> list[str]:
    """What is wrong with one blob and the chunk rows that point at it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        names = ", ".join(batch_id for batch_id, _, _ in rows)
        return [f"chunk(s) {names}: blob {path} unreadable: {exc!r}"]
    return _data_mismatch(f"blob {path}", data, rows)


def _data_mismatch(
    where: str, data: bytes, rows: list[tuple[str, int, int]]
) -> list[str]:
    """What is wrong with stored gzip bytes and the chunk rows they are for."""
    names = ", ".join(batch_id for batch_id, _, _ in rows)
    try:
        events = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:
        return [f"chunk(s) {names}: {where} unreadable: {exc!r}"]
    wrong = []
    event_count = sum(count for _, count, _ in rows)
    if len(events) != event_count:
        wrong.append(
            f"chunk(s) {names}: {where} holds {len(events)} events, rows say "
            f"{event_count}"
        )
    size = sum(share for _, _, share in rows)
    if len(data) != size:
        wrong.append(f"chunk(s) {names}: {where} is {len(data)} bytes, rows {size}")
    return wrong
