"""Curating in the admin: tags and "seen" on the list, the tag and playlist actions,
and the player page's tags, comments, watchers, playlist links and share links."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from playlists import access as playlist_access
from playlists import services as playlists
from playlists.models import PlaylistPin, ShareLink
from recordings import access
from recordings.models import Comment, Recording, RecordingTag, RecordingView, Tag
from recordings.services.curation import (
    comment_create,
    recording_view_record,
    recordings_tag,
    tag_get_or_create,
)
from tests.base import ReplayTestCase

T0 = now() - dt.timedelta(hours=2)
LIST = "admin:recordings_recording_changelist"


class CurationAdminCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", access.Role.EDITOR)
        self.recs = [
            Recording.objects.create(
                project=self.project,
                session_id=f"s{k}",
                started_at=T0 + dt.timedelta(minutes=k),
                ended_at=T0 + dt.timedelta(minutes=k + 1),
                duration_ms=60_000,
            )
            for k in range(3)
        ]

    def play_url(self, recording: Recording) -> str:
        return reverse("admin:recordings_recording_play", args=[recording.code])

    def comments_url(self, recording: Recording) -> str:
        return reverse("admin:recordings_recording_comments", args=[recording.code])

    def tags_url(self, recording: Recording) -> str:
        return reverse("admin:recordings_recording_tags", args=[recording.code])

    def act(self, action: str, recordings: list[Recording], **data: str) -> Any:
        return self.client.post(
            reverse(LIST),
            {
                "action": action,
                "_selected_action": [r.pk for r in recordings],
                **data,
            },
        )


class RecordingListTests(CurationAdminCase):
    def test_it_shows_tag_chips_and_only_my_views(self) -> None:
        bug = tag_get_or_create(project=self.project, name="bug")
        recordings_tag(recordings=self.recs[:1], tag=bug, user=self.alice)
        recording_view_record(recording=self.recs[1], user=self.bob)
        recording_view_record(recording=self.recs[2], user=self.alice)
        self.client.force_login(self.alice)
        response = self.client.get(reverse(LIST))
        self.assertContains(response, 'class="replayhub-tag"', count=1)
        rows = {r.session_id: r.seen for r in response.context["cl"].result_list}
        self.assertEqual(rows, {"s0": False, "s1": False, "s2": True})

    def test_the_list_queries_do_not_grow_with_tags(self) -> None:
        bug = tag_get_or_create(project=self.project, name="bug")
        recordings_tag(recordings=self.recs, tag=bug, user=self.alice)
        self.client.force_login(self.alice)
        self.client.get(reverse(LIST))
        with CaptureQueriesContext(connection) as few:
            self.client.get(reverse(LIST))
        more = tag_get_or_create(project=self.project, name="more")
        recordings_tag(recordings=self.recs, tag=more, user=self.alice)
        for k in range(3, 8):
            Recording.objects.create(
                project=self.project, session_id=f"s{k}", started_at=T0, ended_at=T0
            )
        with CaptureQueriesContext(connection) as many:
            self.client.get(reverse(LIST))
        self.assertEqual(len(many), len(few))

    def test_save_as_playlist_shows_with_a_filter_for_editors(self) -> None:
        document = {"version": 1, "where": {"term": "session_id", "in": ["s1"]}}
        query = {"filter": json.dumps(document)}
        self.client.force_login(self.erin)
        response = self.client.get(reverse(LIST), query)
        self.assertContains(response, "replayhub-save-as-playlist")
        self.assertIn(
            reverse("admin:playlists_playlist_add"),
            response.context["save_as_playlist_url"],
        )
        self.assertNotContains(
            self.client.get(reverse(LIST)), "replayhub-save-as-playlist"
        )
        self.client.force_login(self.bob)
        self.assertNotContains(
            self.client.get(reverse(LIST), query), "replayhub-save-as-playlist"
        )

    def test_editors_tag_selected_recordings(self) -> None:
        self.client.force_login(self.erin)
        page = self.act("tag_selected", self.recs[:2])
        self.assertContains(page, 'name="tag_name"')
        self.act("tag_selected", self.recs[:2], apply="1", tag_name=" Needs  design ")
        tag = Tag.objects.get(project=self.project)
        self.assertEqual(tag.name, "Needs design")
        self.assertEqual(RecordingTag.objects.filter(tag=tag).count(), 2)

    def test_viewers_may_not_tag(self) -> None:
        self.client.force_login(self.bob)
        self.act("tag_selected", self.recs[:1], apply="1", tag_name="nope")
        self.assertFalse(RecordingTag.objects.exists())

    def test_editors_add_selected_recordings_to_a_playlist(self) -> None:
        mine = playlists.playlist_create(
            project=self.project, owner=self.erin, name="mine"
        )
        theirs = playlists.playlist_create(
            project=self.project, owner=self.alice, name="alice's"
        )
        self.client.force_login(self.erin)
        page = self.act("add_to_playlist", self.recs[:1])
        choices = dict(page.context["form"].fields["playlist"].choices)
        self.assertIn(str(mine.code), choices)
        self.assertNotIn(str(theirs.code), choices)  # not shared with erin
        self.act("add_to_playlist", self.recs[:2], apply="1", playlist=str(mine.code))
        self.assertEqual(PlaylistPin.objects.filter(playlist=mine).count(), 2)
        self.act("add_to_playlist", self.recs[2:], apply="1", new_name="fresh")
        fresh = PlaylistPin.objects.get(playlist__name="fresh")
        self.assertEqual(fresh.playlist.owner, self.erin)
        self.assertEqual(fresh.recording, self.recs[2])

    def test_viewers_may_not_add_to_playlists(self) -> None:
        self.client.force_login(self.bob)
        self.act("add_to_playlist", self.recs[:1], apply="1", new_name="nope")
        self.assertFalse(PlaylistPin.objects.exists())


class PlayerPageTests(CurationAdminCase):
    def test_opening_it_records_the_view(self) -> None:
        self.client.force_login(self.bob)
        self.client.get(self.play_url(self.recs[0]))
        self.client.get(self.play_url(self.recs[0]))
        view = RecordingView.objects.get(recording=self.recs[0], user=self.bob)
        self.assertEqual(view.count, 2)

    def test_viewers_comment_at_a_moment(self) -> None:
        self.client.force_login(self.bob)
        response = self.client.post(
            self.comments_url(self.recs[0]),
            {"op": "add", "text": "look here", "offset_ms": "12500", "window_id": "w"},
        )
        self.assertEqual(response.status_code, 302)
        self.assertIn("t=12", response["Location"])
        comment = Comment.objects.get()
        self.assertEqual(
            (comment.author, comment.offset_ms, comment.window_id),
            (self.bob, 12500, "w"),
        )
        page = self.client.get(self.play_url(self.recs[0]))
        # The comment, its edit box, its marker, and the player's timeline.
        self.assertContains(page, "look here", count=4)
        timeline = page.context["timeline"]
        self.assertEqual([c["text"] for c in timeline["comments"]], ["look here"])
        self.assertContains(page, 'href="?t=12"')

    def test_outsiders_may_not_comment(self) -> None:
        self.client.force_login(self.charlie)
        self.client.post(self.comments_url(self.recs[0]), {"text": "x"})
        self.assertFalse(Comment.objects.exists())

    def test_people_edit_only_their_own_comments(self) -> None:
        alices = comment_create(
            recording=self.recs[0], author=self.alice, text="alice's", offset_ms=0
        )
        bobs = comment_create(
            recording=self.recs[0], author=self.bob, text="bob's", offset_ms=0
        )
        self.client.force_login(self.bob)
        url = self.comments_url(self.recs[0])
        self.client.post(url, {"op": "edit", "comment": bobs.pk, "text": "better"})
        edit = self.client.post(
            url, {"op": "edit", "comment": alices.pk, "text": "hacked"}
        )
        self.assertEqual(edit.status_code, 403)
        delete = self.client.post(url, {"op": "delete", "comment": alices.pk})
        self.assertEqual(delete.status_code, 403)
        bobs.refresh_from_db()
        alices.refresh_from_db()
        self.assertEqual((bobs.text, alices.text), ("better", "alice's"))
        self.assertIsNotNone(bobs.edited)

    def test_project_admins_delete_any_comment(self) -> None:
        bobs = comment_create(
            recording=self.recs[0], author=self.bob, text="bob's", offset_ms=0
        )
        self.client.force_login(self.alice)
        page = self.client.get(self.play_url(self.recs[0]))
        self.assertContains(page, "replayhub-comment-delete")
        self.client.post(
            self.comments_url(self.recs[0]), {"op": "delete", "comment": bobs.pk}
        )
        self.assertFalse(Comment.objects.exists())

    def test_editors_tag_and_untag_on_the_page(self) -> None:
        self.client.force_login(self.erin)
        self.client.post(self.tags_url(self.recs[0]), {"name": "checkout"})
        tag = Tag.objects.get(name="checkout")
        self.assertContains(self.client.get(self.play_url(self.recs[0])), "checkout")
        self.client.post(self.tags_url(self.recs[0]), {"op": "remove", "tag": tag.pk})
        self.assertFalse(RecordingTag.objects.exists())

    def test_viewers_see_tags_but_may_not_tag(self) -> None:
        self.client.force_login(self.bob)
        page = self.client.get(self.play_url(self.recs[0]))
        self.assertNotContains(page, "replayhub-tag-form")
        response = self.client.post(self.tags_url(self.recs[0]), {"name": "x"})
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Tag.objects.exists())

    def test_who_watched_shows_only_when_the_project_says(self) -> None:
        recording_view_record(recording=self.recs[0], user=self.bob)
        self.client.force_login(self.alice)
        page = self.client.get(self.play_url(self.recs[0]))
        self.assertNotContains(page, "replayhub-watchers")
        self.project.show_who_watched = True
        self.project.save()
        page = self.client.get(self.play_url(self.recs[0]))
        self.assertContains(page, "replayhub-watchers")
        self.assertContains(page, "bob (")

    def test_it_links_previous_and_next_in_a_playlist(self) -> None:
        playlist = playlists.playlist_create(
            project=self.project, owner=self.erin, name="run"
        )
        playlists.playlist_pin(playlist=playlist, recordings=self.recs, user=self.erin)
        self.client.force_login(self.erin)
        page = self.client.get(
            self.play_url(self.recs[1]), {"playlist": str(playlist.code)}
        )
        self.assertEqual(page.context["playlist_previous"], self.recs[2])  # newest 1st
        self.assertEqual(page.context["playlist_next"], self.recs[0])
        self.assertContains(page, f"?playlist={playlist.code}", count=2)
        # bob cannot see it: no links, nothing said about it.
        self.client.force_login(self.bob)
        page = self.client.get(
            self.play_url(self.recs[1]), {"playlist": str(playlist.code)}
        )
        self.assertNotContains(page, "replayhub-playlist-nav")
        playlist_access.playlist_share(playlist=playlist, principal=self.bob)
        page = self.client.get(
            self.play_url(self.recs[1]), {"playlist": str(playlist.code)}
        )
        self.assertContains(page, "replayhub-playlist-nav")

    def test_it_keeps_its_content_security_policy(self) -> None:
        self.client.force_login(self.alice)
        page = self.client.get(self.play_url(self.recs[0]), {"t": "5"})
        self.assertIn("script-src 'self'", page["Content-Security-Policy"])
        self.assertNotRegex(page.content.decode(), r"<script>(?!\s*</script>)")
        self.assertEqual(page.context["start_seconds"], 5)


class ShareLinkFromPlayerTests(CurationAdminCase):
    def test_editors_make_a_link_shown_once(self) -> None:
        url = reverse("admin:recordings_recording_share_link", args=[self.recs[0].code])
        self.client.force_login(self.erin)
        response = self.client.post(url, {"days": "3", "max_views": "5"})
        self.assertContains(response, "http://testserver/share/rhs_")
        link = ShareLink.objects.get()
        self.assertEqual((link.recording, link.max_views), (self.recs[0], 5))
        self.assertNotContains(self.client.get(url), "/share/rhs_")

    def test_viewers_may_not(self) -> None:
        url = reverse("admin:recordings_recording_share_link", args=[self.recs[0].code])
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post(url, {"days": "3"}).status_code, 403)
        self.assertFalse(ShareLink.objects.exists())

    def test_it_shows_the_projects_limit(self) -> None:
        url = reverse("admin:recordings_recording_share_link", args=[self.recs[0].code])
        self.client.force_login(self.erin)
        response = self.client.post(url, {"days": "400"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "1 to 30 days")
        self.assertFalse(ShareLink.objects.exists())
