"""The floor: the least any `/s/` server must do with a batch, as a bare WSGI app.

It reads the body, gunzips it, parses the JSON with orjson (so that it could find the
token and uuids), expands nothing else, and writes the body as received (gzip) to
a file named by the first `$snapshot` uuid. No framework, no database, no checks.

Run by bench/ingest/throughput.py under the same gunicorn flags as ReplayHub:
    gunicorn --pythonpath . bench.ingest.floor_app:application
with FLOOR_DATA_DIR naming the directory to write to.
"""

from __future__ import annotations

import gzip
import os
import uuid
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

DATA_DIR = Path(os.environ.get("FLOOR_DATA_DIR", "/tmp/replayhub-floor"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

OK = b'{"status":1}'
GZIP_MAGIC = b"\x1f\x8b"

StartResponse = Callable[..., Any]


def _respond(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    start_response(status, headers)
    return [body]


def _name(payload: Any) -> str:
    try:
        return str(payload[0]["uuid"])
    except (LookupError, TypeError):
        return str(uuid.uuid4())


def application(
    environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        return _respond(start_response, "200 OK", OK)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length)
    gzipped = body.startswith(GZIP_MAGIC)
    raw = zlib.decompress(body, 16 + zlib.MAX_WBITS) if gzipped else body
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _respond(start_response, "400 Bad Request", b'{"error":"json"}')
    stored = body if gzipped else gzip.compress(raw, mtime=0)
    (DATA_DIR / f"{_name(payload)}.json.gz").write_bytes(stored)
    return _respond(start_response, "200 OK", OK)
