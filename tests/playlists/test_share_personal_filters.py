"""A public link to a playlist whose filter says "me" shows the playlist as its
creator sees it (live), and nothing once its creator can no longer see it: a link
has no "me" of its own, so a deleted, suspended or demoted creator must never
widen what it lists to the whole project."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.urls import reverse

from playlists import access as playlist_access
from playlists import services as playlists
from playlists.models import Playlist, ShareLink, ShareLinkView
from recordings import access
from recordings.models import Recording
from recordings.services.projects import role_grant
from tests.access import rrweb_events
from tests.base import ReplayTestCase

NOT_VIEWED = {"version": 1, "where": {"not": {"term": "viewed", "by": "me"}}}
NOT_COMMENTED = {"version": 1, "where": {"not": {"term": "commented", "by": "me"}}}


class PersonalFilterLinkCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", access.Role.EDITOR)
        self.seen = self.capture("seen-session")
        self.unseen = [self.capture(f"unseen-session-{n}") for n in (1, 2)]
        self.watch(self.erin, self.seen)

    def capture(self, session_id: str) -> Recording:
        """A real recording, sent as a browser sends it."""
        body = {
            "token": self.project.token,
            "session_id": session_id,
            "window_id": f"{session_id}-window",
            "distinct_id": "someone",
            "events": rrweb_events("signup"),
        }
        response = self.client.post(
            "/api/v1/ingest/rrweb/", json.dumps(body), content_type="application/json"
        )
        self.assertEqual(response.status_code, 200, response.content)
        return Recording.objects.get(project=self.project, session_id=session_id)

    def watch(self, user: User, recording: Recording) -> None:
        """`user` opens the recording's player in the admin (a view of theirs)."""
        self.client.force_login(user)
        url = reverse("admin:recordings_recording_play", args=[recording.code])
        self.assertEqual(self.client.get(url).status_code, 200)
        self.client.logout()

    def share(self, filter_: dict[str, Any], owner: User | None = None) -> str:
        """erin's link to a playlist of `filter_` (hers, or `owner`'s shared with
        her to curate)."""
        self.playlist = playlists.playlist_create(
            project=self.project,
            owner=owner or self.erin,
            name="still to watch",
            filter=filter_,
        )
        if owner is not None:
            playlist_access.playlist_share(
                playlist=self.playlist, principal=self.erin, can_edit=True
            )
        _, token = playlists.share_link_create(target=self.playlist, user=self.erin)
        return token

    def listed(self, token: str) -> set[str]:
        """The recordings the public page lists, by session id."""
        page = self.client.get(f"/share/{token}/")
        self.assertEqual(page.status_code, 200)
        body = page.content.decode()
        every = Recording.objects.filter(project=self.project)
        return {r.session_id for r in every if str(r.code) in body}

    def events(self, token: str, recording: Recording) -> int:
        url = f"/share/{token}/recordings/{recording.code}/events/"
        return self.client.get(url).status_code


class LinkShowsWhatItsCreatorSeesTests(PersonalFilterLinkCase):
    def test_viewed_recordings_stay_off_the_public_page(self) -> None:
        token = self.share(NOT_VIEWED)
        self.assertEqual(self.listed(token), {r.session_id for r in self.unseen})
        self.assertEqual(self.events(token, self.seen), 404)
        self.assertEqual(self.events(token, self.unseen[0]), 200)

    def test_it_follows_what_the_creator_watches_next(self) -> None:
        token = self.share(NOT_VIEWED)
        self.watch(self.erin, self.unseen[0])
        self.watch(self.alice, self.unseen[1])  # someone else's view changes nothing
        self.assertEqual(self.listed(token), {self.unseen[1].session_id})

    def test_it_is_what_the_creator_not_the_visitor_has_done(self) -> None:
        token = self.share(NOT_COMMENTED)
        self.client.force_login(self.erin)
        url = reverse("admin:recordings_recording_comments", args=[self.seen.code])
        self.client.post(url, {"op": "add", "text": "seen it", "offset_ms": "0"})
        self.client.force_login(self.alice)  # a signed-in visitor is no "me" either
        self.assertEqual(self.listed(token), {r.session_id for r in self.unseen})

    def test_a_filter_without_me_is_unchanged(self) -> None:
        everything = {"version": 1, "where": {"term": "legal_hold", "value": False}}
        token = self.share(everything)
        every = {self.seen.session_id, *(r.session_id for r in self.unseen)}
        self.assertEqual(self.listed(token), every)
        User.objects.filter(pk=self.erin.pk).delete()
        self.assertEqual(self.listed(token), every)


