"""A lone surrogate in any text of a filter is a problem of the filter, on every
surface: the API's `invalid_filter` 400, the admin's problems, nothing run.

"\\ud800" is valid JSON but no Unicode text: it cannot be encoded as UTF-8, so
PostgreSQL's driver refused it with a UnicodeEncodeError (a 500) wherever the
filter reached the database. Runs on SQLite and on PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from playlists import services as playlists
from playlists.models import Playlist, PlaylistPin
from recordings.models import Recording
from recordings.search.language import FilterInvalid, parse_document
from tests.base import ReplayTestCase
from tests.finding import make_recording

LONE = "\ud800"
# Every place a filter holds text, a lone surrogate in it, and the pointer to it.
TEXT_PLACES: list[tuple[dict[str, Any], str]] = [
    ({"term": "browser", "in": ["Safari", LONE]}, "/where/in/1"),
    ({"term": "distinct_id", "in": [LONE]}, "/where/in/0"),
    ({"term": "session_id", "in": ["a" + LONE + "b"]}, "/where/in/0"),
    ({"term": "person", "key": "plan", "op": "equals", "value": LONE}, "/where/value"),
    ({"term": "person", "key": LONE, "op": "is_set"}, "/where/key"),
    ({"term": "event", "name": LONE}, "/where/name"),
    (
        {
            "term": "event",
            "name": "signup",
            "where": [{"key": "plan", "op": "contains", "value": LONE}],
        },
        "/where/where/0/value",
    ),
    (
        {
            "term": "event",
            "name": "signup",
            "followed_by": {"within": 5, "target": {"event": LONE}},
        },
        "/where/followed_by/target/event",
    ),
    ({"term": "feature_flag", "flag": LONE}, "/where/flag"),
    ({"term": "feature_flag", "flag": "beta", "value": LONE}, "/where/value"),
    ({"term": "url", "op": "contains", "value": LONE}, "/where/value"),
    ({"term": "first_url", "op": "starts_with", "value": LONE}, "/where/value"),
    ({"term": "sdk", "lib": LONE}, "/where/lib"),
    (
        {"term": "sdk", "version": {"op": "equals", "value": LONE}},
        "/where/version/value",
    ),
    ({"term": "tag", "in": [LONE]}, "/where/in/0"),
    ({"term": "commented", "contains": LONE}, "/where/contains"),
    ({"term": LONE}, "/where/term"),
]
SURROGATE_PROBLEM = "surrogate"


def document(term: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "where": term}


def url_with(name: str, data: Any, **params: str) -> str:
    return reverse(name) + "?" + urlencode({"filter": json.dumps(data), **params})


@pytest.mark.parametrize(("term", "pointer"), TEXT_PLACES)
def test_validation_refuses_a_lone_surrogate_anywhere(
    term: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(FilterInvalid) as caught:
        parse_document(document(term))
    problems = {p.pointer: p.message for p in caught.value.problems}
    assert SURROGATE_PROBLEM in problems[pointer]
    assert "U+D800" in problems[pointer]
    for problem in caught.value.problems:  # every problem can be shown and sent
        problem.pointer.encode()
        problem.message.encode()


def test_an_unknown_key_holding_one_is_pointed_at_in_valid_text() -> None:
    with pytest.raises(FilterInvalid) as caught:
        parse_document({"version": 1, "x" + LONE: 1})
    (problem,) = caught.value.problems
    assert problem.pointer == "/x\\ud800"
    problem.pointer.encode()


class SurrogateSurfaceCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.safari = make_recording(self.project, "safari", browser="Safari")
        self.chrome = make_recording(self.project, "chrome", browser="Chrome")
        self.client.force_login(self.alice)
        self.client.raise_request_exception = False  # a crash must show as a 500

    def assertInvalidFilter(
        self, response: Any, pointer: str, says: str = SURROGATE_PROBLEM
    ) -> None:
        self.assertEqual(response.status_code, 400, response.content[:300])
        body = response.json()
        self.assertEqual(body["error"], "invalid_filter")
        problems = {p["pointer"]: p["message"] for p in body["problems"]}
        self.assertIn(pointer, problems)
        self.assertIn(says, problems[pointer])

    def assertAllKept(self) -> None:
        self.assertEqual(Recording.objects.count(), 2)


class ApiSurrogateTests(SurrogateSurfaceCase):
    def test_search_refuses_it(self) -> None:
        for term, pointer in TEXT_PLACES:
            with self.subTest(pointer=pointer, term=str(term)[:60]):
                response = self.client.post(
                    "/api/v1/recordings/search/",
                    document(term),
                    content_type="application/json",
                )
                self.assertInvalidFilter(response, pointer)

    def test_the_list_refuses_it_in_the_filter_parameter(self) -> None:
        for term, pointer in TEXT_PLACES:
            with self.subTest(pointer=pointer, term=str(term)[:60]):
                response = self.client.get(
                    "/api/v1/recordings/", {"filter": json.dumps(document(term))}
                )
                self.assertInvalidFilter(response, pointer)

    def test_an_unknown_key_holding_one_is_a_400_too(self) -> None:
        response = self.client.post(
            "/api/v1/recordings/search/",
            {"version": 1, "x" + LONE: 1},
            content_type="application/json",
        )
        self.assertInvalidFilter(response, "/x\\ud800", "unknown key")

    def test_delete_refuses_it_and_deletes_nothing(self) -> None:
        for dry_run in (True, False):
            for term, pointer in TEXT_PLACES[:3]:
                with self.subTest(dry_run=dry_run, pointer=pointer):
                    response = self.client.post(
                        "/api/v1/recordings/delete/",
                        {"filter": document(term), "dry_run": dry_run},
                        content_type="application/json",
                    )
                    self.assertInvalidFilter(response, pointer)
        self.assertAllKept()

    def test_playlists_refuse_it_as_their_filter(self) -> None:
        term, pointer = TEXT_PLACES[0]
        body = {
            "project": str(self.project.code),
            "name": "p",
            "filter": document(term),
        }
        response = self.client.post(
            "/api/v1/playlists/", body, content_type="application/json"
        )
        self.assertInvalidFilter(response, pointer)
        self.assertFalse(Playlist.objects.exists())
        playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="p"
        )
        response = self.client.patch(
            f"/api/v1/playlists/{playlist.code}/",
            {"filter": document(term)},
            content_type="application/json",
        )
        self.assertInvalidFilter(response, pointer)
        playlist.refresh_from_db()
        self.assertIsNone(playlist.filter)


class AdminSurrogateTests(SurrogateSurfaceCase):
    LIST = "admin:recordings_recording_changelist"
    DELETE_MATCHING = "admin:recordings_recording_delete_matching"

    def assertProblemShown(self, response: Any, pointer: str) -> None:
        self.assertEqual(response.status_code, 200, response.content[:300])
        self.assertContains(response, pointer)
        self.assertContains(response, SURROGATE_PROBLEM)

    def test_the_list_shows_the_problem_and_no_recordings(self) -> None:
        for term, pointer in TEXT_PLACES:
            with self.subTest(pointer=pointer, term=str(term)[:60]):
                response = self.client.get(url_with(self.LIST, document(term)))
                self.assertEqual(response.status_code, 200, response.content[:300])
                self.assertEqual(list(response.context["cl"].result_list), [])
                errors = " ".join(str(m) for m in get_messages(response.wsgi_request))
                self.assertIn(pointer, errors)
                self.assertIn(SURROGATE_PROBLEM, errors)

    def test_delete_matching_shows_the_problem_and_deletes_nothing(self) -> None:
        term, pointer = TEXT_PLACES[0]
        url = url_with(self.DELETE_MATCHING, document(term))
        self.assertProblemShown(self.client.get(url), pointer)
        self.assertProblemShown(self.client.post(url), pointer)
        self.assertAllKept()

    def test_add_to_playlist_under_it_pins_nothing(self) -> None:
        playlist = playlists.playlist_create(
            project=self.project, owner=self.alice, name="picks"
        )
        term, _ = TEXT_PLACES[0]
        for apply in ({}, {"apply": "1", "playlist": str(playlist.code)}):
            with self.subTest(apply=bool(apply)):
                response = self.client.post(
                    url_with(self.LIST, document(term)),
                    {
                        "action": "add_to_playlist",
                        "select_across": "1",
                        "index": "0",
                        "_selected_action": [self.safari.pk],
                        **apply,
                    },
                )
                self.assertLess(response.status_code, 500, response.content[:300])
        self.assertFalse(PlaylistPin.objects.exists())

    def test_the_playlist_form_shows_the_problem(self) -> None:
        term, pointer = TEXT_PLACES[0]
        form = {
            "name": "new one",
            "description": "",
            "project": self.project.pk,
            "filter": json.dumps(document(term)),
        }
        response = self.client.post(reverse("admin:playlists_playlist_add"), form)
        self.assertProblemShown(response, pointer)
        self.assertIn("filter", response.context["adminform"].form.errors)
        self.assertFalse(Playlist.objects.exists())

    def test_save_as_playlist_opens_the_form_with_it_escaped(self) -> None:
        term, _ = TEXT_PLACES[0]
        add = url_with("admin:playlists_playlist_add", document(term))
        response = self.client.get(add)
        self.assertContains(response, "\\ud800")
