"""Curate and collaborate, the core: tags, comments, views, playlists (saved filter
and pins, counts of new), their filter terms, visibility, and share links."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from playlists import access as playlist_access
from playlists import services as playlists
from playlists.models import Playlist, PlaylistPin, ShareLink, ShareLinkView
from privacy.models import PrivacySettings
from recordings import access
from recordings.models import Comment, Recording, RecordingView
from recordings.search.compiler import recordings_matching
from recordings.search.language import parse_document
from recordings.services.curation import (
    comment_create,
    comment_edit,
    recording_view_record,
    recordings_tag,
    tag_get_or_create,
)
from recordings.services.storage import recording_purge
from tests.base import ReplayTestCase

T0 = now() - dt.timedelta(hours=2)


class CurationCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.recs = {
            name: Recording.objects.create(
                project=self.project,
                session_id=name,
                browser=browser,
                started_at=T0 + dt.timedelta(minutes=k),
                ended_at=T0 + dt.timedelta(minutes=k + 1),
                duration_ms=60_000,
            )
            for k, (name, browser) in enumerate(
                (("a", "Safari"), ("b", "Chrome"), ("c", "Safari"), ("d", "Firefox"))
            )
        }
        self.editor = self.make_teammate("erin", access.Role.EDITOR)

    def found(self, where: dict[str, Any], user: Any = None) -> set[str]:
        document = parse_document({"version": 1, "where": where})
        scoped = Recording.objects.for_project(self.project)
        qs = recordings_matching(scoped, document, user=user or self.alice)
        return set(qs.values_list("session_id", flat=True))


class TagCommentViewTermsTest(CurationCase):
    def test_tags(self) -> None:
        bug = tag_get_or_create(project=self.project, name=" checkout  bug ")
        self.assertEqual(bug.name, "checkout bug")
        same = tag_get_or_create(project=self.project, name="Checkout Bug")
        self.assertEqual(same.pk, bug.pk)
        added = recordings_tag(
            recordings=[self.recs["a"], self.recs["b"]], tag=bug, user=self.editor
        )
        self.assertEqual(added, 2)
        again = recordings_tag(recordings=[self.recs["a"]], tag=bug, user=None)
        self.assertEqual(again, 0)
        self.assertEqual(
            self.found({"term": "tag", "in": ["checkout bug"]}), {"a", "b"}
        )
        none_of = {"not": {"term": "tag", "in": ["checkout bug", "other"]}}
        self.assertEqual(self.found(none_of), {"c", "d"})
        # Another project's tag of the same name does not count here.
        other = self.make_charlies_project("other")
        their = tag_get_or_create(project=other, name="mobile")
        recordings_tag(recordings=[self.recs["c"]], tag=their, user=None)
        self.assertEqual(self.found({"term": "tag", "in": ["mobile"]}), set())

    def test_comments(self) -> None:
        comment_create(
            recording=self.recs["a"],
            author=self.bob,
            text="Card declined here",
            offset_ms=5_000,
        )
        late = comment_create(
            recording=self.recs["b"], author=self.alice, text="odd", offset_ms=10**9
        )
        self.assertEqual(late.offset_ms, 60_000)  # clamped to the recording
        with self.assertRaises(ValidationError):
            comment_create(
                recording=self.recs["c"], author=self.bob, text="   ", offset_ms=0
            )
        self.assertEqual(self.found({"term": "commented"}), {"a", "b"})
        self.assertEqual(self.found({"term": "commented", "by": "me"}, self.bob), {"a"})
        self.assertEqual(
            self.found({"term": "commented", "contains": "DECLINED"}), {"a"}
        )
        edited = comment_edit(comment=late, text="odd, see ticket 42")
        self.assertIsNotNone(edited.edited)

    def test_viewed_by_me_only(self) -> None:
        recording_view_record(recording=self.recs["a"], user=self.bob)
        recording_view_record(recording=self.recs["a"], user=self.bob)
        recording_view_record(recording=self.recs["b"], user=self.alice)
        view = RecordingView.objects.get(recording=self.recs["a"], user=self.bob)
        self.assertEqual(view.count, 2)
        self.assertEqual(self.found({"term": "viewed"}, self.bob), {"a"})
        self.assertEqual(
            self.found({"not": {"term": "viewed"}}, self.bob), {"b", "c", "d"}
        )
        self.assertEqual(self.found({"term": "viewed", "by": "me"}, self.alice), {"b"})


class PlaylistTest(CurationCase):
    def safari_playlist(self, owner: Any = None) -> Playlist:
        return playlists.playlist_create(
            project=self.project,
            owner=owner or self.editor,
            name="Safari",
            filter={"version": 1, "where": {"term": "browser", "in": ["Safari"]}},
        )

    def test_saved_filter_and_pins(self) -> None:
        playlist = self.safari_playlist()
        self.assertEqual(
            playlists.playlist_pin(
                playlist=playlist, recordings=[self.recs["d"]], user=self.editor
            ),
            1,
        )
        held = playlists.playlist_recordings(playlist=playlist, user=self.editor)
        self.assertEqual(
            list(held.values_list("session_id", flat=True)), ["d", "c", "a"]
        )
        # New recordings the filter finds join by themselves.
        Recording.objects.create(
            project=self.project,
            session_id="e",
            browser="Safari",
            started_at=T0,
            ended_at=T0,
        )
        self.assertIn("e", set(held.values_list("session_id", flat=True)))
        self.assertTrue(
            playlists.playlist_unpin(playlist=playlist, recording=self.recs["d"])
        )
        self.assertEqual(
            self.found({"term": "in_playlist", "playlist": str(playlist.code)}),
            {"a", "c", "e"},
        )

    def test_a_saved_filter_is_checked(self) -> None:
        with self.assertRaises(ValidationError):
            playlists.playlist_create(
                project=self.project, owner=self.alice, name="x", filter={"version": 9}
            )
        nested = {
            "version": 1,
            "where": {
                "term": "in_playlist",
                "playlist": "6f0c1c1e-1111-4111-8111-111111111111",
            },
        }
        with self.assertRaises(ValidationError):
            playlists.playlist_create(
                project=self.project, owner=self.alice, name="x", filter=nested
            )

    def test_counts_and_new_since_last_opened_in_two_queries(self) -> None:
        safari = self.safari_playlist()
        pinned = playlists.playlist_create(
            project=self.project, owner=self.editor, name="Pins"
        )
        playlists.playlist_pin(
            playlist=pinned, recordings=[self.recs["b"]], user=self.editor
        )
        playlists.playlist_visit(playlist=pinned, user=self.editor)
        playlists.playlist_pin(
            playlist=pinned, recordings=[self.recs["d"]], user=self.editor
        )
        more = [
            playlists.playlist_create(
                project=self.project, owner=self.editor, name=f"p{k}"
            )
            for k in range(5)
        ]
        page = [safari, pinned, *more]
        with CaptureQueriesContext(connection) as queries:
            counts = playlists.playlists_counts(playlists=page, user=self.editor)
        self.assertEqual(len(queries), 2)
        self.assertEqual((counts[safari.pk].total, counts[safari.pk].new), (2, 2))
        self.assertEqual((counts[pinned.pk].total, counts[pinned.pk].new), (2, 1))
        self.assertEqual((counts[more[0].pk].total, counts[more[0].pk].new), (0, 0))

    def test_neighbours(self) -> None:
        playlist = self.safari_playlist()
        before, after = playlists.playlist_neighbours(
            playlist=playlist, recording=self.recs["c"], user=None
        )
        self.assertEqual((before, after), (None, self.recs["a"]))

    def test_who_sees_and_curates(self) -> None:
        mine = self.safari_playlist(owner=self.editor)
        visible = playlist_access.playlists_visible_to
        self.assertIn(mine, visible(self.editor))
        self.assertIn(mine, visible(self.alice))  # the project's admin sees all
        self.assertNotIn(mine, visible(self.bob))  # a viewer, not shared with
        self.assertNotIn(mine, visible(self.charlie))
        playlist_access.playlist_share(playlist=mine, principal=self.bob)
        self.assertIn(mine, visible(self.bob))
        self.assertFalse(playlist_access.may_curate(self.bob, mine))  # viewers never
        self.assertTrue(playlist_access.may_curate(self.editor, mine))
        self.assertTrue(playlist_access.may_curate(self.alice, mine))
        other_editor = self.make_teammate("ed", access.Role.EDITOR)
        self.assertFalse(playlist_access.may_curate(other_editor, mine))
        playlist_access.playlist_share(
            playlist=mine, principal=other_editor, can_edit=True
        )
        self.assertTrue(playlist_access.may_curate(other_editor, mine))
        # Sharing with charlie, who has no role on the project, shows him nothing.
        playlist_access.playlist_share(playlist=mine, principal=self.charlie)
        self.assertNotIn(mine, visible(self.charlie))
        # in_playlist of a playlist one cannot see finds nothing.
        term = {"term": "in_playlist", "playlist": str(mine.code)}
        playlist_access.playlist_unshare(playlist=mine, principal=self.bob)
        self.assertEqual(self.found(term, self.bob), set())
        self.assertEqual(self.found(term, self.editor), {"a", "c"})


class ShareLinkTest(CurationCase):
    def test_a_link_opens_logs_and_stops(self) -> None:
        link, token = playlists.share_link_create(
            target=self.recs["a"], user=self.editor, max_views=2
        )
        self.assertTrue(token.startswith("rhs_"))
        self.assertNotIn(token, str(ShareLink.objects.values().get(pk=link.pk)))
        opened = playlists.share_link_open(
            token=token, user_agent="UA\x00 1", ip_address="203.0.113.9"
        )
        self.assertEqual((opened.pk, opened.view_count), (link.pk, 1))
        view = ShareLinkView.objects.get()
        self.assertEqual(
            (view.user_agent, view.ip_address), ("UA\ufffd 1", None)
        )  # no IPs kept
        playlists.share_link_open(token=token, user_agent="", ip_address=None)
        with self.assertRaises(playlists.ShareLinkGone) as gone:
            playlists.share_link_open(token=token, user_agent="", ip_address=None)
        self.assertEqual(gone.exception.reason, "used up")
        with self.assertRaises(ShareLink.DoesNotExist):
            playlists.share_link_open(token="rhs_nope", user_agent="", ip_address=None)

    def test_expiry_revocation_and_the_projects_rules(self) -> None:
        link, token = playlists.share_link_create(
            target=self.recs["a"], user=self.editor
        )
        self.assertAlmostEqual(
            link.expires_at - now(), dt.timedelta(days=7), delta=dt.timedelta(minutes=1)
        )
        playlists.share_link_revoke(link=link)
        with self.assertRaises(playlists.ShareLinkGone):
            playlists.share_link_open(token=token, user_agent="", ip_address=None)
        expired, token = playlists.share_link_create(
            target=self.recs["b"], user=self.editor, days=1
        )
        ShareLink.objects.filter(pk=expired.pk).update(
            expires_at=now() - dt.timedelta(seconds=1)
        )
        with self.assertRaises(playlists.ShareLinkGone) as gone:
            playlists.share_link_open(token=token, user_agent="", ip_address=None)
        self.assertEqual(gone.exception.reason, "expired")
        with self.assertRaises(ValidationError):
            playlists.share_link_create(
                target=self.recs["a"], user=self.editor, days=31
            )
        PrivacySettings.objects.filter(project=self.project).update(
            share_links_allowed=False
        )
        self.project.refresh_from_db()
        with self.assertRaises(ValidationError):
            playlists.share_link_create(target=self.recs["a"], user=self.editor)


class DeletionTest(CurationCase):
    def test_deleting_a_recording_deletes_what_hangs_on_it(self) -> None:
        recording = self.recs["a"]
        comment_create(recording=recording, author=self.bob, text="x", offset_ms=0)
        tag = tag_get_or_create(project=self.project, name="t")
        recordings_tag(recordings=[recording], tag=tag, user=None)
        recording_view_record(recording=recording, user=self.bob)
        playlist = playlists.playlist_create(
            project=self.project, owner=self.editor, name="p"
        )
        playlists.playlist_pin(playlist=playlist, recordings=[recording], user=None)
        playlists.share_link_create(target=recording, user=self.editor)
        recording_purge(recording=recording)
        self.assertFalse(Comment.objects.exists())
        self.assertFalse(RecordingView.objects.exists())
        self.assertFalse(PlaylistPin.objects.exists())
        self.assertFalse(ShareLink.objects.exists())
        self.assertTrue(Playlist.objects.filter(pk=playlist.pk).exists())
