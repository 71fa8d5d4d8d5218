"""Retroactive redaction: a rule added today applies to recordings stored before."""

from __future__ import annotations

import gzip
import json
from io import StringIO
from typing import Any
from unittest import mock

import orjson
from django.core.management import call_command
from django.urls import reverse

from privacy import policy, services
from privacy.models import PrivacyAuditEntry, PrivacySettings
from privacy.scrub import REDACTED
from privacy.tasks import recordings_redact as recordings_redact_task
from recordings import blobs
from recordings.models import Person, Project, Recording, SnapshotChunk
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events, recording_window_blob
from replayhub.celery import app
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, full_session, send_rrweb

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
# Typed into the real session's signup form; posthog-js masked the input, but the
# network plugin recorded the signup request's body with it in clear.
EMAIL = "jane.doe@example.com"
EMAIL_PATTERN = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
T0 = 1_790_000_000_000


class RedactionTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        self.privacy = PrivacySettings.objects.create(project=self.project)
        for request in full_session():
            if request.path in ("/s/", "/e/", "/i/v0/e/"):
                self.assertEqual(request.send(self.client).status_code, 200)
        self.send_event(
            {"event": "signed_up", "properties": {"email": EMAIL}},
            {"event": "$set", "properties": {"$set": {"email": EMAIL}}},
        )
        self.recording = Recording.objects.get(session_id=MAIN_SESSION)
        self.before = recording_events(recording=self.recording)

    def send_event(self, *events: dict[str, Any]) -> None:
        batch = [
            {
                "uuid": f"custom-{index}-{event['event']}",
                "timestamp": "2026-11-22T09:45:00Z",
                **event,
                "properties": {
                    "distinct_id": "user-3b59bff5",
                    "$session_id": MAIN_SESSION,
                    **event["properties"],
                },
            }
            for index, event in enumerate(events)
        ]
        response = self.client.post(
            "/i/v0/e/",
            data={"api_key": FIXTURE_TOKEN, "batch": batch},
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 200)

    def add_rule(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.privacy, name, value)
        self.privacy.save()

    def blob_texts(self) -> list[str]:
        """Every stored batch (live rows) and blob, decompressed, as text."""
        return [gzip.decompress(data).decode() for data in self.stored_data()]

    def database_dump(self) -> str:
        out = StringIO()
        call_command("dumpdata", "recordings", stdout=out)
        return out.getvalue()

    def assert_still_plays(self) -> None:
        self.recording.refresh_from_db()
        after = recording_events(recording=self.recording)
        self.assertEqual(len(after), len(self.before))
        self.assertEqual(
            [e["timestamp"] for e in after], [e["timestamp"] for e in self.before]
        )
        self.assertEqual(self.recording.event_count, len(after))
        session_blobs = [p for p in self.stored_blobs() if MAIN_SESSION in str(p)]
        rows = self.recording.chunks.values_list("data", flat=True)
        self.assertEqual(
            self.recording.size_bytes,
            sum(p.stat().st_size for p in session_blobs)
            + sum(len(data) for data in rows if data is not None),
        )

    def assert_no_email_stored(self) -> None:
        self.assertFalse([text for text in self.blob_texts() if EMAIL in text])
        self.assertNotIn(EMAIL, self.database_dump())

    def test_the_email_was_stored_before_the_rule(self) -> None:
        # Otherwise the tests below prove nothing.
        self.assertTrue([text for text in self.blob_texts() if EMAIL in text])
        dump = self.database_dump()
        self.assertIn(EMAIL, dump)
        self.assertIn(EMAIL, json.dumps(Person.objects.get().properties))

    def test_a_new_pattern_is_redacted_from_live_chunks_events_and_people(
        self,
    ) -> None:
        self.add_rule(scrub_patterns=EMAIL_PATTERN)
        entry = services.recordings_redact(project=self.project, actor=self.alice)
        self.assert_no_email_stored()
        self.assert_still_plays()
        network = [e for e in self.stored_events() if REDACTED in json.dumps(e)]
        self.assertTrue(network)
        # The audit entry: who, when, how much, and nothing personal.
        self.assertEqual(entry.actor, self.alice)
        self.assertEqual(entry.actor_name, "alice")
        counts = entry.changes["retroactive_redaction"][1]
        self.assertEqual(counts["recordings"], 1)
        self.assertGreaterEqual(counts["blobs"], 1)
        self.assertGreaterEqual(counts["values"], 1)
        self.assertEqual(counts["analytics_events"], 2)  # signed_up and $set
        self.assertEqual(counts["people"], 1)
        self.assertEqual(counts["events_dropped"], 0)
        self.assertNotIn(EMAIL, json.dumps(entry.changes))
        self.assertEqual(PrivacyAuditEntry.objects.filter(pk=entry.pk).count(), 1)

    def test_compacted_recordings_are_redacted(self) -> None:
        self.assertEqual(recording_compact(recording=self.recording), 1)
        self.add_rule(scrub_patterns=EMAIL_PATTERN)
        entry = services.recordings_redact(project=self.project, actor=None)
        self.assert_no_email_stored()
        self.assert_still_plays()
        window = self.recording.window_ids()[0]
        blob = recording_window_blob(recording=self.recording, window_id=window)
        assert blob is not None
        self.assertEqual(len(orjson.loads(gzip.decompress(blob))), len(self.before))
        self.assertEqual(entry.changes["retroactive_redaction"][1]["blobs"], 1)
        self.assertEqual(entry.actor_name, "")

    def test_unchanged_blobs_are_not_rewritten(self) -> None:
        stamps = {path: path.stat().st_mtime_ns for path in self.stored_blobs()}
        entry = services.recordings_redact(project=self.project, actor=self.alice)
        self.assertEqual(
            {path: path.stat().st_mtime_ns for path in self.stored_blobs()}, stamps
        )
        counts = entry.changes["retroactive_redaction"][1]
        self.assertEqual(counts["blobs"], 0)
        self.assertEqual(counts["recordings"], 0)

    def test_an_ip_stored_before_the_project_stopped_storing_them_goes(self) -> None:
        self.add_rule(store_ip_addresses=True)
        self.send_event({"event": "$set", "properties": {"$set": {"plan": "team"}}})
        self.assertIn("127.0.0.1", self.database_dump())  # the test client's
        self.add_rule(store_ip_addresses=False)
        services.recordings_redact(project=self.project, actor=self.alice)
        self.assertNotIn('"$ip"', self.database_dump())

    def test_the_admin_action_queues_the_redaction(self) -> None:
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)
        self.add_rule(scrub_patterns=EMAIL_PATTERN)
        self.client.force_login(self.alice)
        url = reverse("admin:privacy_privacysettings_changelist")
        with self.captureOnCommitCallbacks(execute=True) as queued:
            response = self.client.post(
                url,
                {
                    "action": "apply_rules_to_stored_recordings",
                    "_selected_action": [self.privacy.pk],
                },
                follow=True,
            )
        self.assertEqual(len(queued), 1)
        self.assertContains(response, "in the background")
        self.assert_no_email_stored()
        entry = PrivacyAuditEntry.objects.get(changes__has_key="retroactive_redaction")
        self.assertEqual(entry.actor, self.alice)

    def test_the_task_loads_by_id_and_skips_a_deleted_project(self) -> None:
        self.add_rule(scrub_patterns=EMAIL_PATTERN)
        recordings_redact_task(self.project.pk, self.alice.pk)
        self.assert_no_email_stored()
        recordings_redact_task(self.project.pk + 1000, None)  # gone: nothing to do


