"""Rungs between the floor and ReplayHub: bare WSGI apps that each do a bit more.

bench/ingest/ceiling.py runs this app once per rung, under the Procfile's gunicorn
flags, to show how far from the floor a server gets with only the work that
ReplayHub's promises require of every `/s/` request, and no framework at all.
LADDER_RUNG picks what the app does per request (each rung adds to the one
before it; `log` replaces `blob` and `row`):

    parse     ReplayHub's own decoder and parser (gunzip, orjson, the nested
              `cv` fields, shape checks): what a server must do to know what it
              was sent
    firewall  + the privacy firewall (privacy.scrub, default rules) over every
              batch: what must happen before anything is written
    write     + the scrubbed events encoded as ReplayHub stores them (orjson,
              gzip-6) and written to a new file, not fsynced: stored until the
              machine loses power, i.e. not durable
    blob      the same, with the file and its folder fsynced: the durable blob
    row       + one INSERT ... ON CONFLICT DO NOTHING per batch, committed: the
              metadata a retry is deduplicated against (no ledger, no recording
              counters, no reads)
    log       firewall, then the encoded batches appended to a per-process log
              file, acknowledged after a group-committed fsync (one fsync for
              every request that arrived while the last one ran): durable, but
              with no database row at all when the client hears 200
    inrow     firewall, encode, then one INSERT ... ON CONFLICT DO NOTHING per
              batch of a row holding the encoded bytes (bytea), committed: no
              file at all; PostgreSQL group-commits the WAL flush across
              concurrent requests (capture v2's design, without its framework,
              ledger, counters or reads)

Environment: LADDER_RUNG, LADDER_DATA_DIR, LADDER_DATABASE_URL (rungs `row`,
`inrow`).
"""

from __future__ import annotations

import gzip
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import psycopg

from privacy.scrub import MaskRules, ScrubState, compile_rules, scrub_events
from recordings.ingest.parse import (
    Budget,
    IngestError,
    SnapshotBatch,
    decode_body,
    parse_snapshot_request,
)

RUNGS = ("parse", "firewall", "write", "blob", "row", "log", "inrow")
RUNG = os.environ.get("LADDER_RUNG", "parse")
if RUNG not in RUNGS:
    raise SystemExit(f"LADDER_RUNG must be one of {', '.join(RUNGS)}, not {RUNG!r}")
DATA_DIR = Path(os.environ.get("LADDER_DATA_DIR", "/tmp/replayhub-ladder"))
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = os.environ.get("LADDER_DATABASE_URL", "")
# ReplayHub's default decompression bound (REPLAYHUB_MAX_DECOMPRESSED_BYTES).
MAX_DECOMPRESSED = 64 * 1024 * 1024
RULES = compile_rules(MaskRules())
# The table is created by bench/ingest/ceiling.py before any rung starts.
INSERT_SQL = (
    "INSERT INTO ladder_chunk (batch_id, session_id, events, bytes) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (batch_id) DO NOTHING"
)

INSERT_WITH_DATA_SQL = (
    "INSERT INTO ladder_chunk (batch_id, session_id, events, bytes, data) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (batch_id) DO NOTHING"
)

OK = b'{"status":1}'
StartResponse = Callable[..., Any]


def _respond(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# --- the rungs ----------------------------------------------------------------------


def parsed(body: bytes) -> list[SnapshotBatch]:
    budget = Budget(MAX_DECOMPRESSED)
    payload = decode_body(body, content_type="text/plain", max_decompressed=budget)
    return parse_snapshot_request(payload, max_decompressed=budget)


def scrubbed(batch: SnapshotBatch) -> list[dict[str, Any]]:
    # A fresh state per batch: no carried state to read or write (cheaper than real).
    kept, _report = scrub_events(list(batch.events), RULES, ScrubState())
    return kept


def encoded(events: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps(events), compresslevel=6, mtime=0)


def write_file(folder: Path, name: str, data: bytes, *, sync: bool) -> None:
    """Create `name` in `folder` and write it; with `sync`, fsync it and the folder
    (as ReplayHub's blob storage does)."""
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if not sync:
        return
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


_local = threading.local()


def connection() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(DATABASE_URL, autocommit=True)
        _local.conn = conn
    return conn


class GroupLog:
    """An append-only file where one fsync covers every write made before it began."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("ab", buffering=0)
        self.cond = threading.Condition()
        self.written = 0
        self.synced = 0
        self.syncing = False

    def append(self, record: bytes) -> None:
        with self.cond:
            self.file.write(record)
            self.written += 1
            mine = self.written
            while self.synced < mine:
                if self.syncing:
                    self.cond.wait()
                    continue
                self.syncing = True
                target = self.written
                self.cond.release()
                try:
                    os.fsync(self.file.fileno())
                finally:
                    self.cond.acquire()
                    self.syncing = False
                self.synced = max(self.synced, target)
                self.cond.notify_all()


_log: GroupLog | None = None
_log_pid = 0


def group_log() -> GroupLog:
    global _log, _log_pid  # noqa: PLW0603 - one log per worker process (after fork)
    if _log is None or _log_pid != os.getpid():
        _log = GroupLog(DATA_DIR / f"capture.{os.getpid()}.log")
        _log_pid = os.getpid()
    return _log


def handle(body: bytes) -> None:
    batches = parsed(body)
    if RUNG == "parse":
        return
    scrubbed_batches = [(batch, scrubbed(batch)) for batch in batches]
    if RUNG == "firewall":
        return
    if RUNG == "log":
        records = b"".join(
            len(data).to_bytes(4, "big") + data
            for data in (encoded(events) for _batch, events in scrubbed_batches)
        )
        group_log().append(records)
        return
    if RUNG == "inrow":
        for batch, events in scrubbed_batches:
            data = encoded(events)
            connection().execute(
                INSERT_WITH_DATA_SQL,
                (batch.uuid, batch.session_id, len(events), len(data), data),
            )
        return
    for batch, events in scrubbed_batches:
        data = encoded(events)
        name = f"{batch.uuid}.json.gz"
        write_file(DATA_DIR / batch.session_id, name, data, sync=RUNG != "write")
        if RUNG == "row":
            connection().execute(
                INSERT_SQL, (batch.uuid, batch.session_id, len(events), len(data))
            )


def application(
    environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        return _respond(start_response, "200 OK", OK)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        handle(environ["wsgi.input"].read(length))
    except IngestError as exc:
        return _respond(start_response, "400 Bad Request", orjson.dumps(str(exc)))
    except FileExistsError:
        # The same batch id twice: the bodies are distinct, so this is a bench bug.
        name = f"duplicate-{uuid.uuid4()}"
        return _respond(start_response, "500 Internal Server Error", name.encode())
    return _respond(start_response, "200 OK", OK)
