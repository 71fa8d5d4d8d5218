from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection
from django.urls import reverse

from privacy.policy import privacy_for
from recordings.models import Project, Recording, SessionLedger
from recordings.services.ledger import project_capture_health
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured
from tests.s3 import unreachable_s3_storage

SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
# Statements that still run while "the database is down" for writes.
READS = ("SELECT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


class IngestLedgerTests(ReplayTestCase):
    """The ledger answers "why is this recording missing?"."""

    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        self.request = captured("04-s-gzip-fullsnapshot")

    def payload(self) -> Any:
        return self.request.decoded()

    def send(self, payload: Any) -> Any:
        return self.request.send_decoded(self.client, payload)

    def test_it_counts_accepted_batches_and_dropped_retries(self) -> None:
        self.request.send(self.client)
        self.request.send(self.client)  # a retry of the same batches
        ledger = SessionLedger.objects.get(session_id=SESSION)
        batches = len(self.payload())
        self.assertEqual(ledger.batches_accepted, batches)
        self.assertEqual(ledger.batches_duplicate, batches)
        self.assertEqual(ledger.batches_refused, 0)
        self.assertTrue(ledger.has_full_snapshot)
        self.assertEqual(ledger.lib_version, "1.449.2")
        self.assertEqual(ledger.verdict(), "stored")

    def test_it_explains_a_session_that_was_refused_entirely(self) -> None:
        payload = self.payload()
        payload[0]["properties"]["$snapshot_data"].append({"type": "x", "timestamp": 1})
        response = self.send(payload)
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Recording.objects.exists())
        ledger = SessionLedger.objects.get(session_id=SESSION)
        self.assertEqual(ledger.batches_refused, 1)
        self.assertEqual(ledger.refusals, {"invalid_event": 1})
        self.assertIn("every batch was refused", ledger.verdict())

    def test_it_notes_refusals_of_a_disabled_project(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(recording_enabled=False)
        self.assertEqual(self.request.send(self.client).status_code, 403)
        ledger = SessionLedger.objects.get(session_id=SESSION)
        self.assertEqual(ledger.refusals, {"recording_disabled": len(self.payload())})

    def test_it_notes_a_session_whose_batches_only_met_a_storage_failure(
        self,
    ) -> None:
        storages = {**settings.STORAGES, "recordings": unreachable_s3_storage()}
        with (
            # Only batches too big for rows (here: all) meet storage on capture.
            self.settings(STORAGES=storages, REPLAYHUB_INGEST_ROW_MAX_BYTES=0),
            self.assertLogs("recordings.capture.endpoints", "ERROR"),
        ):
            response = self.request.send(self.client)
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response.json()["error"], "temporarily_unavailable")
        self.assertFalse(Recording.objects.exists())
        ledger = SessionLedger.objects.get(session_id=SESSION)
        batches = len(self.payload())
        self.assertEqual(ledger.refusals, {"temporarily_unavailable": batches})
        self.assertEqual(ledger.batches_accepted, 0)

        self.assertEqual(self.request.send(self.client).status_code, 200)  # retried
        ledger.refresh_from_db()
        self.assertEqual(ledger.batches_accepted, batches)
        self.assertEqual(ledger.batches_refused, batches)

    def test_a_database_failure_is_still_one_503_when_the_ledger_fails_too(
        self,
    ) -> None:
        def database_down(
            execute: Callable[..., Any], sql: str, *args: Any, **kwargs: Any
        ) -> Any:
            # Reads of the project still work; every write fails, the ledger's too.
            statement = sql.lstrip().upper()
            if "FOR UPDATE" in statement or not statement.startswith(READS):
                raise OperationalError("server closed the connection unexpectedly")
            return execute(sql, *args, **kwargs)

        privacy_for(self.project)  # its default settings exist (a write) already
        with (
            connection.execute_wrapper(database_down),
            self.assertLogs("recordings", "ERROR") as logs,
        ):
            response = self.request.send(self.client)
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response["Retry-After"], "5")
        self.assertIn("could not note refusal", "\n".join(logs.output))
        self.assertFalse(SessionLedger.objects.exists())

    def test_it_flags_a_session_with_data_but_no_full_snapshot(self) -> None:
        payload = self.payload()
        for item in payload:
            events = item["properties"]["$snapshot_data"]
            item["properties"]["$snapshot_data"] = [e for e in events if e["type"] != 2]
        self.assertEqual(self.send(payload).status_code, 200)
        ledger = SessionLedger.objects.get(session_id=SESSION)
        self.assertIn("no full snapshot", ledger.verdict())
        recording = Recording.objects.get()
        self.assertEqual(
            recording.problems()[0], "no full snapshot: cannot be replayed"
        )

    def test_an_admin_finds_a_missing_recording_by_distinct_id(self) -> None:
        payload = self.payload()
        distinct_id = payload[0]["properties"]["distinct_id"]
        payload[0]["properties"]["$snapshot_data"].append({"type": "x", "timestamp": 1})
        self.send(payload)
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_sessionledger_changelist")
        response = self.client.get(url, {"q": distinct_id})
        self.assertEqual(response.status_code, 200)
        rows = list(response.context["cl"].result_list)
        self.assertEqual([row.session_id for row in rows], [SESSION])
        self.assertContains(response, "every batch was refused")

    def test_the_missing_rate_is_shown_per_sdk_version(self) -> None:
        self.request.send(self.client)  # 1.449.2, has a full snapshot
        payload = self.payload()
        for item in payload:
            item["uuid"] += "-b"
            item["properties"]["$session_id"] = "other-session"
            item["properties"]["$lib_version"] = "1.200.0"
            events = item["properties"]["$snapshot_data"]
            item["properties"]["$snapshot_data"] = [e for e in events if e["type"] != 2]
        self.send(payload)
        health = {
            h.lib_version: h
            for h in project_capture_health(project=self.project, days=30)
        }
        self.assertEqual((health["1.449.2"].total, health["1.449.2"].missing), (1, 0))
        self.assertEqual((health["1.200.0"].total, health["1.200.0"].missing), (1, 1))
        self.client.force_login(self.alice)
        page = self.client.get(
            reverse("admin:recordings_project_change", args=[self.project.pk])
        )
        self.assertContains(
            page, "<td>1.200.0</td><td>1</td><td>1</td><td>100.0%</td>", html=False
        )
