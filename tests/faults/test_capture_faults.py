"""Capture keeps its promise while things break under it.

The promise (recordings/capture/endpoints.py): a batch answered 200 is stored; when
storage or the database fails the answer is 503 + Retry-After and nothing is
half-written; a retried batch is stored once. Each test runs a real ReplayHub under
gunicorn, drives it with concurrent clients that retry like posthog-js (same `$snapshot`
uuids, new bytes), breaks something mid-stream, and then reads the database and the blob
directory back.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.harness import (
    Ledger,
    ReplayHubServer,
    break_storage,
    clients,
    during_stream,
    replayhub,
    restore_storage,
    throwaway_postgres,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc"),
]

OUTAGE_S = 3.0


def assert_promise_kept(
    server: ReplayHubServer, ledger: Ledger, *, expect_503: bool
) -> None:
    summary = ledger.summary()
    sys.stderr.write(f"clients: {summary}\n")
    assert not ledger.problems, f"{summary}\n" + "\n".join(ledger.problems[:20])
    assert ledger.answers["500"] == 0, summary
    if expect_503:
        assert ledger.answers["503"] > 0, f"the fault was never seen: {summary}"
    wrong = server.check_stored_once(ledger.expected)
    assert not wrong, f"{summary}\n" + "\n".join(wrong[:20])


def test_killed_web_workers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    ledger = Ledger()
    with replayhub(tmp_path) as server:
        killed: list[int] = []

        def kill_workers() -> None:
            for _ in range(3):
                killed.append(server.kill_worker())
                time.sleep(0.3)
                server.wait_workers()
                ledger.wait_for_acks(ledger.acked + 15)

        with clients(server.port, ledger):
            during_stream(ledger, kill_workers)
        assert len(set(killed)) == 3, f"killed {killed}"
        assert_promise_kept(server, ledger, expect_503=False)


def test_database_outage_answers_503_and_stores_each_batch_once(
    tmp_path: Path,
) -> None:
    ledger = Ledger()
    with (
        throwaway_postgres() as postgres,
        replayhub(tmp_path, postgres.url) as server,
    ):

        def outage() -> None:
            postgres.stop("fast")
            time.sleep(OUTAGE_S)
            postgres.start()

        with clients(server.port, ledger):
            during_stream(ledger, outage)
        assert_promise_kept(server, ledger, expect_503=True)


def test_a_storage_outage_does_not_reach_capture(tmp_path: Path) -> None:
    """Live batches are committed in their rows: blob storage is not on the way."""
    ledger = Ledger()
    with replayhub(tmp_path) as server:
        with clients(server.port, ledger):
            during_stream(ledger, storage_outage(server))
        assert_promise_kept(server, ledger, expect_503=False)
        assert ledger.answers["503"] == 0, ledger.summary()


def test_a_storage_outage_answers_503_to_batches_too_big_for_rows(
    tmp_path: Path,
) -> None:
    ledger = Ledger()
    # Every batch is "too big for a row" here: each goes to blob storage.
    with replayhub(tmp_path, REPLAYHUB_INGEST_ROW_MAX_BYTES="0") as server:
        with clients(server.port, ledger):
            during_stream(ledger, storage_outage(server))
        assert_promise_kept(server, ledger, expect_503=True)


def storage_outage(server: ReplayHubServer) -> Callable[[], None]:
    def outage() -> None:
        moved = break_storage(server.blob_dir)
        try:
            time.sleep(OUTAGE_S)
        finally:
            restore_storage(server.blob_dir, moved)

    return outage
