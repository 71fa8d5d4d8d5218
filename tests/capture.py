"""Replay raw requests captured from real browsers (../shared/fixtures/posthog-js)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.test import Client

from tests.fixtures import fixtures_dir

FIXTURE_TOKEN = "phc_replayhub_demo_token"


@dataclass(frozen=True)
class CapturedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def url(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def send(self, client: Client, *, body: bytes | None = None) -> Any:
        """Send it as the browser did: same method, path, query, type and bytes."""
        return client.generic(
            self.method,
            self.url,
            data=self.body if body is None else body,
            content_type=self.headers.get("content-type", ""),
            headers={"Origin": self.headers.get("origin", "http://shop.test")},
        )

    def decoded(self) -> Any:
        """The JSON of a gzip body, to change before sending it again."""
        return json.loads(gzip.decompress(self.body))

    def send_decoded(self, client: Client, payload: object) -> Any:
        """Send `payload` as this request's gzip body, as posthog-js would."""
        return self.send(client, body=gzip.compress(json.dumps(payload).encode()))


def _headers(pairs: list[list[str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in pairs}


def posthog_dir() -> Path:
    return fixtures_dir() / "posthog-js"


def captured(name: str) -> CapturedRequest:
    """One capture, e.g. captured("04-s-gzip-fullsnapshot")."""
    sidecar = json.loads((posthog_dir() / f"{name}.json").read_text())
    body_file = posthog_dir() / f"{name}.body"
    return CapturedRequest(
        method=sidecar["method"],
        path=sidecar["path"],
        query=sidecar["query"],
        headers=_headers(sidecar["headers"]),
        body=body_file.read_bytes() if body_file.exists() else b"",
    )


def decoded(name: str) -> Any:
    """The fixture's own decoding of a capture (every `cv` event expanded)."""
    return json.loads((posthog_dir() / "decoded" / f"{name}.json").read_text())[
        "payload"
    ]


def full_session() -> Iterator[CapturedRequest]:
    """Every request of the 72-second, 3-page session, in arrival order."""
    folder = posthog_dir() / "full-session-main"
    for line in (folder / "requests.jsonl").read_text().splitlines():
        row = json.loads(line)
        body_file = folder / row["body_file"] if row.get("body_file") else None
        yield CapturedRequest(
            method=row["method"],
            path=row["path"],
            query=row["query"],
            headers=_headers(row["headers"]),
            body=body_file.read_bytes() if body_file else b"",
        )


def send_full_session_snapshots(client: Client) -> None:
    """Post the real session's `/s/` requests, in order; expect each to be stored."""
    for request in full_session():
        if request.path == "/s/":
            response = request.send(client)
            assert response.status_code == 200, response.content


def session_events(prefix: str) -> list[dict[str, Any]]:
    """A recorded session as plain rrweb events (sessions/<prefix>.*.rrweb.json)."""
    (path,) = (posthog_dir() / "sessions").glob(f"{prefix}.*.rrweb.json")
    events: list[dict[str, Any]] = json.loads(path.read_text())
    return events


def send_rrweb(
    client: Client,
    token: str,
    batch_id: str,
    events: list[Any],
    session_id: str = "s",
    window_id: str = "w",
) -> None:
    """Post one batch of plain rrweb events to the rrweb ingest endpoint; expect 200."""
    body = {
        "token": token,
        "session_id": session_id,
        "window_id": window_id,
        "batch_id": batch_id,
        "events": events,
    }
    response = client.post(
        "/api/v1/ingest/rrweb/", data=body, content_type="application/json"
    )
    assert response.status_code == 200, response.content
