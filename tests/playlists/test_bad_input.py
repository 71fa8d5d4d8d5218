"""Bad input to the curation API's write endpoints: a 4xx JSON naming the field,
never a 5xx, and nothing written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.timezone import now

from playlists.models import MAX_SHARE_VIEWS, Playlist, PlaylistPin, ShareLink
from playlists.services import share_link_create
from recordings.models import Comment, Recording, RecordingTag
from tests.base import ReplayTestCase


class BadInputTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        start = now() - dt.timedelta(hours=1)
        self.recording = Recording.objects.create(
            project=self.project,
            session_id="s",
            started_at=start,
            ended_at=start,
            duration_ms=60_000,
        )
        self.playlist = Playlist.objects.create(
            project=self.project, owner=self.alice, name="p"
        )
        self.client.force_login(self.alice)

    def post(self, url: str, body: Any) -> Any:
        return self.client.post(url, body, content_type="application/json")

    def assertRefused(self, response: Any, field: str) -> None:
        self.assertGreaterEqual(response.status_code, 400, response.content)
        self.assertLess(response.status_code, 500, response.content)
        self.assertIn(field, response.content.decode(), response.content)
        self.assertIn("error", response.json())

    def test_comments(self) -> None:
        url = f"/api/v1/recordings/{self.recording.code}/comments/"
        for body, field in (
            ({"text": "", "offset_ms": 0}, "text"),
            ({"text": "x" * 6000, "offset_ms": 0}, "text"),
            ({"text": "x", "offset_ms": -1}, "offset_ms"),
            ({"text": "x", "offset_ms": "soon"}, "offset_ms"),
            ({"text": "x\x00y", "offset_ms": 0}, "text"),
            ({"text": "x", "offset_ms": 0, "window_id": "w" * 300}, "window_id"),
        ):
            with self.subTest(body=str(body)[:60]):
                self.assertRefused(self.post(url, body), field)
        self.assertFalse(Comment.objects.exists())

    def test_tags(self) -> None:
        url = f"/api/v1/recordings/{self.recording.code}/tags/"
        for body in ({"name": ""}, {"name": "t" * 51}, {"name": "a\x00b"}):
            with self.subTest(body=str(body)[:60]):
                self.assertRefused(self.post(url, body), "name")
        self.assertFalse(RecordingTag.objects.exists())

    def test_playlists_and_pins(self) -> None:
        for body, field in (
            ({"project": str(self.project.code), "name": ""}, "name"),
            ({"project": str(self.project.code), "name": "x" * 201}, "name"),
            ({"project": "not-a-uuid", "name": "x"}, "project"),
            (
                {"project": str(self.project.code), "name": "x", "filter": 7},
                "invalid_filter",
            ),
        ):
            with self.subTest(body=str(body)[:60]):
                self.assertRefused(self.post("/api/v1/playlists/", body), field)
        self.assertEqual(Playlist.objects.count(), 1)
        pins = f"/api/v1/playlists/{self.playlist.code}/pins/"
        bodies: list[dict[str, Any]] = [
            {"recordings": "nope"},
            {"recordings": ["not-a-uuid"]},
            {},
        ]
        for body in bodies:
            with self.subTest(body=str(body)):
                self.assertRefused(self.post(pins, body), "recordings")
        self.assertFalse(PlaylistPin.objects.exists())

    def test_share_links(self) -> None:
        url = f"/api/v1/recordings/{self.recording.code}/share-links/"
        for body, field in (
            ({"days": 0}, "days"),
            ({"days": 10_000}, "days"),
            ({"days": "week"}, "days"),
            ({"days": 1, "max_views": -1}, "max_views"),
            ({"days": 1, "max_views": 0}, "max_views"),
            ({"days": 1, "max_views": 2**31}, "max_views"),
            ({"days": 1, "max_views": 2**63}, "max_views"),
            ({"days": 2**31}, "days"),
        ):
            with self.subTest(body=str(body)):
                self.assertRefused(self.post(url, body), field)
        self.assertFalse(ShareLink.objects.exists())

    def test_share_link_view_limits(self) -> None:
        """`max_views` is bounded (1 to MAX_SHARE_VIEWS) on every way in: the API's
        two endpoints, the admin's form and the service itself."""
        urls = (
            f"/api/v1/recordings/{self.recording.code}/share-links/",
            f"/api/v1/playlists/{self.playlist.code}/share-links/",
        )
        for url in urls:
            for value in (2**31, -1, MAX_SHARE_VIEWS + 1):
                with self.subTest(url=url, max_views=value):
                    response = self.post(url, {"days": 1, "max_views": value})
                    self.assertEqual(response.status_code, 400)
                    self.assertEqual(response.json()["error"], "invalid")
                    self.assertIn("max_views", response.json()["detail"])
        admin = reverse(
            "admin:recordings_recording_share_link", args=[self.recording.code]
        )
        for value in (2**31, -1):
            with self.subTest(admin=value):
                response = self.client.post(
                    admin, {"days": "1", "max_views": str(value)}
                )
                self.assertEqual(response.status_code, 200)
                self.assertTrue(response.context["form"].errors["max_views"])
        for value in (2**31, 0):
            with self.subTest(service=value), self.assertRaises(ValidationError):
                share_link_create(
                    target=self.recording, user=self.alice, max_views=value
                )
        self.assertFalse(ShareLink.objects.exists())
        made = self.post(urls[0], {"days": 1, "max_views": MAX_SHARE_VIEWS})
        self.assertEqual(made.status_code, 201, made.content)

    def test_a_bad_share_token_is_a_404_page(self) -> None:
        self.client.logout()
        for token in ("x", "rhs_" + "a" * 500, "rhs_%00"):
            with self.subTest(token=token[:20]):
                response = self.client.get(f"/share/{token}/")
                self.assertEqual(response.status_code, 404)
