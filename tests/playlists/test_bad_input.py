"""Bad input to the curation API's write endpoints: a 4xx JSON naming the field,
never a 5xx, and nothing written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.timezone import now

from playlists.models import Playlist, PlaylistPin, ShareLink
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
        ):
            with self.subTest(body=str(body)):
                self.assertRefused(self.post(url, body), field)
        self.assertFalse(ShareLink.objects.exists())

    def test_a_bad_share_token_is_a_404_page(self) -> None:
        self.client.logout()
        for token in ("x", "rhs_" + "a" * 500, "rhs_%00"):
            with self.subTest(token=token[:20]):
                response = self.client.get(f"/share/{token}/")
                self.assertEqual(response.status_code, 404)
