"""Bodies sent with `Transfer-Encoding: chunked` (no Content-Length) are read.

Some proxies forward bodies chunked. Django's WSGIRequest reads nothing without a
Content-Length, so capture reads wsgi.input itself when the server says it ends
with the body (wsgi.input_terminated), within the same size and decompression
bounds. This needs the production server: Django's own test server (pytest-django's
live_server) cuts wsgi.input to Content-Length before the app sees it, so it can
never pass a chunked body on. These tests run ReplayHub under gunicorn, as the
Procfile does, and send real chunked requests with http.client.
"""

from __future__ import annotations

import gzip
import http.client
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.capture import FIXTURE_TOKEN, captured, decoded
from tests.faults.harness import ReplayHubServer, replayhub

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the gunicorn harness needs /proc"
)

MAX_BYTES = 64 * 1024
MAX_DECOMPRESSED = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayHubServer]:
    data_dir: Path = tmp_path_factory.mktemp("chunked")
    with replayhub(
        data_dir,
        REPLAYHUB_INGEST_MAX_BYTES=str(MAX_BYTES),
        REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES=str(MAX_DECOMPRESSED),
    ) as running:
        yield running


def pieces(body: bytes, size: int = 1000) -> Iterator[bytes]:
    """The body in chunks, as a proxy streaming it on would send it."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post_chunked(server: ReplayHubServer, path: str, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            body=pieces(body),
            headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_it_stores_a_chunked_snapshot_batch(server: ReplayHubServer) -> None:
    request = captured("04-s-gzip-fullsnapshot")
    status, answer = post_chunked(server, "/s/", request.body)
    assert (status, answer) == (200, {"status": 1})
    stored = server.query("SELECT batch_id, event_count FROM recordings_snapshotchunk")
    sent = {
        item["uuid"]: len(item["properties"]["$snapshot_data"])
        for item in decoded("04-s-gzip-fullsnapshot")
    }
    assert dict(stored) == sent


def test_it_stores_chunked_analytics_events(server: ReplayHubServer) -> None:
    status, answer = post_chunked(
        server, "/i/v0/e/", captured("09b-i-v0-e-rageclick-batch").body
    )
    assert (status, answer) == (200, {"status": 1})
    uuids = {row[0] for row in server.query("SELECT uuid FROM recordings_event")}
    assert {e["uuid"] for e in decoded("09b-i-v0-e-rageclick-batch")["batch"]} <= uuids


def test_it_refuses_a_chunked_body_over_the_size_limit(
    server: ReplayHubServer,
) -> None:
    body = json.dumps({"token": FIXTURE_TOKEN, "pad": "x" * MAX_BYTES}).encode()
    status, answer = post_chunked(server, "/api/v1/ingest/rrweb/", body)
    assert (status, answer["error"]) == (413, "body_too_large")


def test_it_refuses_a_chunked_gzip_bomb(server: ReplayHubServer) -> None:
    bomb = gzip.compress(b"[" + b" " * (2 * MAX_DECOMPRESSED) + b"]")
    assert len(bomb) < MAX_BYTES
    status, answer = post_chunked(server, "/s/", bomb)
    assert (status, answer["error"]) == (413, "decompressed_too_large")


def test_it_still_refuses_an_empty_chunked_body(server: ReplayHubServer) -> None:
    status, answer = post_chunked(server, "/s/", b"")
    assert (status, answer["error"]) == (400, "empty_body")
