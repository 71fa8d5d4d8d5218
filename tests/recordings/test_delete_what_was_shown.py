"""A delete by filter removes exactly the set that was counted and confirmed.

The issue's two cases, with real recordings pinned to a playlist or viewed: terms
that mean something only for the person asking ("in a playlist" they see,
"viewed by me") keep their meaning when the set is large enough to be deleted in
the background, and the audit entry gives what was really deleted.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.test import override_settings
from django.urls import reverse

from playlists.services import playlist_create, playlist_pin
from privacy.models import PrivacyAuditEntry
from recordings import tasks
from recordings.models import Recording
from recordings.search.language.outline import outline
from recordings.services.curation import recording_view_record
from recordings.services.purge import recordings_purge_set
from recordings.services.storage import recording_purge, recordings_hold
from replayhub.celery import app
from tests.access import rrweb_events
from tests.base import ReplayTestCase
from tests.capture import send_rrweb

DELETE = "/api/v1/recordings/delete/"
DELETE_MATCHING = "admin:recordings_recording_delete_matching"
KEPT = 3
OTHERS = 5


class DeleteWhatWasShownCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        events = rrweb_events("signup")
        for n in range(KEPT + OTHERS):
            send_rrweb(self.client, self.project.token, f"b{n}", events, f"s{n}")
        self.recordings = list(Recording.objects.order_by("session_id"))
        self.kept = self.recordings[:KEPT]
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)
        self.client.force_login(self.alice)

    def left(self) -> set[str]:
        return set(Recording.objects.values_list("session_id", flat=True))

    def audited(self) -> dict[str, Any]:
        (entry,) = PrivacyAuditEntry.objects.filter(project=self.project)
        self.assertEqual(entry.actor, self.alice)
        details: dict[str, Any] = entry.changes["delete_by_filter"][1]
        return details


@override_settings(REPLAYHUB_PURGE_SYNC_MAX=2)
class ApiDeleteTests(DeleteWhatWasShownCase):
    def setUp(self) -> None:
        super().setUp()
        self.playlist = playlist_create(
            project=self.project, owner=self.alice, name="Curated"
        )
        playlist_pin(playlist=self.playlist, recordings=self.kept, user=self.alice)
        self.filter = {
            "version": 1,
            "where": {
                "not": {"term": "in_playlist", "playlist": str(self.playlist.code)}
            },
        }

    def delete(self, **body: Any) -> Any:
        body = {"filter": self.filter, **body}
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(DELETE, body, content_type="application/json")

    def test_the_background_task_deletes_what_the_dry_run_counted(self) -> None:
        counted = self.delete().json()
        self.assertEqual((counted["matched"], counted["held"]), (OTHERS, 0))
        done = self.delete(dry_run=False, expected=counted["fingerprint"]).json()
        self.assertEqual((done["queued"], done["matched"]), (True, OTHERS))
        self.assertEqual(self.left(), {r.session_id for r in self.kept})
        self.assertEqual(self.playlist.pins.count(), KEPT)
        audit = self.audited()
        self.assertEqual(audit["deleted"], counted["matched"])
        # The filter's terms and hash; its values may name a person.
        self.assertEqual(audit["filter"], outline(self.filter))
        self.assertEqual(audit["filter"]["terms"], ["in_playlist"])
        self.assertEqual(audit["via"], "api")
        others = {str(r.code) for r in self.recordings[KEPT:]}
        self.assertEqual(set(audit["recordings"]), others)
        self.assertEqual((audit["kept_on_legal_hold"], audit["failed"]), (0, 0))

    def test_a_set_that_changed_since_the_count_is_refused(self) -> None:
        counted = self.delete().json()
        events = rrweb_events("signup")
        send_rrweb(self.client, self.project.token, "late", events, "late-session")
        response = self.delete(dry_run=False, expected=counted["fingerprint"])
        self.assertEqual(response.status_code, 409)
        body = response.json()
        self.assertEqual(body["error"], "set_changed")
        self.assertEqual(body["matched"], OTHERS + 1)
        self.assertNotEqual(body["fingerprint"], counted["fingerprint"])
        self.assertEqual(len(self.left()), KEPT + OTHERS + 1)
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_a_hold_placed_since_the_count_changes_the_set(self) -> None:
        counted = self.delete().json()
        recordings_hold(recordings=self.recordings[-1:], hold=True, actor=None)
        response = self.delete(dry_run=False, expected=counted["fingerprint"])
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json()["held"], 1)


class PurgeByIdTests(DeleteWhatWasShownCase):
    def test_it_deletes_only_the_ids_it_was_given(self) -> None:
        found = recordings_purge_set(
            recordings=Recording.objects.filter(pk__in=[r.pk for r in self.recordings])
        )
        gone, held = self.recordings[0], self.recordings[1]
        recording_purge(recording=gone)
        recordings_hold(recordings=[held], hold=True, actor=None)
        PrivacyAuditEntry.objects.all().delete()
        send_rrweb(self.client, self.project.token, "x", rrweb_events("signup"), "new")
        report = tasks.recordings_purge(list(found.ids), self.alice.pk, "test", {})
        self.assertEqual(
            report,
            {"matched": 8, "deleted": 6, "held": 1, "failed": 0, "gone": 1},
        )
        self.assertEqual(self.left(), {held.session_id, "new"})
        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual(entry.changes["test"][1]["deleted"], 6)


@override_settings(REPLAYHUB_PURGE_SYNC_MAX=2)
class AdminDeleteTests(DeleteWhatWasShownCase):
    def setUp(self) -> None:
        super().setUp()
        for recording in self.kept:
            recording_view_record(recording=recording, user=self.alice)
        self.filter = {"version": 1, "where": {"not": {"term": "viewed", "by": "me"}}}
        query = urlencode({"filter": json.dumps(self.filter)})
        self.url = f"{reverse(DELETE_MATCHING)}?{query}"

    def test_the_background_task_deletes_what_the_page_counted(self) -> None:
        page = self.client.get(self.url)
        shown = page.context["to_delete"]
        self.assertEqual(shown, OTHERS)
        self.assertContains(page, f"Yes, delete {OTHERS} recordings")
        with self.captureOnCommitCallbacks(execute=True) as queued:
            response = self.client.post(
                self.url, {"fingerprint": page.context["fingerprint"]}, follow=True
            )
        self.assertEqual(len(queued), 1)  # the background task
        self.assertContains(response, f"Deleting {OTHERS} recording(s)")
        self.assertEqual(self.left(), {r.session_id for r in self.kept})
        audit = self.audited()
        self.assertEqual(audit["deleted"], shown)
        self.assertEqual(
            (audit["filter"], audit["via"]), (outline(self.filter), "admin")
        )

    def test_a_set_that_changed_since_the_page_shows_the_new_counts(self) -> None:
        page = self.client.get(self.url)
        events = rrweb_events("signup")
        send_rrweb(self.client, self.project.token, "late", events, "late-session")
        response = self.client.post(
            self.url, {"fingerprint": page.context["fingerprint"]}
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Nothing was deleted")
        self.assertEqual(response.context["to_delete"], OTHERS + 1)
        self.assertContains(response, f"Yes, delete {OTHERS + 1} recordings")
        self.assertEqual(len(self.left()), KEPT + OTHERS + 1)

    def test_a_confirmation_without_the_pages_fingerprint_deletes_nothing(
        self,
    ) -> None:
        response = self.client.post(self.url)
        self.assertContains(response, "Nothing was deleted")
        self.assertEqual(len(self.left()), KEPT + OTHERS)
