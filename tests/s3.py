"""A real S3-protocol server for tests: moto in server mode, in a subprocess.

The server starts on first use and lives for the rest of the test session (an atexit
hook stops it). Tests isolate themselves with a bucket of their own
(`create_bucket()`) and get a STORAGES entry for django-storages' S3Storage from
`s3_storage()`, the same backend and options that settings.py uses in production.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from django.conf import settings

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
START_TIMEOUT = 20.0  # seconds; moto imports a lot before it listens


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    found = shutil.which("moto_server")
    if found:
        return [found, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    endpoint_url: str
    log_path: Path

    @classmethod
    def start(cls) -> MotoServer:
        port = free_port()
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open by the child
            prefix="moto-server-", suffix=".log", delete=False
        )
        env = os.environ | {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }
        process = subprocess.Popen(
            _moto_command(port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        server = cls(process, f"http://127.0.0.1:{port}", Path(log.name))
        atexit.register(server.stop)  # even when a test run is cut short
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = server.log_path.read_text(errors="replace")
                server.stop()
                raise RuntimeError(f"moto_server did not start on {port}:\n{output}")
            time.sleep(0.05)
        return server

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The server hung: it still takes connections (the kernel does), never
        answers. SIGSTOP, and SIGCONT whatever happens meanwhile."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused one must hear TERM
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


_server: MotoServer | None = None


def moto_server() -> MotoServer:
    """The session's moto server, started on first call."""
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = MotoServer.start()
    return _server


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client for looking at the bucket behind the storage's back."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or moto_server().endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )


def create_bucket(
    prefix: str = "replayhub-test", endpoint_url: str | None = None
) -> str:
    """A new, empty bucket of one's own on the moto server (or the one given)."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}".lower()
    s3_client(endpoint_url).create_bucket(Bucket=name)
    return name


def client_config() -> Config:
    """settings.py's botocore Config (timeouts, attempts), with moto's path style."""
    return Config(
        s3={"addressing_style": "path"},
        connect_timeout=settings.REPLAYHUB_S3_CONNECT_TIMEOUT,
        read_timeout=settings.REPLAYHUB_S3_READ_TIMEOUT,
        retries={
            "total_max_attempts": settings.REPLAYHUB_S3_MAX_ATTEMPTS,
            "mode": "standard",
        },
    )


def s3_storage(
    bucket: str,
    *,
    location: str = "recordings",
    endpoint_url: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A STORAGES entry for S3Storage on the moto server, shaped like settings.py's:
    the same timeouts and attempts bound every call."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "client_config": client_config(),
            "transfer_config": TransferConfig(num_download_attempts=1),
            "endpoint_url": endpoint_url or moto_server().endpoint_url,
            "region_name": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "location": location,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        }
        | options,
    }


def unreachable_s3_storage(bucket: str = "replayhub-down") -> dict[str, Any]:
    """S3Storage pointed at a closed port, failing fast: one attempt, short timeouts."""
    return s3_storage(
        bucket,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        client_config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=1,
            read_timeout=1,
            retries={"total_max_attempts": 1},
        ),
    )
