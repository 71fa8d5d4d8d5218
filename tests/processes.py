"""The Procfile's processes, started as `make run` starts them (a shell per line).

Each runs on the embedded defaults (SQLite, the filesystem broker, local blobs) in a
data directory of the test's own, with its output in files the test reads.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Settings that would send the processes to this run's PostgreSQL, Redis or S3.
NOT_EMBEDDED = ("DATABASE_URL", "REDIS_URL", "REPLAYHUB_S3_BUCKET", "DEBUG")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def procfile() -> dict[str, str]:
    """Process type -> command line, as in the Procfile."""
    types: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            types[name.strip()] = command.strip()
    return types


def embedded_env(data_dir: Path, **env: str) -> dict[str, str]:
    """The environment of `make run` on a fresh clone, data kept in `data_dir`."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("REPLAYHUB_") and key not in NOT_EMBEDDED
    }
    return {**base, "REPLAYHUB_DATA_DIR": str(data_dir), **env}


@contextmanager
def running(
    command: list[str], env: Mapping[str, str], out: Path, err: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` from the repository root until the block ends."""
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its group is ours alone to stop
        )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def shell(line: str) -> list[str]:
    """A Procfile line run as honcho runs it: by a shell, which expands ${VAR:-x}."""
    return ["/bin/sh", "-c", f"exec {line}"]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def get(port: int, path: str, headers: Mapping[str, str] | None = None) -> int | None:
    """The status of GET `path`, or None when nothing answers yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()
