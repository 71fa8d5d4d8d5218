"""The playlists and share links API: who sees, makes, curates and deletes what."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from playlists import access as playlist_access
from playlists import services as playlists
from playlists.models import Playlist, PlaylistVisit, ShareLink
from privacy.models import PrivacySettings
from recordings.access import Role
from recordings.models import ApiKey, Recording
from recordings.services.api_keys import api_key_create
from tests.recordings.test_management_api import TenantsTestCase

ONE_SESSION = {"version": 1, "where": {"term": "session_id", "in": ["zqalpha-session"]}}


class PlaylistApiCase(TenantsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", Role.EDITOR)
        self.mine = playlists.playlist_create(
            project=self.project, owner=self.alice, name="alice's"
        )

    def as_(self, user: Any) -> None:
        self.client.force_login(user)

    def key(
        self, user: Any, access_: str = "read", projects: Any = None
    ) -> dict[str, str]:
        key = ApiKey(user=user, name="ci", access=access_)
        secret = api_key_create(key=key, projects=projects or [self.project])
        self.client.logout()
        return {"Authorization": f"Bearer {secret}"}

    def post(self, url: str, data: Any, **kwargs: Any) -> Any:
        return self.client.post(url, data, content_type="application/json", **kwargs)

    def names(self, **kwargs: Any) -> list[str]:
        response = self.client.get("/api/v1/playlists/", **kwargs)
        self.assertEqual(response.status_code, 200)
        return [row["name"] for row in response.json()["results"]]


class PlaylistVisibilityTests(PlaylistApiCase):
    def test_it_lists_the_playlists_each_caller_sees(self) -> None:
        self.as_(self.alice)
        self.assertEqual(self.names(), ["alice's"])
        self.as_(self.bob)  # a viewer it is not shared with
        self.assertEqual(self.names(), [])
        playlist_access.playlist_share(playlist=self.mine, principal=self.bob)
        self.assertEqual(self.names(), ["alice's"])
        self.as_(self.charlie)
        self.assertEqual(self.names(), [])
        url = f"/api/v1/playlists/{self.mine.code}/"
        self.assertEqual(self.client.get(url).status_code, 404)

    def test_it_answers_count_and_new_with_a_fixed_number_of_queries(self) -> None:
        playlists.playlist_pin(
            playlist=self.mine, recordings=[self.own.recording], user=self.alice
        )
        self.as_(self.alice)
        row = self.client.get("/api/v1/playlists/").json()["results"][0]
        self.assertEqual((row["count"], row["new"]), (1, 1))
        with CaptureQueriesContext(connection) as one:
            self.client.get("/api/v1/playlists/")
        for n in range(3):
            playlists.playlist_create(
                project=self.project, owner=self.alice, name=f"{n}"
            )
        with CaptureQueriesContext(connection) as four:
            self.assertEqual(len(self.names()), 4)
        self.assertEqual(len(four), len(one))

    def test_a_key_sees_only_its_projects(self) -> None:
        second = self.make_project("zqbeta project")
        playlists.playlist_create(project=second, owner=self.alice, name="beta")
        self.as_(self.alice)
        self.assertEqual(self.names(), ["alice's", "beta"])
        self.assertEqual(self.names(headers=self.key(self.alice)), ["alice's"])


class PlaylistWriteTests(PlaylistApiCase):
    def create(self, **body: Any) -> Any:
        data = {"project": str(self.project.code), "name": "new", **body}
        return self.post("/api/v1/playlists/", data)

    def test_editors_create_viewers_and_outsiders_do_not(self) -> None:
        self.as_(self.erin)
        response = self.create(filter=ONE_SESSION)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["count"], 1)
        self.assertEqual(Playlist.objects.get(name="new").owner, self.erin)
        self.as_(self.bob)
        self.assertEqual(self.create().status_code, 403)
        self.as_(self.charlie)
        self.assertEqual(self.create().status_code, 404)

    def test_it_rejects_an_invalid_filter_with_its_problems(self) -> None:
        self.as_(self.alice)
        bad = self.create(filter={"version": 1, "where": {"term": "nope"}})
        self.assertEqual(bad.status_code, 400)
        self.assertEqual(bad.json()["error"], "invalid_filter")
        self.assertTrue(bad.json()["problems"])
        own_kind = {"term": "in_playlist", "in": [str(self.mine.code)]}
        nested = self.create(filter={"version": 1, "where": own_kind})
        self.assertEqual(nested.json()["error"], "invalid_filter")

    def test_a_read_only_key_only_reads(self) -> None:
        headers = self.key(self.alice)
        self.assertEqual(self.names(headers=headers), ["alice's"])
        data = {"project": str(self.project.code), "name": "x"}
        response = self.post("/api/v1/playlists/", data, headers=headers)
        self.assertEqual(response.status_code, 403)
        write = self.key(self.alice, "write")
        self.assertEqual(
            self.post("/api/v1/playlists/", data, headers=write).status_code, 201
        )

    def test_who_curates_and_deletes(self) -> None:
        url = f"/api/v1/playlists/{self.mine.code}/"
        self.as_(self.erin)  # an editor it is not shared with: not even seen
        patch = {"name": "renamed"}
        resp = self.client.patch(url, patch, content_type="application/json")
        self.assertEqual(resp.status_code, 404)
        playlist_access.playlist_share(playlist=self.mine, principal=self.erin)
        resp = self.client.patch(url, patch, content_type="application/json")
        self.assertEqual(resp.status_code, 403)  # shared to see, not to edit
        playlist_access.playlist_share(
            playlist=self.mine, principal=self.erin, can_edit=True
        )
        resp = self.client.patch(url, patch, content_type="application/json")
        self.assertEqual(resp.json()["name"], "renamed")
        self.assertEqual(self.client.delete(url).status_code, 403)  # not hers
        self.as_(self.alice)
        self.assertEqual(self.client.delete(url).status_code, 204)
        self.assertFalse(Playlist.objects.filter(pk=self.mine.pk).exists())

    def test_pins_and_recordings(self) -> None:
        self.as_(self.alice)
        base = f"/api/v1/playlists/{self.mine.code}"
        code = str(self.own.recording.code)
        pinned = self.post(f"{base}/pins/", {"recordings": [code], "note": "look"})
        self.assertEqual(pinned.json(), {"pinned": 1})
        other = str(self.other.recording.code)  # another project's: unknown here
        refused = self.post(f"{base}/pins/", {"recordings": [other]})
        self.assertEqual(refused.status_code, 400)
        rows = self.client.get(f"{base}/recordings/").json()["results"]
        self.assertEqual([r["code"] for r in rows], [code])
        self.assertTrue(
            PlaylistVisit.objects.filter(playlist=self.mine, user=self.alice).exists()
        )
        self.assertEqual(self.client.delete(f"{base}/pins/{code}/").status_code, 204)
        self.assertEqual(self.client.delete(f"{base}/pins/{code}/").status_code, 404)
        self.as_(self.bob)  # a viewer it is shared with may not pin
        playlist_access.playlist_share(playlist=self.mine, principal=self.bob)
        self.assertEqual(
            self.post(f"{base}/pins/", {"recordings": [code]}).status_code, 403
        )


class ShareLinkApiTests(PlaylistApiCase):
    def share(self, url: str, **body: Any) -> Any:
        return self.post(url, body)

    def test_editors_make_links_and_see_the_token_once(self) -> None:
        url = f"/api/v1/recordings/{self.own.recording.code}/share-links/"
        self.as_(self.erin)
        made = self.share(url, days=3, max_views=5)
        self.assertEqual(made.status_code, 201, made.content)
        token = made.json()["token"]
        self.assertTrue(made.json()["url"].endswith(f"/share/{token}/"))
        listed = self.client.get("/api/v1/share-links/")
        self.assertNotIn(token, listed.content.decode())
        self.assertEqual(listed.json()["results"][0]["state"], "ok")
        self.as_(self.bob)
        self.assertEqual(self.share(url).status_code, 403)
        self.assertEqual(self.client.get("/api/v1/share-links/").json()["results"], [])
        self.as_(self.charlie)
        self.assertEqual(self.share(url).status_code, 404)

    def test_a_playlist_link_and_revoking(self) -> None:
        self.as_(self.alice)
        made = self.share(f"/api/v1/playlists/{self.mine.code}/share-links/")
        self.assertEqual(made.status_code, 201)
        link = ShareLink.objects.get(playlist=self.mine)
        revoked = self.post(f"/api/v1/share-links/{link.pk}/revoke/", {})
        self.assertEqual(revoked.json()["state"], "revoked")
        link.refresh_from_db()
        self.assertIsNotNone(link.revoked_at)
        self.as_(self.charlie)
        url = f"/api/v1/share-links/{link.pk}/revoke/"
        self.assertEqual(self.post(url, {}).status_code, 404)

    def test_project_privacy_limits_links(self) -> None:
        url = f"/api/v1/recordings/{self.own.recording.code}/share-links/"
        self.as_(self.alice)
        too_long = self.share(url, days=400)
        self.assertEqual(too_long.json()["error"], "invalid")
        PrivacySettings.objects.filter(project=self.project).update(
            share_links_allowed=False
        )
        forbidden = self.share(url)
        self.assertEqual(forbidden.status_code, 403)
        self.assertEqual(forbidden.json()["error"], "share_links_forbidden")
        self.assertFalse(ShareLink.objects.exists())
        self.assertTrue(Recording.objects.filter(pk=self.own.recording.pk).exists())
