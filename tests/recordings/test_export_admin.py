"""The recording list's "Export selected" action and the API's export: who may,
what the files hold, and the audit of exports of recordings on legal hold."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.test import RequestFactory
from django.urls import reverse

from privacy.models import PrivacyAuditEntry
from recordings.admin import export
from recordings.models import Recording
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events, recordings_hold
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, send_rrweb, session_events

CHANGELIST = reverse("admin:recordings_recording_changelist")


class ExportSelectedTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        events = session_events("idle-rotation.0")
        send_rrweb(self.client, FIXTURE_TOKEN, "a1", events, "one", "tab")
        send_rrweb(self.client, FIXTURE_TOKEN, "b1", events[:50], "two", "tab")
        for recording in Recording.objects.all():
            recording_compact(recording=recording)
        self.one = Recording.objects.get(session_id="one")
        self.two = Recording.objects.get(session_id="two")
        PrivacyAuditEntry.objects.all().delete()

    def post(self, *recordings: Recording, **data: str) -> Any:
        body = {
            "action": "export_selected",
            "_selected_action": [r.pk for r in recordings],
            **data,
        }
        return self.client.post(CHANGELIST, body)

    def files(self, response: Any) -> dict[str, Any]:
        self.assertIsInstance(response, StreamingHttpResponse)
        self.assertEqual(response["Content-Type"], "application/zip")
        with zipfile.ZipFile(io.BytesIO(response.getvalue())) as archive:
            return {name: json.loads(archive.read(name)) for name in archive.namelist()}

    def test_it_asks_for_the_format_first(self) -> None:
        self.client.force_login(self.bob)
        response = self.post(self.one)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'name="format" value="json"')
        self.assertContains(response, "1 recording selected")

    def test_a_viewer_gets_a_zip_of_the_json_documents(self) -> None:
        self.client.force_login(self.bob)  # a viewer: may play, so may export
        files = self.files(self.post(self.one, self.two, format="json", apply="1"))
        self.assertEqual(set(files), {f"{self.one.code}.json", f"{self.two.code}.json"})
        document = files[f"{self.one.code}.json"]
        self.assertEqual(document["format"], "replayhub-recording")
        self.assertEqual(document["version"], 1)
        self.assertEqual(document["recording"]["code"], str(self.one.code))
        self.assertEqual(
            document["windows"],
            {"tab": recording_events(recording=self.one, window_id="tab")},
        )
        self.assertEqual(len(document["markers"]), self.one.markers.count())
        self.assertFalse(PrivacyAuditEntry.objects.exists())  # nothing on hold

    def test_html_gives_a_page_per_recording_that_replays_offline(self) -> None:
        self.client.force_login(self.bob)
        response = self.post(self.one, self.two, format="html", apply="1")
        with zipfile.ZipFile(io.BytesIO(response.getvalue())) as archive:
            pages = {name: archive.read(name) for name in archive.namelist()}
        self.assertEqual(set(pages), {f"{self.one.code}.html", f"{self.two.code}.html"})
        # The same page the player's "Download offline HTML" gives.
        offline = reverse("admin:recordings_recording_offline", args=[self.one.code])
        alone = b"".join(self.client.get(offline).streaming_content)  # type: ignore[attr-defined]
        self.assertEqual(pages[f"{self.one.code}.html"], alone)
        self.assertNotIn(b"http://", pages[f"{self.one.code}.html"].split(b"<body")[0])

    def test_an_unknown_format_shows_the_page_again(self) -> None:
        self.client.force_login(self.bob)
        response = self.post(self.one, format="pdf", apply="1")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'name="format"')

    def test_an_outsider_gets_nothing(self) -> None:
        self.client.force_login(self.charlie)  # no role on the project
        self.make_charlies_project("Charlie's")  # so he may open the list at all
        response = self.post(self.one, format="json", apply="1")
        self.assertNotIsInstance(response, StreamingHttpResponse)
        self.assertIn(response.status_code, (302, 403))

    def test_a_selection_beyond_what_the_user_may_view_is_refused(self) -> None:
        # The list's scoping keeps other projects' rows out of the selection; the
        # action checks each recording again, as the player does.
        theirs = self.make_charlies_project("Charlie's")
        send_rrweb(self.client, theirs.token, "c1", session_events("main.0")[:20], "c")
        request = RequestFactory().post(CHANGELIST, {"format": "json", "apply": "1"})
        request.user = self.bob
        model_admin = admin.site._registry[Recording]
        with self.assertRaises(PermissionDenied):
            export.export_selected(model_admin, request, Recording.objects.all())

    def test_exporting_recordings_on_hold_is_audited(self) -> None:
        recordings_hold(recordings=[self.two], hold=True, actor=self.alice)
        PrivacyAuditEntry.objects.all().delete()
        self.client.force_login(self.bob)
        self.files(self.post(self.one, self.two, format="json", apply="1"))
        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual((entry.project, entry.actor), (self.project, self.bob))
        self.assertEqual(entry.actor_name, "bob")
        self.assertEqual(
            entry.changes,
            {
                "legal_hold_export": [None, {"format": "json", "via": "admin"}],
                "recordings": [None, [str(self.two.code)]],
            },
        )

    def test_the_api_export_of_a_held_recording_is_audited(self) -> None:
        url = f"/api/v1/recordings/{self.two.code}/export/"
        self.client.force_login(self.bob)
        self.client.get(url).getvalue()
        self.assertFalse(PrivacyAuditEntry.objects.exists())  # not on hold
        recordings_hold(recordings=[self.two], hold=True, actor=self.alice)
        PrivacyAuditEntry.objects.all().delete()
        document = json.loads(self.client.get(url).getvalue())
        self.assertEqual(document["format"], "replayhub-recording")
        self.assertIn("markers", document)
        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual(entry.actor, self.bob)
        self.assertEqual(entry.changes["legal_hold_export"][1]["via"], "api")
        self.assertEqual(entry.changes["recordings"], [None, [str(self.two.code)]])

    def test_the_offline_html_download_of_a_held_recording_is_audited(self) -> None:
        url = reverse("admin:recordings_recording_offline", args=[self.two.code])
        self.client.force_login(self.bob)
        self.client.get(url).getvalue()
        self.assertFalse(PrivacyAuditEntry.objects.exists())  # not on hold
        recordings_hold(recordings=[self.two], hold=True, actor=self.alice)
        PrivacyAuditEntry.objects.all().delete()
        page = self.client.get(url).getvalue()
        self.assertIn(b"<!doctype html>", page)
        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual((entry.project, entry.actor), (self.project, self.bob))
        self.assertEqual(
            entry.changes,
            {
                "legal_hold_export": [None, {"format": "html", "via": "admin"}],
                "recordings": [None, [str(self.two.code)]],
            },
        )

    def test_an_offline_download_that_storage_refuses_is_not_audited(self) -> None:
        recordings_hold(recordings=[self.two], hold=True, actor=self.alice)
        PrivacyAuditEntry.objects.all().delete()
        self.take_storage_down()
        self.client.force_login(self.bob)
        url = reverse("admin:recordings_recording_offline", args=[self.two.code])
        self.assertEqual(self.client.get(url).status_code, 503)
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_storage_that_is_down_is_a_message_not_a_broken_zip(self) -> None:
        self.take_storage_down()
        self.client.force_login(self.bob)
        response = self.post(self.one, format="json", apply="1")
        self.assertEqual(response.status_code, 302)
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        self.assertIn("Could not read the recordings' blobs: try again.", messages)

    def test_missing_data_is_a_message_and_marks_the_recording(self) -> None:
        for path in self.stored_blobs():
            path.unlink()
        self.client.force_login(self.bob)
        with self.assertLogs("recordings.services.storage", "ERROR"):
            response = self.post(self.one, format="json", apply="1")
        self.assertEqual(response.status_code, 302)
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        self.assertIn("data is missing from storage", messages[0])
        self.one.refresh_from_db()
        self.assertIsNotNone(self.one.data_missing_at)
