"""Share links respect playlist rights: the admin makes a link to a playlist only
for who may curate it (as the API does), and lists a link (with its view log) only
to who may see its target."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.urls import reverse
from django.utils.timezone import now

from playlists import access as playlist_access
from playlists import services as playlists
from playlists.models import Playlist, ShareLink
from recordings import access
from recordings.models import Recording
from tests.base import ReplayTestCase


class ShareLinkRightsCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.watching_editor = self.make_teammate("erin", access.Role.EDITOR)
        self.curating_editor = self.make_teammate("fred", access.Role.EDITOR)
        self.unshared_editor = self.make_teammate("gina", access.Role.EDITOR)
        self.playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="checkout trouble"
        )
        share = playlist_access.playlist_share
        share(playlist=self.playlist, principal=self.watching_editor)
        share(playlist=self.playlist, principal=self.curating_editor, can_edit=True)
        share(playlist=self.playlist, principal=self.bob, can_edit=True)
        self.make_charlies_project("charlie's")  # an outsider who uses ReplayHub

    def personas(self) -> dict[str, tuple[User, int, int]]:
        """Each persona and what the API and the admin answer when they make a link."""
        return {
            "alice (admin, owner)": (self.alice, 201, 200),
            "fred (editor, shared to curate)": (self.curating_editor, 201, 200),
            "erin (editor, shared to watch)": (self.watching_editor, 403, 403),
            "bob (viewer, shared to curate)": (self.bob, 403, 403),
            "gina (editor, not shared)": (self.unshared_editor, 404, 404),
            "charlie (outsider)": (self.charlie, 404, 404),
        }


class AdminMakesLinksAsTheApiDoesTests(ShareLinkRightsCase):
    def admin_share(self, user: User) -> Any:
        self.client.force_login(user)
        url = reverse("admin:playlists_playlist_share_link", args=[self.playlist.pk])
        return self.client.post(url, {"days": "2"})

    def api_share(self, user: User) -> Any:
        self.client.force_login(user)
        url = f"/api/v1/playlists/{self.playlist.code}/share-links/"
        return self.client.post(url, {"days": 2}, content_type="application/json")

    def test_it_answers_each_persona_as_the_api_does(self) -> None:
        for name, (user, api_expected, admin_expected) in self.personas().items():
            with self.subTest(name):
                before = ShareLink.objects.count()
                api = self.api_share(user)
                self.assertEqual(api.status_code, api_expected, api.content)
                admin = self.admin_share(user)
                self.assertEqual(admin.status_code, admin_expected)
                made = ShareLink.objects.count() - before
                if api_expected == 201:
                    self.assertIn("/share/rhs_", admin.content.decode())
                    self.assertEqual(made, 2)  # one by each surface
                else:
                    self.assertEqual(made, 0)

    def test_the_form_itself_is_refused_to_who_only_watches(self) -> None:
        self.client.force_login(self.watching_editor)
        url = reverse("admin:playlists_playlist_share_link", args=[self.playlist.pk])
        self.assertEqual(self.client.get(url).status_code, 403)

    def test_the_playlist_page_offers_sharing_only_to_who_may_share(self) -> None:
        share_url = reverse(
            "admin:playlists_playlist_share_link", args=[self.playlist.pk]
        )
        page = reverse("admin:playlists_playlist_change", args=[self.playlist.pk])
        for user, offered in (
            (self.alice, True),
            (self.curating_editor, True),
            (self.watching_editor, False),
            (self.bob, False),
        ):
            with self.subTest(user.username):
                self.client.force_login(user)
                response = self.client.get(page)
                self.assertEqual(response.status_code, 200)
                self.assertIs(share_url in response.content.decode(), offered)

    def test_one_function_decides_for_recordings_and_playlists(self) -> None:
        recording = Recording.objects.create(
            project=self.project, session_id="s", started_at=now(), ended_at=now()
        )
        may_share = playlist_access.may_share
        self.assertTrue(may_share(self.watching_editor, recording))
        self.assertFalse(may_share(self.watching_editor, self.playlist))
        self.assertTrue(may_share(self.curating_editor, self.playlist))
        self.assertFalse(may_share(self.bob, recording))
        self.assertFalse(may_share(self.charlie, recording))


class AdminListsOnlyVisibleLinksTests(ShareLinkRightsCase):
    def setUp(self) -> None:
        super().setUp()
        self.recording = Recording.objects.create(
            project=self.project,
            session_id="seen-by-all",
            started_at=now(),
            ended_at=now(),
        )
        self.hidden = Playlist.objects.create(
            project=self.project, owner=self.alice, name="alice only"
        )
        self.hidden_link = self.make_link(self.hidden, "Hidden-UA/1")
        self.shared_link = self.make_link(self.playlist, "Shared-UA/1")
        self.recording_link = self.make_link(self.recording, "Recording-UA/1")

    def make_link(self, target: Recording | Playlist, user_agent: str) -> ShareLink:
        link, token = playlists.share_link_create(target=target, user=self.alice)
        playlists.share_link_open(token=token, user_agent=user_agent, ip_address=None)
        return link

    def listed(self, user: User) -> set[int]:
        self.client.force_login(user)
        response = self.client.get(reverse("admin:playlists_sharelink_changelist"))
        if response.status_code != 200:
            return set()
        return {link.pk for link in response.context["cl"].result_list}

    def test_viewers_list_only_links_of_what_they_see(self) -> None:
        self.assertEqual(
            self.listed(self.bob), {self.shared_link.pk, self.recording_link.pk}
        )
        self.assertEqual(self.listed(self.unshared_editor), {self.recording_link.pk})
        self.assertEqual(self.listed(self.charlie), set())
        everything = {self.hidden_link.pk, self.shared_link.pk, self.recording_link.pk}
        self.assertEqual(self.listed(self.alice), everything)

    def test_the_page_and_view_log_of_a_hidden_playlists_link_stay_hidden(
        self,
    ) -> None:
        for user in (self.bob, self.unshared_editor, self.charlie):
            with self.subTest(user.username):
                self.client.force_login(user)
                for name in ("change", "history"):
                    url = reverse(
                        f"admin:playlists_sharelink_{name}", args=[self.hidden_link.pk]
                    )
                    response = self.client.get(url, follow=True)
                    body = response.content.decode()
                    self.assertFalse("Hidden-UA/1" in body, "the view log leaked")
                    self.assertFalse("alice only" in body, "the playlist leaked")
                    self.assertEqual(response.redirect_chain[0][1], 302)
        self.client.force_login(self.bob)
        url = reverse("admin:playlists_sharelink_change", args=[self.shared_link.pk])
        self.assertContains(self.client.get(url), "Shared-UA/1")

    def test_nobody_revokes_a_link_they_cannot_see(self) -> None:
        self.client.force_login(self.unshared_editor)
        self.client.post(
            reverse("admin:playlists_sharelink_changelist"),
            {"action": "revoke_selected", "_selected_action": [self.hidden_link.pk]},
        )
        self.hidden_link.refresh_from_db()
        self.assertIsNone(self.hidden_link.revoked_at)

    def test_the_api_lists_the_same_links_to_who_curates(self) -> None:
        self.client.force_login(self.unshared_editor)
        rows = self.client.get("/api/v1/share-links/").json()["results"]
        self.assertEqual({row["id"] for row in rows}, {self.recording_link.pk})
        self.assertEqual(self.listed(self.unshared_editor), {self.recording_link.pk})
