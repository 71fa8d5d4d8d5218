"""Share links in the admin: listed with state and views, read-only, revoked by
editors; made from a playlist's page too. And the tag vocabulary's admin."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from playlists import services as playlists
from playlists.models import ShareLink
from recordings import access
from recordings.models import Recording, Tag
from tests.base import ReplayTestCase


class ShareLinkAdminTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", access.Role.EDITOR)
        self.recording = Recording.objects.create(
            project=self.project,
            session_id="shared-one",
            started_at=now(),
            ended_at=now(),
        )
        self.link, self.token = playlists.share_link_create(
            target=self.recording, user=self.erin, max_views=3
        )
        playlists.share_link_open(
            token=self.token, user_agent="Firefox/1", ip_address=None
        )

    def test_it_lists_links_with_state_and_views(self) -> None:
        self.client.force_login(self.bob)
        response = self.client.get(reverse("admin:playlists_sharelink_changelist"))
        self.assertContains(response, "recording shared-one")
        self.assertContains(response, '<td class="field-state_">ok</td>', html=True)
        self.assertEqual(response.context["cl"].result_list[0].view_count, 1)

    def test_the_list_queries_do_not_grow_with_links(self) -> None:
        url = reverse("admin:playlists_sharelink_changelist")
        self.client.force_login(self.alice)
        self.client.get(url)
        with CaptureQueriesContext(connection) as few:
            self.client.get(url)
        for _ in range(5):
            playlists.share_link_create(target=self.recording, user=self.erin)
        with CaptureQueriesContext(connection) as many:
            self.client.get(url)
        self.assertEqual(len(many), len(few))

    def test_outsiders_see_none(self) -> None:
        self.make_charlies_project("charlie's")
        self.client.force_login(self.charlie)
        response = self.client.get(reverse("admin:playlists_sharelink_changelist"))
        self.assertNotContains(response, "shared-one")

    def test_its_page_shows_the_view_log_read_only(self) -> None:
        self.client.force_login(self.alice)
        url = reverse("admin:playlists_sharelink_change", args=[self.link.pk])
        response = self.client.get(url)
        self.assertContains(response, "Firefox/1")
        self.assertNotContains(response, 'name="_save"')
        self.assertNotContains(response, self.token)

    def test_editors_revoke(self) -> None:
        data = {"action": "revoke_selected", "_selected_action": [self.link.pk]}
        url = reverse("admin:playlists_sharelink_changelist")
        self.client.force_login(self.bob)
        self.client.post(url, data)
        self.link.refresh_from_db()
        self.assertIsNone(self.link.revoked_at)
        self.client.force_login(self.erin)
        self.client.post(url, data)
        self.link.refresh_from_db()
        self.assertIsNotNone(self.link.revoked_at)
        self.assertEqual(playlists.share_link_state(self.link), "revoked")

    def test_nobody_adds_or_deletes_here(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(
            self.client.get(reverse("admin:playlists_sharelink_add")).status_code, 403
        )
        url = reverse("admin:playlists_sharelink_delete", args=[self.link.pk])
        self.assertEqual(self.client.post(url, {"post": "yes"}).status_code, 403)

    def test_editors_share_a_playlist_from_its_page(self) -> None:
        playlist = playlists.playlist_create(
            project=self.project, owner=self.erin, name="to share"
        )
        url = reverse("admin:playlists_playlist_share_link", args=[playlist.pk])
        self.client.force_login(self.erin)
        self.assertContains(
            self.client.get(
                reverse("admin:playlists_playlist_change", args=[playlist.pk])
            ),
            url,
        )
        response = self.client.post(url, {"days": "2"})
        self.assertContains(response, "/share/rhs_")
        link = ShareLink.objects.get(playlist=playlist)
        self.assertLess(link.expires_at, now() + dt.timedelta(days=2, minutes=1))


class TagAdminTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", access.Role.EDITOR)
        self.form = {
            "project": self.project.pk,
            "name": "checkout",
            "colour": "#1f9d55",
        }

    def test_editors_manage_the_vocabulary(self) -> None:
        self.client.force_login(self.erin)
        self.client.post(reverse("admin:recordings_tag_add"), self.form)
        tag = Tag.objects.get(name="checkout")
        url = reverse("admin:recordings_tag_change", args=[tag.pk])
        self.client.post(url, {"name": "cart", "colour": "#000000"})
        tag.refresh_from_db()
        self.assertEqual((tag.name, tag.colour), ("cart", "#000000"))

    def test_viewers_only_read_it(self) -> None:
        tag = Tag.objects.create(project=self.project, name="bug")
        self.client.force_login(self.bob)
        response = self.client.get(reverse("admin:recordings_tag_changelist"))
        self.assertContains(response, "bug")
        add = self.client.post(reverse("admin:recordings_tag_add"), self.form)
        self.assertEqual(add.status_code, 403)
        url = reverse("admin:recordings_tag_change", args=[tag.pk])
        self.assertEqual(self.client.post(url, {"name": "x"}).status_code, 403)

    def test_it_refuses_a_bad_colour(self) -> None:
        self.client.force_login(self.erin)
        response = self.client.post(
            reverse("admin:recordings_tag_add"), {**self.form, "colour": "red"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(Tag.objects.exists())


class ShareLinksGoAlongTests(ReplayTestCase):
    def test_a_recording_with_a_link_can_still_be_deleted(self) -> None:
        recording = Recording.objects.create(
            project=self.project, session_id="gone", started_at=now(), ended_at=now()
        )
        playlists.share_link_create(target=recording, user=self.alice)
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_recording_delete", args=[recording.code])
        self.client.post(url, {"post": "yes"})
        self.assertFalse(Recording.objects.filter(pk=recording.pk).exists())
        self.assertFalse(ShareLink.objects.exists())

    def test_a_playlist_with_a_link_can_still_be_deleted(self) -> None:
        playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="gone"
        )
        playlists.share_link_create(target=playlist, user=self.alice)
        self.client.force_login(self.alice)
        url = reverse("admin:playlists_playlist_delete", args=[playlist.pk])
        self.client.post(url, {"post": "yes"})
        self.assertFalse(ShareLink.objects.exists())
