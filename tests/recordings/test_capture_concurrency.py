"""Concurrent batches of one session, over real HTTP, lose no update.

On PostgreSQL (the CI profile with DATABASE_URL) this exercises the row locks;
on SQLite the write lock. Either way the recording's counters must equal the sum
of what was stored.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from recordings.models import Project, Recording, SessionLedger, SnapshotChunk
from recordings.services.storage import recording_events
from tests.capture import FIXTURE_TOKEN, captured

SESSION = "concurrent-session"
THREADS = 8
BATCHES = 32


def batch_bodies() -> list[bytes]:
    template = json.loads(
        gzip.decompress(captured("05-s-gzip-incremental-console-network").body)
    )
    bodies = []
    for n in range(BATCHES):
        payload = json.loads(json.dumps(template))
        for i, item in enumerate(payload):
            item["uuid"] = f"batch-{n}-{i}"
            item["properties"]["$session_id"] = SESSION
        bodies.append(gzip.compress(json.dumps(payload).encode()))
    return bodies


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_session_lose_no_update(live_server: Any) -> None:
    Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
    bodies = batch_bodies()
    url = f"{live_server.url}/s/"
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda body: post(url, body), bodies + bodies[:8]))
    assert statuses == [200] * len(statuses)

    recording = Recording.objects.get(session_id=SESSION)
    chunks = SnapshotChunk.objects.filter(recording=recording)
    per_request = len(json.loads(gzip.decompress(bodies[0])))
    assert chunks.count() == BATCHES * per_request  # the 8 resends stored nothing
    assert recording.event_count == sum(c.event_count for c in chunks)
    stored = recording_events(recording=recording)
    assert len(stored) == recording.event_count
    clicks = sum(
        1
        for e in stored
        if e["type"] == 3 and e["data"]["source"] == 2 and e["data"]["type"] == 2
    )
    assert recording.click_count == clicks
    ledger = SessionLedger.objects.get(session_id=SESSION)
    assert ledger.batches_accepted == BATCHES * per_request
    assert ledger.batches_duplicate == 8 * per_request
