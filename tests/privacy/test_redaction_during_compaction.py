"""Retroactive redaction and compaction of one recording take turns.

A compaction reads a window's chunks, then writes them merged into one blob. A
redaction in between would rewrite the chunks, and the compaction would then store
the window as it read it, unredacted. Here the compaction stops at that blob write
while a redaction starts; real threads and connections, so it runs on SQLite (the
database's write lock) and on PostgreSQL (the recording's row lock) alike. A purge
and a batch of the session arriving meanwhile wait their turn too, and no deadlock.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import connections
from django.test import Client

from privacy import services as privacy_services
from privacy.models import PrivacySettings
from recordings import blobs
from recordings.models import Project, Recording, SnapshotChunk
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events, recording_purge
from tests.base import temp_blob_storage
from tests.capture import send_rrweb

EMAIL = "jane.doe@example.com"
EMAIL_PATTERN = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
T0 = 1_790_000_000_000
# How long a redaction or purge gets to finish while the compaction is stopped. With
# the lock it waits for the compaction whatever this is; without, it is done sooner.
HEAD_START = 1.5


class Worker(threading.Thread):
    """Runs `work` on its own database connection; keeps what it raised."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()


def send(client: Client, project: Project, batch_id: str, events: list[Any]) -> None:
    send_rrweb(client, project.token, batch_id, events)


def page_with_email() -> list[dict[str, Any]]:
    text = {"type": 3, "textContent": f"Signed in as {EMAIL}", "id": 3}
    paragraph = {
        "type": 2,
        "tagName": "p",
        "attributes": {},
        "childNodes": [text],
        "id": 2,
    }
    document = {"type": 0, "childNodes": [paragraph], "id": 1}
    return [
        {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/"}},
        {"type": 2, "timestamp": T0 + 1, "data": {"node": document}},
    ]


def custom_event_with_email() -> list[dict[str, Any]]:
    payload = {"tag": "signup", "payload": {"email": EMAIL}}
    return [{"type": 5, "timestamp": T0 + 2, "data": payload}]


def blob_texts(location: Path) -> list[str]:
    return [
        gzip.decompress(path.read_bytes()).decode()
        for path in sorted(location.rglob("*"))
        if path.is_file()
    ]


@contextlib.contextmanager
def compaction_stopped_at_its_write(recording: Recording) -> Iterator[Worker]:
    """A compaction of `recording` that has read its chunks and not yet written."""
    stopped, go_on = threading.Event(), threading.Event()
    put_chunk = blobs.put_chunk

    def put_stopping_at_window(key: str, data: bytes) -> None:
        if "/window-" in key:
            stopped.set()
            go_on.wait(timeout=30)
        put_chunk(key, data)

    with mock.patch.object(blobs, "put_chunk", put_stopping_at_window):
        compaction = Worker(lambda: recording_compact(recording=recording))
        compaction.start()
        try:
            assert stopped.wait(timeout=30)
            yield compaction
        finally:
            go_on.set()
            compaction.join(timeout=30)
    assert not compaction.is_alive()
    assert compaction.error is None, compaction.error


def started(work: Callable[[], object]) -> tuple[Worker, bool]:
    """A worker running `work`, and whether it was still busy after a head start."""
    worker = Worker(work)
    worker.start()
    worker.join(timeout=HEAD_START)
    return worker, worker.is_alive()


@pytest.fixture
def storage(settings: Any, tmp_path: Path) -> Path:
    settings.STORAGES = {**settings.STORAGES, "recordings": temp_blob_storage(tmp_path)}
    return tmp_path


@pytest.fixture
def recording(client: Client, storage: Path) -> Recording:
    project = Project.objects.create(name="Shop")
    PrivacySettings.objects.create(project=project)
    send(client, project, "1", page_with_email())
    send(client, project, "2", custom_event_with_email())
    assert all(EMAIL in text for text in blob_texts(storage))  # else proves nothing
    return Recording.objects.get()


@pytest.mark.django_db(transaction=True)
def test_a_redaction_during_a_compaction_leaves_no_unredacted_blob(
    recording: Recording, storage: Path
) -> None:
    PrivacySettings.objects.filter(project=recording.project).update(
        scrub_patterns=EMAIL_PATTERN
    )
    project = Project.objects.get(pk=recording.project_id)  # with the new rules
    with compaction_stopped_at_its_write(recording):
        redaction, waited = started(
            lambda: privacy_services.recordings_redact(project=project)
        )
    redaction.join(timeout=30)

    assert waited  # for the compaction's lock
    assert not redaction.is_alive() and redaction.error is None, redaction.error
    stored = blob_texts(storage)
    assert len(stored) == 1  # the window blob; the chunks' blobs are gone
    assert EMAIL not in stored[0]
    assert "[REDACTED]" in stored[0]
    assert not SnapshotChunk.objects.filter(compacted_into="").exists()
    recording.refresh_from_db()
    assert recording.compacted
    assert recording.size_bytes == sum(p.stat().st_size for p in storage.rglob("*.gz"))
    events = recording_events(recording=recording)
    assert [event["timestamp"] for event in events] == [T0, T0 + 1, T0 + 2]


@pytest.mark.django_db(transaction=True)
def test_a_purge_during_a_compaction_waits_for_it(recording: Recording) -> None:
    # The purge deletes the chunk rows before the recording's; had it not waited
    # for the recording's lock first, the compaction would wait for those rows
    # while holding that lock: a deadlock, which PostgreSQL breaks with an error.
    # (SQLite has one write lock: the purge waits for it either way.)
    with compaction_stopped_at_its_write(recording):
        purge, waited = started(lambda: recording_purge(recording=recording))
    purge.join(timeout=30)

    assert waited
    assert not purge.is_alive() and purge.error is None, purge.error
    assert not Recording.objects.exists()
    assert not SnapshotChunk.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_arriving_during_a_compaction_waits_and_stays_loose(
    recording: Recording,
) -> None:
    later = [{"type": 3, "timestamp": T0 + 3, "data": {"source": 1, "positions": []}}]
    with compaction_stopped_at_its_write(recording):
        ingest, waited = started(lambda: send(Client(), recording.project, "3", later))
    ingest.join(timeout=30)

    assert waited  # PostgreSQL: holding the ledger's row; SQLite: for its lock
    assert not ingest.is_alive() and ingest.error is None, ingest.error
    loose = SnapshotChunk.objects.filter(compacted_into="")
    assert list(loose.values_list("batch_id", flat=True)) == ["3"]
    recording.refresh_from_db()
    assert not recording.compacted
    events = recording_events(recording=recording)
    assert [event["timestamp"] for event in events] == [T0, T0 + 1, T0 + 2, T0 + 3]