class RedactionAcrossBatchesTests(ReplayTestCase):
    """A window's blobs are redacted in order with one state, as ingest saw them."""

    def send(self, batch_id: str, events: list[dict[str, Any]]) -> None:
        send_rrweb(self.client, self.project.token, batch_id, events)

    def test_a_new_mask_selector_masks_text_changed_in_later_chunks(self) -> None:
        text = {"type": 3, "textContent": "Hello", "id": 11}
        note = {
            "type": 2,
            "tagName": "p",
            "attributes": {"class": "note"},
            "childNodes": [text],
            "id": 10,
        }
        document = {"type": 0, "childNodes": [note], "id": 1}
        self.send(
            "1",
            [
                {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/"}},
                {"type": 2, "timestamp": T0 + 1, "data": {"node": document}},
            ],
        )
        change = {"source": 0, "texts": [{"id": 11, "value": "Jane Doe"}]}
        change |= {"attributes": [], "removes": [], "adds": []}
        self.send("2", [{"type": 3, "timestamp": T0 + 2, "data": change}])
        self.assertIn("Jane Doe", json.dumps(self.stored_events()))
        PrivacySettings.objects.filter(project=self.project).update(
            mask_selectors=".note"
        )
        services.recordings_redact(project=self.project, actor=None)
        stored = json.dumps(self.stored_events())
        self.assertNotIn("Jane Doe", stored)
        self.assertIn("**** ***", stored)
        self.assertNotIn("Hello", stored)

    def test_a_storage_failure_keeps_the_sizes_of_blobs_already_rewritten(
        self,
    ) -> None:
        # Batches too big for rows (here: all) are blobs in storage.
        with self.settings(REPLAYHUB_INGEST_ROW_MAX_BYTES=0):
            for batch_id in ("1", "2"):
                payload = {"tag": "signup", "payload": {"email": EMAIL}}
                self.send(batch_id, [{"type": 5, "timestamp": T0, "data": payload}])
        PrivacySettings.objects.filter(project=self.project).update(
            scrub_patterns=EMAIL_PATTERN
        )
        recording = Recording.objects.get()
        first, second = recording.chunks.order_by("created")
        open_raw = blobs.open_raw

        def second_unreadable(key: str) -> bytes:
            if key == second.blob_key:
                raise blobs.StorageError("storage unreachable")
            return open_raw(key)

        rules = policy.mask_rules_for(policy.privacy_for(Project.objects.get()))
        with (
            mock.patch.object(blobs, "open_raw", second_unreadable),
            self.assertRaises(blobs.StorageError),
        ):
            services.recording_redact(recording=recording, rules=rules)
        # The first blob was rewritten before the failure, and the rows say so.
        self.assert_sizes_match_blobs(recording)
        self.assertNotIn(EMAIL, gzip.decompress(self.blob(first).read_bytes()).decode())
        services.recording_redact(recording=recording, rules=rules)  # the retry
        self.assert_sizes_match_blobs(recording)
        self.assertNotIn(EMAIL, json.dumps(self.stored_events()))

    def blob(self, chunk: SnapshotChunk) -> Any:
        return self.blob_dir / chunk.blob_key

    def assert_sizes_match_blobs(self, recording: Recording) -> None:
        recording.refresh_from_db()
        chunks = list(recording.chunks.all())
        for chunk in chunks:
            self.assertEqual(chunk.size_bytes, self.blob(chunk).stat().st_size)
        self.assertEqual(recording.size_bytes, sum(c.size_bytes for c in chunks))
