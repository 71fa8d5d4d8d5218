"""Retention: a project's data goes after its period; legal holds keep it."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from unittest import mock

from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django.utils.timezone import now

from privacy import retention
from privacy.models import PrivacyAuditEntry, PrivacySettings
from privacy.tasks import projects_expire as projects_expire_task
from recordings.access import Role
from recordings.models import (
    Event,
    Marker,
    Project,
    Recording,
    SessionLedger,
    SnapshotChunk,
)
from recordings.services.compaction import recording_compact
from recordings.services.projects import project_delete, role_grant
from recordings.services.storage import (
    RecordingOnHold,
    recording_purge,
    recordings_hold,
)
from replayhub.celery import app
from tests.access import rrweb_events
from tests.base import ReplayTestCase
from tests.capture import send_rrweb

DAY = dt.timedelta(days=1)


class RetentionTestCase(ReplayTestCase):
    """One project keeping 30 days: an old, a held and a fresh session; another
    project, charlie's, keeping 90 days with a session as old as the first's.

    The first project is alice's (bob her viewer), as ReplayTestCase makes it.
    """

    project_name = "Shop"

    def setUp(self) -> None:
        super().setUp()
        PrivacySettings.objects.create(project=self.project, retention_days=30)
        self.other = self.make_charlies_project("Other shop")
        PrivacySettings.objects.create(project=self.other, retention_days=90)
        self.old = self.record(self.project, "old-session", age_days=40)
        self.held = self.record(self.project, "held-session", age_days=40)
        self.fresh = self.record(self.project, "fresh-session", age_days=2)
        self.other_old = self.record(self.other, "other-session", age_days=40)
        recordings_hold(recordings=[self.held], hold=True, actor=None)
        PrivacyAuditEntry.objects.all().delete()  # only what the tests do counts

    def record(self, project: Project, session: str, *, age_days: int) -> Recording:
        """A real recording ingested over HTTP, with an analytics event, aged;
        compacted into its blob, as any recording is long before it expires."""
        events = rrweb_events("signup")
        send_rrweb(self.client, project.token, f"{session}-1", events, session)
        recording_compact(recording=Recording.objects.get(session_id=session))
        then = now() - age_days * DAY
        Recording.objects.filter(session_id=session).update(last_batch_at=then)
        SessionLedger.objects.filter(session_id=session).update(last_seen=then)
        Event.objects.create(
            project=project,
            uuid=f"{session}-event",
            name="$pageview",
            distinct_id=f"{session}-person",
            session_id=session,
            timestamp=then,
            created=then,
        )
        return Recording.objects.get(session_id=session)

    def blob_names(self, recording: Recording) -> list[str]:
        return [p.name for p in self.stored_blobs() if recording.session_id in str(p)]

    def sessions_left(self, model: type[Recording | Event | SessionLedger]) -> set[str]:
        return set(model.objects.values_list("session_id", flat=True))


class ExpiryTests(RetentionTestCase):
    def test_it_deletes_what_is_past_retention_and_keeps_the_rest(self) -> None:
        self.assertTrue(self.blob_names(self.old))
        markers = Marker.objects.filter(recording=self.old).count()
        self.assertGreater(markers, 0)  # computed when it was compacted

        expiry = retention.project_expire(project=self.project, now=now())

        kept = {"held-session", "fresh-session", "other-session"}
        self.assertEqual(self.sessions_left(Recording), kept)
        self.assertEqual(self.sessions_left(Event), kept)
        self.assertEqual(self.sessions_left(SessionLedger), kept)
        self.assertFalse(SnapshotChunk.objects.filter(recording_id=self.old.pk))
        self.assertEqual(self.blob_names(self.old), [])
        self.assertFalse(
            (self.blob_dir / str(self.project.pk) / "old-session").exists()
        )
        self.assertTrue(self.blob_names(self.held))
        self.assertEqual(
            (expiry.recordings, expiry.events, expiry.ledger_rows, expiry.held),
            (1, 1, 1, 1),
        )
        self.assertEqual(expiry.bytes, self.old.size_bytes)
        self.assertEqual(expiry.markers, markers)
        self.assertFalse(Marker.objects.filter(recording_id=self.old.pk).exists())
        self.assertTrue(Marker.objects.filter(recording=self.held).exists())

    def test_a_hold_placed_during_the_run_keeps_that_recording(self) -> None:
        real_purge = recording_purge

        def hold_first(*, recording: Recording) -> None:
            Recording.objects.filter(pk=recording.pk).update(legal_hold=True)
            real_purge(recording=recording)

        with mock.patch("privacy.retention.recording_purge", hold_first):
            expiry = retention.project_expire(project=self.project, now=now())

        self.assertTrue(Recording.objects.filter(pk=self.old.pk).exists())
        self.assertTrue(self.blob_names(self.old))
        self.assertEqual((expiry.recordings, expiry.held), (0, 2))

    def test_each_project_keeps_its_own_period(self) -> None:
        retention.projects_expire(now=now())
        self.assertTrue(Recording.objects.filter(pk=self.other_old.pk).exists())
        retention.projects_expire(now=now() + 51 * DAY)
        self.assertFalse(Recording.objects.filter(pk=self.other_old.pk).exists())
        self.assertTrue(Recording.objects.filter(pk=self.held.pk).exists())

    def test_the_audit_entry_holds_counts_and_no_personal_data(self) -> None:
        retention.projects_expire(now=now())

        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual(entry.project, self.project)
        self.assertEqual(entry.actor_name, "retention")
        summary = entry.changes["retention_expiry"][1]
        self.assertEqual(summary["recordings"], 1)
        self.assertEqual(summary["kept_on_legal_hold"], 1)
        text = json.dumps(entry.changes)
        for secret in ("old-session", "old-session-person", "Jane"):
            self.assertNotIn(secret, text)

    def test_a_dry_run_counts_and_deletes_nothing(self) -> None:
        expiry = retention.project_expire(project=self.project, now=now(), dry_run=True)

        self.assertEqual((expiry.recordings, expiry.events), (1, 1))
        self.assertEqual(Recording.objects.count(), 4)
        self.assertTrue(self.blob_names(self.old))
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_the_command_reports_per_project(self) -> None:
        out, err = StringIO(), StringIO()
        call_command("expire_recordings", "--dry-run", stdout=out, stderr=err)
        self.assertIn("Shop: would delete 1 recording(s)", out.getvalue())
        self.assertIn("1 kept on legal hold", out.getvalue())
        self.assertIn("Other shop: would delete 0 recording(s)", out.getvalue())
        self.assertEqual(Recording.objects.count(), 4)

        call_command("expire_recordings", "--project", "Shop", stdout=out, stderr=err)
        self.assertIn("Shop: deleted 1 recording(s)", out.getvalue())
        self.assertFalse(Recording.objects.filter(pk=self.old.pk).exists())

    def test_beat_runs_it_daily(self) -> None:
        from django.conf import settings

        entry = settings.CELERY_BEAT_SCHEDULE["expire-recordings"]
        self.assertEqual(entry["task"], "privacy.tasks.projects_expire")
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)
        self.assertEqual(projects_expire_task.delay().get(), 1)
        self.assertFalse(Recording.objects.filter(pk=self.old.pk).exists())

    def test_the_api_says_when_a_recording_expires(self) -> None:
        self.client.force_login(self.alice)
        fresh = self.client.get(f"/api/v1/recordings/{self.fresh.code}/").json()
        held = self.client.get(f"/api/v1/recordings/{self.held.code}/").json()
        expected = self.fresh.last_batch_at + 30 * DAY
        self.assertEqual(dt.datetime.fromisoformat(fresh["expires_at"]), expected)
        self.assertIsNone(held["expires_at"])
        self.assertTrue(held["legal_hold"])


class LegalHoldTests(RetentionTestCase):
    def login(self, role: Role) -> User:
        """alice for the admin role; bob, given `role`, for a lesser one."""
        user = self.alice if role == Role.ADMIN else self.bob
        role_grant(project=self.project, principal=user, role=role)
        user.is_staff = True  # as the users these replace had; it opens nothing
        user.save()
        self.client.force_login(user)
        return user

    def test_a_held_recording_cannot_be_purged(self) -> None:
        with self.assertRaises(RecordingOnHold):
            recording_purge(recording=self.held)
        self.assertTrue(Recording.objects.filter(pk=self.held.pk).exists())
        self.assertTrue(self.blob_names(self.held))

    def test_the_api_answers_409_and_keeps_it(self) -> None:
        self.login(Role.ADMIN)
        response = self.client.delete(f"/api/v1/recordings/{self.held.code}/")
        self.assertEqual(response.status_code, 409, response.content)
        self.assertIn("legal hold", response.json()["detail"])
        self.assertTrue(Recording.objects.filter(pk=self.held.pk).exists())

    def test_the_admin_refuses_to_delete_it_or_its_project(self) -> None:
        # deleting a project is for superusers only
        self.client.force_login(self.make_root())
        url = reverse("admin:recordings_recording_changelist")
        data = {"action": "delete_selected", "_selected_action": [self.held.pk]}
        page = self.client.post(url, {**data, "post": "yes"})
        self.assertContains(page, "on legal hold")
        self.assertTrue(Recording.objects.filter(pk=self.held.pk).exists())

        url = reverse("admin:recordings_project_delete", args=[self.project.pk])
        page = self.client.post(url, {"post": "yes"})
        self.assertContains(page, "on legal hold")
        self.assertTrue(Project.objects.filter(pk=self.project.pk).exists())
        with self.assertRaises(RecordingOnHold):
            project_delete(project=self.project)
        self.assertTrue(Recording.objects.filter(pk=self.old.pk).exists())

    def test_a_project_admin_places_and_lifts_holds_with_an_audit_entry(self) -> None:
        user = self.login(Role.ADMIN)
        url = reverse("admin:recordings_recording_changelist")
        data = {"action": "place_legal_hold", "_selected_action": [self.old.pk]}
        self.client.post(url, data)
        self.old.refresh_from_db()
        self.assertTrue(self.old.legal_hold)
        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual(entry.actor, user)
        self.assertEqual(
            entry.changes,
            {"legal_hold": [False, True], "recordings": [None, [str(self.old.code)]]},
        )

        data = {"action": "lift_legal_hold", "_selected_action": [self.old.pk]}
        self.client.post(url, data)
        self.old.refresh_from_db()
        self.assertFalse(self.old.legal_hold)
        self.assertEqual(PrivacyAuditEntry.objects.count(), 2)

    def test_viewers_and_editors_cannot_place_holds(self) -> None:
        for role in (Role.VIEWER, Role.EDITOR):
            with self.subTest(role=role):
                self.login(role)
                url = reverse("admin:recordings_recording_changelist")
                data = {"action": "place_legal_hold", "_selected_action": [self.old.pk]}
                self.client.post(url, data)
                self.old.refresh_from_db()
                self.assertFalse(self.old.legal_hold)
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_an_admin_of_one_project_cannot_hold_anothers_recording(self) -> None:
        user = self.login(Role.ADMIN)
        role_grant(project=self.other, principal=user, role=Role.VIEWER)
        url = reverse("admin:recordings_recording_changelist")
        pks = [self.old.pk, self.other_old.pk]
        response = self.client.post(
            url, {"action": "place_legal_hold", "_selected_action": pks}
        )
        self.assertEqual(response.status_code, 403)
        self.assertFalse(
            Recording.objects.filter(legal_hold=True).exclude(pk=self.held.pk).exists()
        )

    def test_recording_rules_do_not_discard_a_held_recording(self) -> None:
        PrivacySettings.objects.filter(project=self.project).update(
            minimum_duration_ms=10**9
        )
        recording_compact(recording=self.held)
        recording_compact(recording=self.old)
        self.assertTrue(Recording.objects.filter(pk=self.held.pk).exists())
        self.assertFalse(Recording.objects.filter(pk=self.old.pk).exists())
