"""Start and stop what the benchmark runs against: gunicorn and a scratch database.

Everything here is a context manager that undoes itself on the way out, so a
Ctrl-C or a failure leaves no gunicorn running and no database behind.
"""

from __future__ import annotations

import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
from psycopg import sql

from bench.harness.corpus import ROOT

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_URL_TEMPLATE = "postgres://postgres@127.0.0.1:5432/{name}"
# A guard against dropping a database that is not ours.
DB_NAME_PREFIX = "replayhub_bench"
# The floor (bench/ingest/floor_app.py) as gunicorn names it, run from the repository.
FLOOR_APP = "bench.ingest.floor_app:application"
# Settings that would send ReplayHub to other services than the local ones.
ENV_TO_DROP = ("DATABASE_URL", "REDIS_URL", "REPLAYHUB_S3_BUCKET", "DEBUG")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)  # noqa: T201


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_cleanly(run: Callable[[], None]) -> int:
    """A benchmark's main: SIGTERM unwinds like Ctrl-C, through every cleanup
    (servers, databases, temp dirs); returns the exit status."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        run()
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped and removed")
        return 130
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- gunicorn ---------------------------------------------------------------------


def _expand(word: str, env: Mapping[str, str]) -> str:
    """Expand $VAR, ${VAR} and ${VAR:-default} as the shell would for the Procfile."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return env.get(name) or (match.group(2) or "")

    return _VAR.sub(value, word)


def procfile_web_command(env: Mapping[str, str]) -> list[str]:
    """The Procfile's `web:` command, expanded with `env` (bind, workers)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            words = shlex.split(line.removeprefix("web:"))
            return [_expand(word, env) for word in words]
    raise RuntimeError("the Procfile has no web: line")


def floor_command(web_command: list[str]) -> list[str]:
    """The web command with ReplayHub's WSGI app swapped for the floor app."""
    app = "replayhub.wsgi"
    if app not in web_command:
        raise RuntimeError(f"expected {app!r} in the Procfile web line")
    command = [FLOOR_APP if word == app else word for word in web_command]
    return [command[0], "--pythonpath", str(ROOT), *command[1:]]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_TO_DROP}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def gunicorn(
    name: str, command: list[str], env: Mapping[str, str], port: int, log_path: Path
) -> Iterator[Server]:
    """Run `command` (a gunicorn) until the block ends; wait until it answers."""
    log(f"starting {name}: {' '.join(command)}")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C reaches only us, and we stop it in order.
            start_new_session=True,
        )
    server = Server(name=name, port=port, process=process, log_path=log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(server)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}; "
                f"see {server.log_path}:\n{_tail(server.log_path)}"
            )
        if _answers(server.port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer within {READY_TIMEOUT_S:.0f} s")


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _stop(server: Server) -> None:
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"{server.name} did not stop in {STOP_TIMEOUT_S:.0f} s; killing it")
    # Workers left behind by a master that died or hung: the group is ours alone.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait()
    log(f"stopped {server.name}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- PostgreSQL -------------------------------------------------------------------


def _admin(statement: sql.Composed) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(statement)


def _drop(name: str) -> None:
    _admin(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def backend_pids(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `database`."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = %s"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        return [int(row[0]) for row in conn.execute(query, [database])]


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A fresh, empty database for the block; its URL. Dropped afterwards."""
    if not name.startswith(DB_NAME_PREFIX):
        raise ValueError(f"database name must start with {DB_NAME_PREFIX!r}")
    _drop(name)  # left over from a run that was killed
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    log(f"created database {name}")
    try:
        yield DB_URL_TEMPLATE.format(name=name)
    finally:
        _drop(name)
        log(f"dropped database {name}")


def manage(args: list[str], env: Mapping[str, str]) -> None:
    """Run `manage.py ARGS` with `env`; raise with its output when it fails."""
    result = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}"
        )


def prepare_replayhub(env: Mapping[str, str], token: str) -> None:
    """Migrate the scratch database and create the benchmark project."""
    log("manage.py migrate")
    manage(["migrate", "--noinput", "--verbosity", "0"], env)
    code = (
        "from recordings.models import Project; "
        f"Project.objects.create(name='ingest benchmark', token={token!r})"
    )
    manage(["shell", "--command", code], env)
    log(f"created project with token {token}")
