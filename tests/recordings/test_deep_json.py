"""JSON nested past any sensible depth is a 4xx (API) or a problem shown (admin),
never a 500, and nothing is written or deleted.

Python's JSON parser recurses once per level: about 1,000 levels in a request body
or 990 `[` in the admin list's `?filter=` ran out of recursion (RecursionError).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib.messages import get_messages
from django.urls import reverse

from playlists import services as playlists
from playlists.models import Playlist
from recordings.models import Comment, Recording
from recordings.parsers import MAX_BODY_DEPTH
from recordings.search.language.document import MAX_NESTING
from tests.base import ReplayTestCase
from tests.finding import make_recording

# Levels a body or `?filter=` nests in these tests; the deepest as many bytes.
API_DEPTHS = (1_000, 100_000)
ADMIN_DEPTHS = (990, 10_000)


def nested_list(levels: int) -> str:
    return "[" * levels + "]" * levels


def with_deep(levels: int, body: str) -> str:
    """`body` (JSON text holding `@deep@`) with that value nested `levels` deep."""
    return body.replace('"@deep@"', nested_list(levels))


class DeepJsonCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.recording = make_recording(self.project, "safari", browser="Safari")
        self.client.force_login(self.alice)
        self.client.raise_request_exception = False  # a crash must show as a 500

    def post_text(self, url: str, text: str) -> Any:
        return self.client.post(url, text, content_type="application/json")


class ApiDeepBodyTests(DeepJsonCase):
    def assertTooDeep(self, response: Any) -> None:
        self.assertEqual(response.status_code, 400, response.content[:300])
        body = response.json()
        self.assertEqual(body["error"], "too_deep")
        self.assertIn(f"more than {MAX_BODY_DEPTH} levels", body["detail"])

    def assertFilterTooDeep(self, response: Any) -> None:
        self.assertEqual(response.status_code, 400, response.content[:300])
        body = response.json()
        self.assertEqual(body["error"], "invalid_filter")
        (problem,) = body["problems"]
        self.assertEqual(problem["pointer"], "")
        self.assertIn("levels deep", problem["message"])

    def test_search_refuses_a_deep_filter_as_invalid(self) -> None:
        for levels in API_DEPTHS:
            for body in ('{"version": 1, "where": "@deep@"}', '"@deep@"'):
                with self.subTest(levels=levels, body=body):
                    response = self.post_text(
                        "/api/v1/recordings/search/", with_deep(levels, body)
                    )
                    self.assertFilterTooDeep(response)

    def test_the_list_refuses_a_deep_filter_parameter(self) -> None:
        # 100,000 levels would be over the filter's 64 KiB (refused for that).
        for levels in (1_000, 30_000):
            with self.subTest(levels=levels):
                text = with_deep(levels, '{"version": 1, "where": "@deep@"}')
                response = self.client.get("/api/v1/recordings/", {"filter": text})
                self.assertEqual(response.status_code, 400, response.content[:300])
                problem = response.json()["problems"][0]
                self.assertIn(f"more than {MAX_NESTING} levels", problem["message"])

    def test_delete_refuses_it_and_deletes_nothing(self) -> None:
        for levels in API_DEPTHS:
            with self.subTest(levels=levels):
                body = '{"filter": {"version": 1, "where": "@deep@"}, "dry_run": false}'
                response = self.post_text(
                    "/api/v1/recordings/delete/", with_deep(levels, body)
                )
                self.assertTooDeep(response)
        self.assertTrue(Recording.objects.filter(pk=self.recording.pk).exists())

    def test_playlists_refuse_it_and_make_nothing(self) -> None:
        playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="kept"
        )
        body = json.dumps(
            {"project": str(self.project.code), "name": "deep", "filter": "@deep@"}
        )
        for levels in API_DEPTHS:
            with self.subTest(levels=levels):
                response = self.post_text("/api/v1/playlists/", with_deep(levels, body))
                self.assertTooDeep(response)
                response = self.client.patch(
                    f"/api/v1/playlists/{playlist.code}/",
                    with_deep(levels, '{"filter": "@deep@"}'),
                    content_type="application/json",
                )
                self.assertTooDeep(response)
        self.assertEqual(
            list(Playlist.objects.values_list("name", flat=True)), ["kept"]
        )
        playlist.refresh_from_db()
        self.assertIsNone(playlist.filter)

    def test_comments_refuse_it_and_write_nothing(self) -> None:
        url = f"/api/v1/recordings/{self.recording.code}/comments/"
        for levels in API_DEPTHS:
            for body in ('{"text": "@deep@", "offset_ms": 0}', '"@deep@"'):
                with self.subTest(levels=levels, body=body):
                    self.assertTooDeep(self.post_text(url, with_deep(levels, body)))
        self.assertFalse(Comment.objects.exists())

    def test_a_body_just_within_the_bound_is_read(self) -> None:
        # Not too deep: answered for what it says (a filter that is no filter).
        text = with_deep(MAX_BODY_DEPTH - 1, '{"version": 1, "where": "@deep@"}')
        response = self.post_text("/api/v1/recordings/search/", text)
        self.assertEqual(response.status_code, 400, response.content[:300])
        (problem,) = response.json()["problems"]
        self.assertEqual(problem["pointer"], "/where")

    def test_the_schema_names_the_codes(self) -> None:
        schema = json.loads(self.client.get("/api/v1/schema/?format=json").content)

        def codes(path: str, method: str) -> list[str]:
            response = schema["paths"][path][method]["responses"]["400"]
            enum: list[str] = response["content"]["application/json"]["schema"][
                "properties"
            ]["error"]["enum"]
            return enum

        for path in ("/api/v1/playlists/", "/api/v1/recordings/delete/"):
            self.assertIn("too_deep", codes(path, "post"))
        comments = "/api/v1/recordings/{recording_code}/comments/"
        self.assertIn("too_deep", codes(comments, "post"))
        # Search reads its body as the filter: anything unreadable is that.
        self.assertEqual(
            codes("/api/v1/recordings/search/", "post"), ["invalid_filter"]
        )


class AdminDeepFilterTests(DeepJsonCase):
    def url(self, name: str, levels: int) -> str:
        return reverse(name) + "?" + urlencode({"filter": nested_list(levels)})

    def test_the_list_shows_the_problem_and_no_recordings(self) -> None:
        for levels in ADMIN_DEPTHS:
            with self.subTest(levels=levels):
                url = self.url("admin:recordings_recording_changelist", levels)
                response = self.client.get(url)
                self.assertEqual(response.status_code, 200, response.content[:300])
                self.assertEqual(list(response.context["cl"].result_list), [])
                errors = " ".join(str(m) for m in get_messages(response.wsgi_request))
                self.assertIn(f"more than {MAX_NESTING} levels", errors)

    def test_delete_matching_deletes_nothing(self) -> None:
        for levels in ADMIN_DEPTHS:
            with self.subTest(levels=levels):
                url = self.url("admin:recordings_recording_delete_matching", levels)
                for response in (self.client.get(url), self.client.post(url)):
                    self.assertContains(response, f"more than {MAX_NESTING} levels")
        self.assertTrue(Recording.objects.filter(pk=self.recording.pk).exists())

    def test_the_playlist_form_shows_the_problem(self) -> None:
        for levels in ADMIN_DEPTHS:
            with self.subTest(levels=levels):
                form = {
                    "name": "deep",
                    "description": "",
                    "project": self.project.pk,
                    "filter": nested_list(levels),
                }
                add = reverse("admin:playlists_playlist_add")
                response = self.client.post(add, form)
                self.assertContains(response, f"more than {MAX_NESTING} levels")
                response = self.client.get(
                    self.url("admin:playlists_playlist_add", levels)
                )
                self.assertEqual(response.status_code, 200, response.content[:300])
        self.assertFalse(Playlist.objects.exists())
