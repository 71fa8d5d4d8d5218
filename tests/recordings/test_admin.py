from __future__ import annotations

from django.urls import reverse
from django.utils.html import escape

from recordings.models import Recording, SnapshotChunk
from recordings.services.compaction import recording_compact
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded


class RecordingAdminTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        captured("04-s-gzip-fullsnapshot").send(self.client)
        self.recording = Recording.objects.get()

    def test_the_list_shows_recordings_newest_first(self) -> None:
        captured("08b-s-idle-rotation-new-session").send(self.client)
        self.client.force_login(self.alice)
        response = self.client.get(reverse("admin:recordings_recording_changelist"))
        self.assertEqual(response.status_code, 200)
        rows = list(response.context["cl"].result_list)
        self.assertEqual(len(rows), 2)
        self.assertGreater(rows[0].started_at, rows[1].started_at)
        html = response.content.decode()
        self.assertIn(escape(self.recording.first_url), html)
        self.assertIn(
            reverse("admin:recordings_recording_play", args=[self.recording.code]), html
        )

    def test_the_player_page_loads_rrweb_and_the_events(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.get(self.recording.player_url())
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertIn("vendor/rrweb/rrweb.umd.min.cjs", html)
        # The timeline is in the page (as the timeline view answers it), and the
        # first segment is preloaded from the head.
        timeline_url = reverse(
            "admin:recordings_recording_timeline", args=[self.recording.code]
        )
        inline = response.context["timeline"]
        self.assertEqual(inline, self.client.get(timeline_url).json())
        self.assertIn('id="replayhub-timeline"', html)
        (window,) = inline["windows"]
        first = window["segments"][0]["url"]
        self.assertIn(f'<link rel="preload" href="{escape(first)}"', html)
        events = self.client.get(first).json()
        expected = [
            e
            for item in decoded("04-s-gzip-fullsnapshot")
            for e in item["properties"]["$snapshot_data"]
        ]
        self.assertEqual(len(events), len(expected))
        self.assertEqual(events, sorted(expected, key=lambda e: e["timestamp"]))

    def test_the_player_page_lets_only_its_own_script_files_run(self) -> None:
        # The replay iframe inherits this policy: a recorded page's handlers never
        # run (tests/e2e/test_canvas_replay.py shows it in Chromium).
        self.client.force_login(self.alice)
        response = self.client.get(self.recording.player_url())
        policy = response["Content-Security-Policy"]
        self.assertIn("script-src 'self'", policy)
        self.assertNotIn("unsafe-inline", policy)

    def test_the_rrweb_player_bundle_is_served(self) -> None:
        from django.contrib.staticfiles import finders

        self.assertIsNotNone(finders.find("vendor/rrweb-player/rrweb-player.umd.cjs"))
        self.assertIsNotNone(finders.find("vendor/rrweb-player/style.css"))

    def test_recordings_are_not_addressed_by_their_primary_key(self) -> None:
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_recording_play", args=[self.recording.pk])
        self.assertEqual(self.client.get(url).status_code, 404)

    def test_outsiders_cannot_watch(self) -> None:
        url = self.recording.player_url()
        self.client.force_login(self.charlie)  # not staff
        response = self.client.get(url)
        self.assertEqual(response.status_code, 302)
        self.assertIn(reverse("admin:login"), response["Location"])
        events_url = reverse(
            "admin:recordings_recording_snapshots", args=[self.recording.code]
        )
        self.assertEqual(self.client.get(events_url).status_code, 302)

    def test_deleting_a_recording_deletes_its_blobs(self) -> None:
        recording_compact(recording=self.recording)  # its window blob
        self.assertTrue(self.stored_blobs())
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_recording_delete", args=[self.recording.code])
        response = self.client.post(url, {"post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(Recording.objects.count(), 0)
        self.assertEqual(SnapshotChunk.objects.count(), 0)
        self.assertEqual(self.stored_blobs(), [])


class ProjectAdminTests(ReplayTestCase):
    def test_the_project_page_shows_token_and_snippet(self) -> None:
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_project_change", args=[self.project.pk])
        html = self.client.get(url).content.decode()
        self.assertIn(self.project.token, html)
        self.assertIn("posthog.init(&quot;" + self.project.token, html)
        self.assertIn("http://localhost:8000/static/array.js", html)


class IngestedRowsAreReadOnlyTests(ReplayTestCase):
    def test_captured_rows_cannot_be_added_or_edited_in_the_admin(self) -> None:
        self.client.force_login(self.alice)
        for model in ("recording", "event", "sessionledger", "person"):
            with self.subTest(model):
                url = reverse(f"admin:recordings_{model}_add")
                self.assertEqual(self.client.get(url).status_code, 403)