class ACreatorWhoCannotSeeItAnyMoreTests(PersonalFilterLinkCase):
    def assertShowsNothing(self, token: str) -> None:
        views = ShareLinkView.objects.count()
        page = self.client.get(f"/share/{token}/")
        self.assertEqual(page.status_code, 410)
        body = page.content.decode()
        self.assertIn("can no longer see", body)
        for recording in (self.seen, *self.unseen):
            self.assertNotIn(str(recording.code), body)
            self.assertEqual(self.events(token, recording), 404)
        self.assertEqual(ShareLinkView.objects.count(), views)  # no view counted

    def test_a_deleted_creator(self) -> None:
        token = self.share(NOT_VIEWED)
        User.objects.filter(pk=self.erin.pk).delete()
        self.assertShowsNothing(token)

    def test_a_suspended_creator(self) -> None:
        token = self.share(NOT_VIEWED)
        User.objects.filter(pk=self.erin.pk).update(is_active=False)
        self.assertShowsNothing(token)

    def test_a_creator_who_left_the_project(self) -> None:
        token = self.share(NOT_VIEWED)
        role_grant(project=self.project, principal=self.erin, role=None)
        self.assertShowsNothing(token)

    def test_a_creator_the_playlist_is_no_longer_shared_with(self) -> None:
        token = self.share(NOT_VIEWED, owner=self.alice)
        self.watch(self.alice, self.unseen[0])  # the owner's views are not erin's
        self.assertEqual(self.listed(token), {r.session_id for r in self.unseen})
        playlist_access.playlist_unshare(playlist=self.playlist, principal=self.erin)
        self.assertShowsNothing(token)

    def test_the_admin_and_the_api_say_why_it_stopped(self) -> None:
        self.share(NOT_VIEWED)
        link = ShareLink.objects.get(playlist=self.playlist)
        self.assertEqual(playlists.share_link_state(link), "ok")
        role_grant(project=self.project, principal=self.erin, role=None)
        self.assertEqual(playlists.share_link_state(link), "creator lost access")
        self.client.force_login(self.alice)
        rows = self.client.get("/api/v1/share-links/").json()["results"]
        self.assertEqual([row["state"] for row in rows], ["creator lost access"])


class PersonalTermsTests(ReplayTestCase):
    def test_which_filters_depend_on_who_looks(self) -> None:
        cases: list[tuple[dict[str, Any] | None, bool]] = [
            (None, False),
            ({"version": 1, "where": {"term": "viewed", "by": "me"}}, True),
            (NOT_VIEWED, True),
            (NOT_COMMENTED, True),
            ({"version": 1, "where": {"term": "commented"}}, False),
            (
                {
                    "version": 1,
                    "where": {
                        "any": [
                            {"term": "legal_hold", "value": True},
                            {"all": [{"not": {"term": "viewed"}}]},
                        ]
                    },
                },
                True,
            ),
            ({"version": 1, "where": {"term": "legal_hold", "value": True}}, False),
        ]
        for filter_, personal in cases:
            with self.subTest(filter=filter_):
                playlist = Playlist(project=self.project, name="p", filter=filter_)
                self.assertIs(playlists.playlist_depends_on_person(playlist), personal)
