"""The public share pages: a view logged per opening, the player's events without
one, 410 for links that no longer open, and nothing else of the project shown."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils.timezone import now

from playlists import services as playlists
from playlists.models import ShareLink, ShareLinkView
from privacy.models import PrivacySettings
from recordings.services.storage import recording_events
from tests.recordings.test_management_api import TenantsTestCase

UA = "Mozilla/5.0 (share-page test)"


class SharePageTests(TenantsTestCase):
    def share(self, **kwargs: Any) -> str:
        _, token = playlists.share_link_create(
            target=self.own.recording,
            user=self.alice,
            **kwargs,
        )
        return token

    def open(self, url: str) -> Any:
        return self.client.get(url, headers={"User-Agent": UA})

    def events_url(self, body: str) -> str:
        found = re.search(r'id="events-url"[^>]*>"([^"]+)"', body)
        assert found is not None, body
        return found.group(1).replace("\\u0026", "&")

    def test_it_plays_the_recording_and_logs_the_view(self) -> None:
        token = self.share()
        response = self.open(f"/share/{token}/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["X-Robots-Tag"], "noindex, nofollow")
        self.assertEqual(response["Referrer-Policy"], "no-referrer")
        self.assertIn("script-src 'self'", response["Content-Security-Policy"])
        body = response.content.decode()
        self.assertIn("recordings/player.js", body)
        for secret in (
            "zqalpha-person",
            "zqalpha-session",
            "zqalpha project",
            "/admin/",
        ):
            self.assertNotIn(secret, body)
        view = ShareLinkView.objects.get()
        self.assertEqual(view.user_agent, UA)
        self.assertIsNone(view.ip_address)  # the project stores no IP addresses
        self.assertEqual(ShareLink.objects.get().view_count, 1)

    def test_it_keeps_the_address_only_where_the_project_stores_them(self) -> None:
        PrivacySettings.objects.filter(project=self.project).update(
            store_ip_addresses=True
        )
        self.open(f"/share/{self.share()}/")
        self.assertEqual(ShareLinkView.objects.get().ip_address, "127.0.0.1")

    def test_the_events_play_without_another_view(self) -> None:
        token = self.share()
        url = self.events_url(self.open(f"/share/{token}/").content.decode())
        for events in (url, f"/share/{token}/events/"):
            response = self.client.get(events)
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response["Referrer-Policy"], "no-referrer")
            self.assertEqual(
                response.json(),
                recording_events(recording=self.own.recording),
            )
        self.assertEqual(ShareLinkView.objects.count(), 1)
        self.assertEqual(ShareLink.objects.get().view_count, 1)

    def test_a_last_view_still_plays_then_the_link_is_used_up(self) -> None:
        token = self.share(max_views=1)
        url = self.events_url(self.open(f"/share/{token}/").content.decode())
        self.assertEqual(self.client.get(url).status_code, 200)
        self.assertEqual(self.client.get(f"/share/{token}/events/").status_code, 410)
        again = self.open(f"/share/{token}/")
        self.assertEqual(again.status_code, 410)
        self.assertIn("used up", again.content.decode())
        self.assertEqual(again["X-Robots-Tag"], "noindex, nofollow")

    def test_expired_and_revoked_links_are_gone(self) -> None:
        token = self.share()
        link = ShareLink.objects.get()
        playlists.share_link_revoke(link=link)
        revoked = self.open(f"/share/{token}/")
        self.assertEqual(revoked.status_code, 410)
        self.assertIn("revoked", revoked.content.decode())
        self.assertEqual(self.client.get(f"/share/{token}/events/").status_code, 410)
        token = self.share()
        ShareLink.objects.filter(revoked_at=None).update(
            expires_at=now() - dt.timedelta(seconds=1)
        )
        expired = self.open(f"/share/{token}/")
        self.assertEqual(expired.status_code, 410)
        self.assertIn("expired", expired.content.decode())
        self.assertEqual(ShareLinkView.objects.count(), 0)

    def test_an_unknown_token_is_404(self) -> None:
        unknown = self.open("/share/rhs_nope/")
        self.assertEqual(unknown.status_code, 404)
        self.assertEqual(unknown["X-Robots-Tag"], "noindex, nofollow")
        self.assertEqual(unknown["Referrer-Policy"], "no-referrer")
        self.assertEqual(self.client.get("/share/rhs_nope/events/").status_code, 404)


class SharedPlaylistPageTests(TenantsTestCase):
    def test_it_lists_and_plays_only_the_playlists_recordings(self) -> None:
        playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="checkout trouble"
        )
        recording = self.own.recording
        playlists.playlist_pin(playlist=playlist, recordings=[recording], user=None)
        _, token = playlists.share_link_create(target=playlist, user=self.alice)
        page = self.client.get(f"/share/{token}/")
        self.assertEqual(page.status_code, 200)
        body = page.content.decode()
        self.assertIn("checkout trouble", body)
        self.assertNotIn("zqalpha-person", body)
        held = f"/share/{token}/recordings/{recording.code}/events/"
        self.assertEqual(self.client.get(held).status_code, 200)
        other = f"/share/{token}/recordings/{self.other.recording.code}/events/"
        self.assertEqual(self.client.get(other).status_code, 404)
        self.assertEqual(self.client.get(f"/share/{token}/events/").status_code, 404)
        self.assertEqual(ShareLinkView.objects.count(), 1)
