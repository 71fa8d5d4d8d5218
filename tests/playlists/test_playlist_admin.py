"""The playlists admin: who sees, makes, curates and deletes which playlist; the
list's counts (no query per playlist); the form's filter and sharing; the page."""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from playlists import access as playlist_access
from playlists import services as playlists
from playlists.models import Playlist, PlaylistVisit
from recordings import access
from recordings.models import Marker, Recording
from recordings.services.projects import role_grant
from tests.base import ReplayTestCase

T0 = now() - dt.timedelta(hours=2)
LIST = "admin:playlists_playlist_changelist"


def change_url(playlist: Playlist) -> str:
    return reverse("admin:playlists_playlist_change", args=[playlist.pk])


class PlaylistAdminCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", access.Role.EDITOR)
        self.recs = [
            Recording.objects.create(
                project=self.project,
                session_id=f"s{k}",
                browser="Safari" if k % 2 else "Chrome",
                started_at=T0 + dt.timedelta(minutes=k),
                ended_at=T0 + dt.timedelta(minutes=k + 1),
                duration_ms=60_000,
            )
            for k in range(3)
        ]
        self.alices = playlists.playlist_create(
            project=self.project, owner=self.alice, name="alice's picks"
        )
        self.erins = playlists.playlist_create(
            project=self.project, owner=self.erin, name="erin's picks"
        )

    def listed(self, user: object) -> list[str]:
        self.client.force_login(user)  # type: ignore[arg-type]
        response = self.client.get(reverse(LIST))
        self.assertEqual(response.status_code, 200)
        return [str(p) for p in response.context["cl"].result_list]

    def form(self, **changes: object) -> dict[str, object]:
        data: dict[str, object] = {
            "name": "new one",
            "description": "",
            "project": self.project.pk,
            "filter": "",
        }
        data.update(changes)
        return data


class PlaylistListTests(PlaylistAdminCase):
    def test_it_lists_what_each_persona_may_see(self) -> None:
        self.assertEqual(
            set(self.listed(self.alice)), {"alice's picks", "erin's picks"}
        )
        self.assertEqual(self.listed(self.erin), ["erin's picks"])
        self.assertEqual(self.listed(self.bob), [])
        playlist_access.playlist_share(playlist=self.alices, principal=self.bob)
        self.assertEqual(self.listed(self.bob), ["alice's picks"])

    def test_it_refuses_outsiders(self) -> None:
        self.client.force_login(self.charlie)
        response = self.client.get(reverse(LIST))
        self.assertIn(response.status_code, (302, 403))

    def test_it_shows_counts_and_what_is_new(self) -> None:
        playlists.playlist_pin(
            playlist=self.alices, recordings=self.recs[:2], user=self.alice
        )
        self.client.force_login(self.alice)
        response = self.client.get(reverse(LIST))
        row = next(
            p for p in response.context["cl"].result_list if p.pk == self.alices.pk
        )
        self.assertEqual((row.counts.total, row.counts.new), (2, 2))
        self.client.get(change_url(self.alices))  # opening it: nothing new since
        response = self.client.get(reverse(LIST))
        row = next(
            p for p in response.context["cl"].result_list if p.pk == self.alices.pk
        )
        self.assertEqual((row.counts.total, row.counts.new), (2, 0))

    def test_it_counts_with_no_query_per_playlist(self) -> None:
        self.client.force_login(self.alice)
        self.client.get(reverse(LIST))  # warm caches (content types, sessions)

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                response = self.client.get(reverse(LIST))
            self.assertEqual(response.status_code, 200)
            return len(captured)

        few = queries()
        for k in range(6):
            playlist = playlists.playlist_create(
                project=self.project,
                owner=self.alice,
                name=f"more {k}",
                filter={"version": 1, "where": {"term": "browser", "in": ["Safari"]}},
            )
            playlists.playlist_pin(
                playlist=playlist, recordings=self.recs[:1], user=self.alice
            )
        self.assertEqual(queries(), few)


