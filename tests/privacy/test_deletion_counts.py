"""Audits count the rows a deletion removed, not the rows it selected."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.utils.timezone import now

from privacy import erasure, retention
from privacy.models import PrivacyAuditEntry, PrivacySettings
from recordings.models import Event, Project, Recording, SessionLedger
from recordings.services.storage import recording_purge
from tests.base import ReplayTestCase

OLD = dt.timedelta(days=40)


def expired_session(project: Project, session: str, *, events: int = 1) -> Recording:
    """A recording past a 30-day retention, with its events and ledger row."""
    then = now() - OLD
    recording = Recording.objects.create(
        project=project,
        session_id=session,
        distinct_id=f"{session}-person",
        started_at=then,
        ended_at=then,
        last_batch_at=then,
    )
    SessionLedger.objects.create(project=project, session_id=session, last_seen=then)
    Event.objects.bulk_create(
        Event(
            project=project,
            uuid=f"{session}-{n}",
            name="$pageview",
            distinct_id=f"{session}-person",
            session_id=session,
            timestamp=then,
            created=then,
        )
        for n in range(events)
    )
    return recording


def vanishing_purge(*, recording: Recording) -> bool:
    """What another run does between a deletion's select and its delete."""
    Recording.objects.filter(pk=recording.pk).delete()
    return recording_purge(recording=recording)


class VanishedRecordingTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        PrivacySettings.objects.create(project=self.project, retention_days=30)
        self.gone = expired_session(self.project, "gone")

    def test_purging_a_recording_already_gone_says_so(self) -> None:
        self.assertIs(recording_purge(recording=self.gone), True)
        self.assertIs(recording_purge(recording=self.gone), False)

    def test_retention_does_not_count_a_recording_deleted_meanwhile(self) -> None:
        with mock.patch("privacy.retention.recording_purge", vanishing_purge):
            expiry = retention.project_expire(project=self.project, now=now())
        self.assertEqual(expiry.recordings, 0)
        self.assertEqual((expiry.events, expiry.ledger_rows), (1, 1))
        (entry,) = PrivacyAuditEntry.objects.filter(project=self.project)
        self.assertEqual(entry.changes["retention_expiry"][1]["recordings"], 0)

    def test_erasure_does_not_count_a_recording_deleted_meanwhile(self) -> None:
        request = erasure.erasure_request(
            project=self.project, distinct_ids=["gone-person"], actor=None
        )
        with mock.patch("privacy.erasure.recording_purge", vanishing_purge):
            receipt = erasure.erasure_run(request=request)
        self.assertEqual((receipt.recordings, receipt.events), (0, 1))
        self.assertFalse(Recording.objects.exists())


SESSIONS = 30
EVENTS_EACH = 40  # 1,200 events: rows_delete takes several batches


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_retention_runs_audit_each_row_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent writers: PostgreSQL only")
    project = Project.objects.create(name="Shop")
    PrivacySettings.objects.create(project=project, retention_days=30)
    for n in range(SESSIONS):
        expired_session(project, f"s{n}", events=EVENTS_EACH)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            retention.project_expire(project=project, now=now())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not Recording.objects.exists()
    audited = [
        entry.changes["retention_expiry"][1]
        for entry in PrivacyAuditEntry.objects.filter(project=project)
    ]
    totals: dict[str, Any] = {
        name: sum(summary[name] for summary in audited)
        for name in ("recordings", "events", "ledger_rows")
    }
    assert totals == {
        "recordings": SESSIONS,
        "events": SESSIONS * EVENTS_EACH,
        "ledger_rows": SESSIONS,
    }
