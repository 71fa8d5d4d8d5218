"""Erasure requests (GDPR Art. 17): a person's data goes, their late batches too."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils.timezone import now

from privacy import erasure, policy
from privacy.models import ErasureRequest, PrivacyAuditEntry, Tombstone
from privacy.tasks import erasures_resume as erasures_resume_task
from recordings.access import Role
from recordings.models import (
    Event,
    Marker,
    Person,
    Project,
    Recording,
    SessionLedger,
    SnapshotChunk,
    WindowBlob,
)
from recordings.services.compaction import recording_compact
from recordings.services.curation import (
    comment_create,
    recording_view_record,
    recordings_tag,
    tag_get_or_create,
)
from recordings.services.projects import role_grant
from replayhub.celery import app
from tests.access import rrweb_events
from tests.base import ReplayTestCase
from tests.capture import send_rrweb

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

JANE, JANE_ANON, BOB = "jane@example.org", "anon-jane-0001", "bob@example.org"
KEPT_ELSEWHERE = "other-jane-session"  # Jane's session in another project


class ErasureTestCase(ReplayTestCase):
    """Jane: one session as an anonymous visitor, one identified, her person with
    that anonymous id; Bob: one session. Another project, charlie's, has a Jane too.

    The project is alice's (bob her viewer), as ReplayTestCase makes it.
    """

    project_name = "Shop"

    def setUp(self) -> None:
        super().setUp()
        self.other = self.make_charlies_project("Other shop")
        self.record(self.project, "jane-anon-session", JANE_ANON)
        self.record(self.project, "jane-session", JANE)
        self.record(self.project, "bob-session", BOB)
        self.record(self.other, "other-jane-session", JANE)
        # An erasure finds some sessions compacted into blobs, others still live
        # (their bytes in their chunk rows).
        for session in ("jane-anon-session", "bob-session", "other-jane-session"):
            recording = Recording.objects.get(session_id=session)
            recording_compact(recording=recording)
        Person.objects.create(
            project=self.project,
            distinct_id=JANE,
            properties={"email": JANE},
            anon_distinct_ids=[JANE_ANON],
        )
        Person.objects.create(project=self.project, distinct_id=BOB)
        Person.objects.create(project=self.other, distinct_id=JANE)

    def record(self, project: Project, session: str, distinct_id: str) -> None:
        body = {
            "token": project.token,
            "session_id": session,
            "window_id": "w",
            "batch_id": f"{session}-1",
            "distinct_id": distinct_id,
            "events": rrweb_events("signup"),
        }
        response = self.client.post(
            "/api/v1/ingest/rrweb/", json.dumps(body), content_type="application/json"
        )
        self.assertEqual(response.status_code, 200, response.content)
        Event.objects.create(
            project=project,
            uuid=f"{session}-event",
            name="$pageview",
            distinct_id=distinct_id,
            session_id=session,
            timestamp=Recording.objects.get(session_id=session).started_at,
        )

    def erase(self, *ids: str, dry_run: bool = False) -> ErasureRequest:
        request = erasure.erasure_request(
            project=self.project, distinct_ids=list(ids), actor=None, dry_run=dry_run
        )
        if not dry_run:
            erasure.erasure_run(request=request)
            request.refresh_from_db()
        return request

    def sessions(self, model: type[Recording | Event | SessionLedger]) -> set[str]:
        return set(model.objects.values_list("session_id", flat=True))

    def blobs_of(self, session: str) -> list[str]:
        return [p.name for p in self.stored_blobs() if p.parent.name == session]

    def rows_of(self, session: str) -> list[bytes]:
        chunks = SnapshotChunk.objects.filter(recording__session_id=session)
        return [bytes(d) for d in chunks.values_list("data", flat=True) if d]


class ErasureTests(ErasureTestCase):
    def test_it_deletes_the_person_and_every_session_they_had(self) -> None:
        self.assertTrue(self.blobs_of("jane-anon-session"))
        self.assertTrue(self.rows_of("jane-session"))
        markers = Marker.objects.filter(
            recording__session_id__in=["jane-session", "jane-anon-session"]
        ).count()
        self.assertGreater(markers, 0)
        segmented = WindowBlob.objects.filter(recording__session_id="jane-anon-session")
        self.assertTrue(segmented.exists())

        request = self.erase(JANE)

        kept = {"bob-session", "other-jane-session"}
        self.assertEqual(self.sessions(Recording), kept)
        self.assertEqual(self.sessions(Event), kept)
        self.assertEqual(self.sessions(SessionLedger), kept)
        self.assertEqual(self.blobs_of("jane-session"), [])
        self.assertEqual(self.blobs_of("jane-anon-session"), [])
        self.assertEqual(self.rows_of("jane-session"), [])
        self.assertFalse(
            SnapshotChunk.objects.filter(
                recording__session_id__in=["jane-session", "jane-anon-session"]
            ).exists()
        )
        # The compacted one's segment index (its blob key names the session) too.
        self.assertFalse(
            WindowBlob.objects.filter(
                recording__session_id__in=["jane-session", "jane-anon-session"]
            ).exists()
        )
        self.assertFalse(
            WindowBlob.objects.filter(key__contains="jane-anon-session").exists()
        )
        self.assertEqual(
            set(Person.objects.values_list("project__name", "distinct_id")),
            {("Shop", BOB), ("Other shop", JANE)},
        )
        self.assertEqual(request.status, ErasureRequest.Status.DONE)
        receipt = request.receipt
        self.assertEqual(
            (receipt["recordings"], receipt["events"], receipt["people"]), (2, 2, 1)
        )
        self.assertEqual(receipt["ledger_rows"], 2)
        # jane-anon-session was compacted: its markers went with it, and count.
        self.assertEqual(receipt["markers"], markers)
        self.assertFalse(
            Marker.objects.filter(
                recording__session_id__in=["jane-session", "jane-anon-session"]
            ).exists()
        )
        self.assertEqual(receipt["distinct_ids"], 2)  # Jane and her anonymous id

    def test_no_blob_folder_is_left_named_after_an_erased_session(self) -> None:
        self.erase(JANE)
        folders = {p.name for p in self.blob_dir.rglob("*") if p.is_dir()}
        self.assertFalse(folders & {"jane-session", "jane-anon-session"}, folders)
        self.assertLessEqual({"bob-session", "other-jane-session"}, folders)

    def test_what_is_left_holds_no_personal_data(self) -> None:
        request = self.erase(JANE)
        (entry,) = PrivacyAuditEntry.objects.filter(project=self.project)
        self.assertEqual(request.pending_distinct_ids, [])
        for text in (json.dumps(entry.changes), json.dumps(request.receipt)):
            for secret in (JANE, JANE_ANON, "jane-session"):
                self.assertNotIn(secret, text)
        with connection.cursor() as cursor:
            cursor.execute("SELECT subject_hash FROM privacy_tombstone")
            hashes = {row[0] for row in cursor.fetchall()}
        self.assertEqual(
            hashes,
            {
                policy.subject_hash(self.project, JANE),
                policy.subject_hash(self.project, JANE_ANON),
            },
        )

    def test_a_dry_run_counts_and_deletes_nothing(self) -> None:
        request = self.erase(JANE, dry_run=True)
        self.assertEqual(request.status, ErasureRequest.Status.DRY_RUN)
        self.assertEqual(request.receipt["recordings"], 2)
        self.assertEqual(Recording.objects.count(), 4)
        self.assertFalse(Tombstone.objects.exists())
        self.assertEqual(request.pending_distinct_ids, [])

    def test_a_recording_on_legal_hold_is_kept_and_counted(self) -> None:
        held = Recording.objects.get(session_id="jane-session")
        Recording.objects.filter(pk=held.pk).update(legal_hold=True)

        request = self.erase(JANE)

        self.assertTrue(Recording.objects.filter(pk=held.pk).exists())
        self.assertIn("jane-session", self.sessions(Event))
        self.assertEqual(request.receipt["kept_on_legal_hold"], 1)
        self.assertEqual(request.receipt["recordings"], 1)

    def test_late_batches_of_the_erased_person_are_refused_and_not_stored(self) -> None:
        self.erase(JANE)
        body = {
            "token": self.project.token,
            "session_id": "jane-later",
            "window_id": "w",
            "distinct_id": JANE_ANON,
            "events": rrweb_events("signup"),
        }
        response = self.client.post(
            "/api/v1/ingest/rrweb/", json.dumps(body), content_type="application/json"
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["error"], "erased_person")
        self.assertFalse(Recording.objects.filter(session_id="jane-later").exists())
        ledger = SessionLedger.objects.get(session_id="jane-later")
        self.assertEqual(
            (ledger.distinct_id, ledger.last_refusal), ("", "erased_person")
        )
        # Bob, and Jane in another project, are recorded as before.
        send_rrweb(self.client, self.project.token, "b2", rrweb_events("signup"))
        send_rrweb(self.client, self.other.token, "o2", rrweb_events("signup"))

    def test_late_analytics_events_of_the_erased_person_are_dropped(self) -> None:
        self.erase(JANE)
        events = [
            {
                "event": "$pageview",
                "distinct_id": who,
                "uuid": f"u-{i}",
                "properties": {"token": self.project.token, "$session_id": "later"},
            }
            for i, who in enumerate((JANE, BOB))
        ]
        response = self.client.post(
            "/e/", json.dumps(events), content_type="application/json"
        )
        self.assertEqual(response.status_code, 200, response.content)
        names = set(
            Event.objects.filter(session_id="later").values_list(
                "distinct_id", flat=True
            )
        )
        self.assertEqual(names, {BOB})

    def test_a_second_pass_after_the_settle_time_catches_a_straggler(self) -> None:
        request = erasure.erasure_request(
            project=self.project, distinct_ids=[JANE], actor=None
        )
        erasure.erasure_run(request=request, final=False)
        # A batch admitted before capture saw the tombstone, committed after; from
        # Jane's anonymous id, whose person record the first pass deleted.
        Tombstone.objects.all().delete()
        self.record(self.project, "straggler", JANE_ANON)
        erasure.erasure_run(request=request, final=True)
        request.refresh_from_db()
        self.assertFalse(Recording.objects.filter(session_id="straggler").exists())
        self.assertEqual(request.receipt["recordings"], 3)
        self.assertEqual(request.status, ErasureRequest.Status.DONE)
        self.assertTrue(Tombstone.objects.exists())

    def test_beat_finishes_an_erasure_whose_task_was_lost(self) -> None:
        stalled = erasure.erasure_request(
            project=self.project, distinct_ids=[JANE], actor=None
        )
        ErasureRequest.objects.filter(pk=stalled.pk).update(
            created=now() - dt.timedelta(hours=1)
        )
        fresh = erasure.erasure_request(
            project=self.project, distinct_ids=[BOB], actor=None
        )
        entry = settings.CELERY_BEAT_SCHEDULE["resume-erasures"]
        self.assertEqual(entry["task"], "privacy.tasks.erasures_resume")
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)

        self.assertEqual(erasures_resume_task.delay().get(), 1)

        stalled.refresh_from_db()
        fresh.refresh_from_db()
        self.assertEqual(stalled.status, ErasureRequest.Status.DONE)
        self.assertEqual(fresh.status, ErasureRequest.Status.PENDING)
        self.assertEqual(self.sessions(Recording), {"bob-session", KEPT_ELSEWHERE})

    def test_the_command_prints_a_receipt(self) -> None:
        out = StringIO()
        call_command(
            "erase_person",
            "--project",
            "Shop",
            "--distinct-id",
            JANE,
            "--dry-run",
            stdout=out,
            stderr=StringIO(),
        )
        self.assertIn("would delete", out.getvalue())
        self.assertIn("recordings: 2", out.getvalue())
        self.assertEqual(Recording.objects.count(), 4)
        call_command(
            "erase_person",
            "--project",
            "Shop",
            "--distinct-id",
            JANE,
            stdout=out,
            stderr=StringIO(),
        )
        self.assertEqual(
            self.sessions(Recording), {"bob-session", "other-jane-session"}
        )


class ErasureAdminTests(ErasureTestCase):
    def login(self, role: Role) -> User:
        """alice for the admin role; bob, given `role`, for a lesser one."""
        user = self.alice if role == Role.ADMIN else self.bob
        role_grant(project=self.project, principal=user, role=role)
        user.is_staff = True  # as the users these replace had; it opens nothing
        user.save()
        self.client.force_login(user)
        return user

    def submit(self, *, dry_run: bool) -> _MonkeyPatchedWSGIResponse:
        data = {"project": self.project.pk, "distinct_ids": f"{JANE}\n\n{JANE}\n"}
        if dry_run:
            data["dry_run"] = "on"
        return self.client.post(reverse("admin:privacy_erasurerequest_add"), data)

    def test_an_admin_previews_then_erases(self) -> None:
        user = self.login(Role.ADMIN)
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)

        with self.captureOnCommitCallbacks(execute=True):
            self.submit(dry_run=True)
        preview = ErasureRequest.objects.get()
        self.assertEqual(preview.status, ErasureRequest.Status.DRY_RUN)
        self.assertEqual(preview.subjects, 1)
        self.assertEqual(Recording.objects.count(), 4)
        page = self.client.get(reverse("admin:privacy_erasurerequest_changelist"))
        self.assertContains(page, "would delete")

        with self.captureOnCommitCallbacks(execute=True):
            self.submit(dry_run=False)
        done = ErasureRequest.objects.exclude(pk=preview.pk).get()
        self.assertEqual(done.status, ErasureRequest.Status.DONE)
        self.assertEqual(done.requested_by, user)
        self.assertEqual(
            self.sessions(Recording), {"bob-session", "other-jane-session"}
        )

    def test_viewers_and_editors_cannot_erase(self) -> None:
        for role in (Role.VIEWER, Role.EDITOR):
            with self.subTest(role=role):
                self.login(role)
                response = self.submit(dry_run=False)
                self.assertEqual(response.status_code, 403)
        self.assertFalse(ErasureRequest.objects.exists())
        self.assertEqual(Recording.objects.count(), 4)

    def test_an_admin_cannot_erase_in_another_project(self) -> None:
        self.login(Role.ADMIN)
        data = {"project": self.other.pk, "distinct_ids": JANE, "dry_run": ""}
        response = self.client.post(reverse("admin:privacy_erasurerequest_add"), data)
        self.assertEqual(response.status_code, 200)  # the form, with an error
        self.assertFalse(ErasureRequest.objects.exists())
        self.assertIn("other-jane-session", self.sessions(Recording))


class ErasureOfCurationTests(ErasureTestCase):
    """Comments are staff's notes about the recorded person: an erasure deletes the
    comments, tags, views, playlist pins and share links on the erased person's
    recordings, counts them in the receipt, and leaves no byte of the id there."""

    def test_what_hangs_on_her_recordings_goes_and_is_counted(self) -> None:
        from playlists import services as playlists
        from playlists.models import Playlist, PlaylistPin, ShareLink, ShareLinkView
        from recordings.models import Comment, RecordingTag, RecordingView

        jane = Recording.objects.get(session_id="jane-session")
        bobs = Recording.objects.get(session_id="bob-session")
        for recording in (jane, bobs):
            comment_create(
                recording=recording,
                author=self.alice,
                text=f"{recording.distinct_id} could not pay",
                offset_ms=0,
            )
            recording_view_record(recording=recording, user=self.bob)
        tag = tag_get_or_create(project=self.project, name="payments")
        recordings_tag(recordings=[jane, bobs], tag=tag, user=self.alice)
        playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="Payments"
        )
        playlists.playlist_pin(playlist=playlist, recordings=[jane, bobs], user=None)
        _, token = playlists.share_link_create(target=jane, user=self.alice)
        playlists.share_link_open(token=token, user_agent="UA", ip_address=None)

        request = self.erase(JANE)

        receipt = request.receipt
        self.assertEqual(
            (receipt["comments"], receipt["pins"], receipt["share_links"]), (1, 1, 1)
        )
        self.assertEqual(
            list(Comment.objects.values_list("recording", flat=True)), [bobs.pk]
        )
        self.assertEqual(
            list(PlaylistPin.objects.values_list("recording", flat=True)), [bobs.pk]
        )
        self.assertEqual(
            list(RecordingTag.objects.values_list("recording", flat=True)), [bobs.pk]
        )
        self.assertEqual(
            list(RecordingView.objects.values_list("recording", flat=True)), [bobs.pk]
        )
        self.assertFalse(ShareLink.objects.exists())
        self.assertFalse(ShareLinkView.objects.exists())
        self.assertTrue(Playlist.objects.filter(pk=playlist.pk).exists())
        for model in (
            Comment,
            PlaylistPin,
            RecordingTag,
            RecordingView,
            ShareLink,
            ShareLinkView,
            Playlist,
        ):
            rows = json.dumps(list(model.objects.values()), default=str)
            self.assertNotIn(JANE, rows, model.__name__)
            self.assertNotIn("jane-session", rows, model.__name__)