class PlaylistFormTests(PlaylistAdminCase):
    def test_an_editor_creates_a_playlist_they_own(self) -> None:
        self.client.force_login(self.erin)
        document = {"version": 1, "where": {"term": "browser", "in": ["Safari"]}}
        response = self.client.post(
            reverse("admin:playlists_playlist_add"),
            self.form(filter=json.dumps(document)),
        )
        self.assertEqual(response.status_code, 302)
        made = Playlist.objects.get(name="new one")
        self.assertEqual(made.owner, self.erin)
        self.assertEqual(made.filter, document)

    def test_viewers_and_outsiders_may_not_create(self) -> None:
        for user in (self.bob, self.charlie):
            self.client.force_login(user)
            response = self.client.post(
                reverse("admin:playlists_playlist_add"), self.form()
            )
            self.assertIn(response.status_code, (302, 403))
        self.assertFalse(Playlist.objects.filter(name="new one").exists())

    def test_it_offers_only_projects_where_the_user_may_create(self) -> None:
        self.make_charlies_project("charlie's")
        viewing = self.make_project("alice's second")
        role_grant(project=viewing, principal=self.erin, role=access.Role.VIEWER)
        self.client.force_login(self.erin)
        response = self.client.get(reverse("admin:playlists_playlist_add"))
        choices = response.context["adminform"].form.fields["project"].queryset
        self.assertEqual(list(choices), [self.project])

    def test_it_shows_the_filters_problems(self) -> None:
        self.client.force_login(self.erin)
        bad = {"version": 1, "where": {"term": "no_such_term"}}
        response = self.client.post(
            reverse("admin:playlists_playlist_add"), self.form(filter=json.dumps(bad))
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("filter", response.context["adminform"].form.errors)
        self.assertFalse(Playlist.objects.filter(name="new one").exists())

    def test_it_refuses_a_filter_naming_a_playlist(self) -> None:
        self.client.force_login(self.erin)
        document = {
            "version": 1,
            "where": {"term": "in_playlist", "playlist": str(self.erins.code)},
        }
        response = self.client.post(
            reverse("admin:playlists_playlist_add"),
            self.form(filter=json.dumps(document)),
        )
        self.assertContains(response, "in_playlist")
        self.assertFalse(Playlist.objects.filter(name="new one").exists())

    def test_save_as_playlist_carries_the_filter(self) -> None:
        self.client.force_login(self.erin)
        document = {"version": 1, "where": {"term": "browser", "in": ["Chrome"]}}
        url = reverse("admin:playlists_playlist_add")
        response = self.client.get(url, {"filter": json.dumps(document)})
        self.assertEqual(response.context["adminform"].form.initial["filter"], document)

    def test_sharing_lets_people_see_or_curate(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            change_url(self.alices),
            self.form(name="alice's picks", share_view_users=[self.bob.pk]),
        )
        self.assertEqual(response.status_code, 302)
        self.assertTrue(playlist_access.playlists_visible_to(self.bob).exists())
        self.assertFalse(playlist_access.may_curate(self.bob, self.alices))
        self.client.post(
            change_url(self.alices),
            self.form(name="alice's picks", share_edit_users=[self.erin.pk]),
        )
        self.assertTrue(playlist_access.may_curate(self.erin, self.alices))
        # bob was left out of the second form: unshared.
        self.assertFalse(playlist_access.playlists_visible_to(self.bob).exists())

    def test_it_refuses_to_share_with_people_off_the_project(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            change_url(self.alices),
            self.form(name="alice's picks", share_view_users=[self.charlie.pk]),
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(playlist_access.playlists_visible_to(self.charlie).exists())

    def test_only_curators_change_it(self) -> None:
        playlist_access.playlist_share(playlist=self.alices, principal=self.bob)
        playlist_access.playlist_share(playlist=self.alices, principal=self.erin)
        for user in (self.bob, self.erin):  # shared to watch only
            self.client.force_login(user)
            page = self.client.get(change_url(self.alices))
            self.assertEqual(page.status_code, 200)
            self.assertNotContains(page, 'name="_save"')
            response = self.client.post(change_url(self.alices), self.form(name="x"))
            self.assertEqual(response.status_code, 403)
        playlist_access.playlist_share(
            playlist=self.alices, principal=self.erin, can_edit=True
        )
        self.client.force_login(self.erin)
        self.client.post(change_url(self.alices), self.form(name="renamed"))
        self.alices.refresh_from_db()
        self.assertEqual(self.alices.name, "renamed")

    def test_unshared_playlists_are_not_found(self) -> None:
        self.client.force_login(self.erin)
        response = self.client.get(change_url(self.alices))
        self.assertIn(response.status_code, (302, 404))

    def test_only_owners_and_admins_delete(self) -> None:
        playlist_access.playlist_share(
            playlist=self.alices, principal=self.erin, can_edit=True
        )
        self.client.force_login(self.erin)
        url = reverse("admin:playlists_playlist_delete", args=[self.alices.pk])
        self.assertEqual(self.client.post(url, {"post": "yes"}).status_code, 403)
        own = reverse("admin:playlists_playlist_delete", args=[self.erins.pk])
        self.client.post(own, {"post": "yes"})
        self.assertFalse(Playlist.objects.filter(pk=self.erins.pk).exists())
        self.client.force_login(self.alice)
        self.client.post(url, {"post": "yes"})
        self.assertFalse(Playlist.objects.filter(pk=self.alices.pk).exists())


class PlaylistPageTests(PlaylistAdminCase):
    def test_it_lists_its_recordings_with_player_links(self) -> None:
        playlists.playlist_pin(
            playlist=self.alices, recordings=self.recs[:2], user=self.alice
        )
        self.client.force_login(self.alice)
        response = self.client.get(change_url(self.alices))
        self.assertEqual(len(response.context["playlist_rows"]), 2)
        play = reverse("admin:recordings_recording_play", args=[self.recs[0].code])
        self.assertContains(response, f"{play}?playlist={self.alices.code}")

    def test_a_filters_recordings_open_where_it_matched(self) -> None:
        rage = {"term": "signal", "signal": "rage_clicks", "gte": 1}
        found = playlists.playlist_create(
            project=self.project,
            owner=self.alice,
            name="rage",
            filter={"version": 1, "where": rage},
        )
        recording = self.recs[1]
        Recording.objects.filter(pk=recording.pk).update(rage_click_count=1)
        Marker.objects.create(
            recording=recording,
            kind=Marker.Kind.RAGE_CLICK,
            timestamp=recording.started_at + dt.timedelta(seconds=42),
            offset_ms=42_000,
        )
        self.client.force_login(self.alice)
        response = self.client.get(change_url(found))
        play = reverse("admin:recordings_recording_play", args=[recording.code])
        # Two seconds before the rage click, so it can be seen coming.
        self.assertContains(response, f"{play}?playlist={found.code}&amp;t=40")

    def test_opening_it_is_a_visit(self) -> None:
        playlist_access.playlist_share(playlist=self.alices, principal=self.bob)
        self.client.force_login(self.bob)
        self.client.get(change_url(self.alices))
        self.assertTrue(
            PlaylistVisit.objects.filter(playlist=self.alices, user=self.bob).exists()
        )
