"""The recording list's filter: one filter-language document in `?filter=`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.contrib.messages import get_messages
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recordings import access
from recordings.models import Recording, Tag
from recordings.models.recording import LIST_DEFERRED
from recordings.services.projects import role_grant
from replayhub.celery import app
from tests.base import ReplayTestCase
from tests.finding import (
    LLM_ERROR_ANSWER,
    LLM_ERROR_FILTER,
    add_event,
    make_llm_sessions,
    make_recording,
)

LIST = "admin:recordings_recording_changelist"
DELETE_MATCHING = "admin:recordings_recording_delete_matching"
EVENT_NAMES = "admin:recordings_recording_event_names"


def with_filter(name: str, document: Any, **params: str) -> str:
    text = document if isinstance(document, str) else json.dumps(document)
    return reverse(name) + "?" + urlencode({"filter": text, **params})


def where(*terms: dict[str, Any], order: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"version": 1, "where": {"all": list(terms)}}
    if order:
        document["order"] = order
    return document


ERRORS = {"term": "signal", "signal": "console_errors", "gte": 1}


def confirm(client: Any, url: str, **kwargs: Any) -> Any:
    """Open the delete-matching page, then confirm what it counted."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    fingerprint = page.context["fingerprint"]
    return client.post(url, {"fingerprint": fingerprint}, **kwargs)


class FilteredListTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.chrome_long = make_recording(
            self.project,
            "chrome-long",
            browser="Chrome",
            device_type="Desktop",
            duration_ms=600_000,
            console_error_count=2,
        )
        self.chrome_short = make_recording(
            self.project, "chrome-short", browser="Chrome", duration_ms=20_000
        )
        self.safari = make_recording(
            self.project,
            "safari-long",
            browser="Mobile Safari",
            device_type="Mobile",
            duration_ms=900_000,
            console_error_count=1,
        )
        self.client.force_login(self.alice)

    def listed(self, url: str) -> list[str]:
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        return [r.session_id for r in response.context["cl"].result_list]

    def test_it_lists_what_the_filter_finds(self) -> None:
        document = where(
            {"term": "browser", "in": ["Chrome"]}, {"term": "duration", "gte": 300}
        )
        self.assertEqual(self.listed(with_filter(LIST, document)), ["chrome-long"])

    def test_it_lists_in_the_documents_order_unless_a_column_is_sorted(self) -> None:
        longest = where(order="longest")
        self.assertEqual(
            self.listed(with_filter(LIST, longest)),
            ["safari-long", "chrome-long", "chrome-short"],
        )
        # Column 3 is duration_ (the action checkbox is column 0): ascending.
        self.assertEqual(
            self.listed(with_filter(LIST, longest, o="3")),
            ["chrome-short", "chrome-long", "safari-long"],
        )

    def test_the_list_leaves_the_columns_it_never_shows_unread(self) -> None:
        Recording.objects.filter(pk=self.safari.pk).update(
            urls=[{"url": "https://shop.test/" + "x" * 1000}] * 50
        )
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(len(self.listed(reverse(LIST))), 3)
        page = [
            q["sql"]
            for q in queries
            if "LIMIT" in q["sql"] and '"started_at"' in q["sql"]
        ]
        self.assertTrue(page, "the page's query was not found")
        for column in LIST_DEFERRED:
            self.assertNotIn(f'."{column}"', page[-1])

    def test_it_counts_the_matching_recordings(self) -> None:
        response = self.client.get(with_filter(LIST, where(ERRORS)))
        self.assertEqual(response.context["cl"].result_count, 2)
        self.assertContains(response, "<strong>2</strong> recordings")
        self.assertContains(response, "match this filter")

    def test_it_finds_an_event_followed_by_an_error_and_an_event_not_done(
        self,
    ) -> None:
        make_llm_sessions(self.project)
        found = self.listed(with_filter(LIST, LLM_ERROR_FILTER))
        self.assertEqual(set(found), LLM_ERROR_ANSWER)

    def test_a_filter_that_does_not_validate_shows_its_problems_and_nothing(
        self,
    ) -> None:
        document = where({"term": "duration", "gte": "long"}, {"term": "nope"})
        response = self.client.get(with_filter(LIST, document))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(list(response.context["cl"].result_list), [])
        errors = [str(m) for m in get_messages(response.wsgi_request)]
        self.assertEqual(len(errors), 1)
        self.assertIn("The filter was not applied", errors[0])
        self.assertIn("/where/all/0/gte", errors[0])
        self.assertIn("/where/all/1", errors[0])
        self.assertContains(response, "no recordings are shown")
        self.assertNotContains(response, "chrome-long")

    def test_a_filter_that_is_not_json_shows_a_problem(self) -> None:
        response = self.client.get(with_filter(LIST, '{"version": 1,'))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(list(response.context["cl"].result_list), [])
        self.assertContains(response, "is not valid JSON")

    def test_select_all_runs_the_action_on_every_matching_recording(self) -> None:
        url = with_filter(LIST, where(ERRORS))
        response = self.client.post(
            url,
            {
                "action": "place_legal_hold",
                "select_across": "1",
                "index": "0",
                "_selected_action": [self.chrome_long.pk],
            },
        )
        self.assertEqual(response.status_code, 302)
        held = Recording.objects.filter(legal_hold=True)
        self.assertEqual(
            set(held.values_list("session_id", flat=True)),
            {"chrome-long", "safari-long"},
        )

    def test_select_all_under_a_bad_filter_touches_nothing(self) -> None:
        url = with_filter(LIST, where({"term": "duration"}))
        self.client.post(
            url,
            {
                "action": "place_legal_hold",
                "select_across": "1",
                "index": "0",
                "_selected_action": [self.chrome_long.pk],
            },
        )
        self.assertFalse(Recording.objects.filter(legal_hold=True).exists())

    def test_the_pickers_offer_the_values_of_visible_recordings_only(self) -> None:
        elsewhere = self.make_charlies_project("Charlie's shop")
        make_recording(elsewhere, "charlies", browser="Charlies Browser")
        Tag.objects.create(project=elsewhere, name="charlies-secret-tag")
        Tag.objects.create(project=self.project, name="bug")
        response = self.client.get(reverse(LIST))
        choices = response.context["filter_ui"]["choices"]
        self.assertEqual(choices["browser"], ["Chrome", "Mobile Safari"])
        self.assertEqual(choices["device_type"], ["Desktop", "Mobile"])
        self.assertEqual(choices["tag"], ["bug"])
        self.assertNotContains(response, "Charlies Browser")
        self.assertNotContains(response, "charlies-secret-tag")

    def test_the_page_runs_only_its_own_script_files(self) -> None:
        response = self.client.get(with_filter(LIST, where(ERRORS)))
        self.assertIn("script-src 'self'", response["Content-Security-Policy"])
        html = response.content.decode()
        self.assertIn("recordings/recording_filter.js", html)
        self.assertIn('id="replayhub-filter-data" type="application/json"', html)
        # Every script element has a source or holds data, never code.
        for tag in html.split("<script")[1:]:
            head = tag.split(">", 1)[0]
            self.assertTrue("src=" in head or "application/json" in head, head)

    def test_the_filter_survives_in_the_pages_links(self) -> None:
        response = self.client.get(with_filter(LIST, where(ERRORS)))
        cl = response.context["cl"]
        self.assertIn("filter=", cl.get_query_string({"o": "1"}))
        self.assertNotIn("filter=", cl.clear_all_filters_qs)

    def test_viewers_filter_too_but_are_not_offered_deletion(self) -> None:
        self.client.force_login(self.bob)
        response = self.client.get(with_filter(LIST, where(ERRORS)))
        self.assertEqual(response.context["cl"].result_count, 2)
        self.assertNotContains(response, "Delete everything matching")
        self.client.force_login(self.alice)
        response = self.client.get(with_filter(LIST, where(ERRORS)))
        self.assertContains(response, "Delete everything matching")


class DeleteMatchingTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.errors = make_recording(self.project, "errors", console_error_count=3)
        self.held = make_recording(
            self.project, "held-errors", console_error_count=1, legal_hold=True
        )
        self.calm = make_recording(self.project, "calm")
        self.url = with_filter(DELETE_MATCHING, where(ERRORS))

    def remaining(self) -> set[str]:
        return set(Recording.objects.values_list("session_id", flat=True))

    def test_it_counts_what_goes_and_what_legal_holds_keep(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.get(self.url)
        self.assertEqual(response.status_code, 200)
        report = response.context["report"]
        self.assertEqual((report.matched, report.held), (2, 1))
        self.assertEqual(response.context["to_delete"], 1)
        self.assertContains(response, "<strong>1</strong> will be deleted")
        self.assertContains(response, "<strong>1</strong> is on legal hold")
        self.assertContains(response, "Yes, delete 1 recording")
        self.assertEqual(self.remaining(), {"errors", "held-errors", "calm"})

    def test_confirming_deletes_the_matching_recordings_but_held_ones(self) -> None:
        self.client.force_login(self.alice)
        response = confirm(self.client, self.url)
        self.assertEqual(response.status_code, 302)
        self.assertIn("filter=", response["Location"])
        self.assertEqual(self.remaining(), {"held-errors", "calm"})
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        self.assertIn("Deleted 1 recording(s)", messages[0])
        self.assertIn("kept 1 on legal hold", messages[0])

    def test_viewers_cannot_delete_matching_recordings(self) -> None:
        editor = self.make_teammate("editor", access.Role.EDITOR)
        for user in (self.bob, editor):
            with self.subTest(user.username):
                self.client.force_login(user)
                self.assertEqual(self.client.get(self.url).status_code, 403)
                self.assertEqual(self.client.post(self.url).status_code, 403)
        self.assertEqual(self.remaining(), {"errors", "held-errors", "calm"})

    def test_it_deletes_only_where_the_user_may_delete(self) -> None:
        watched = self.make_charlies_project("Charlie's shop")
        role_grant(project=watched, principal=self.alice, role=access.Role.VIEWER)
        make_recording(watched, "charlies-errors", console_error_count=5)
        self.client.force_login(self.alice)
        page = self.client.get(self.url)
        self.assertEqual(page.context["view_only"], 1)
        self.assertContains(page, "1 more matches in projects where you may only watch")
        confirm(self.client, self.url)
        self.assertEqual(self.remaining(), {"held-errors", "calm", "charlies-errors"})

    def test_a_bad_filter_deletes_nothing(self) -> None:
        self.client.force_login(self.alice)
        url = with_filter(DELETE_MATCHING, where({"term": "signal", "gte": 1}))
        page = self.client.post(url)
        self.assertEqual(page.status_code, 200)
        self.assertContains(page, "nothing can be deleted")
        self.assertContains(page, "/where/all/0")
        self.assertEqual(self.remaining(), {"errors", "held-errors", "calm"})

    def test_it_refuses_while_the_list_is_also_searched(self) -> None:
        self.client.force_login(self.alice)
        url = with_filter(DELETE_MATCHING, where(ERRORS), q="errors")
        page = self.client.post(url)
        self.assertContains(page, "clear the search box first")
        self.assertEqual(self.remaining(), {"errors", "held-errors", "calm"})

    def test_it_keeps_to_the_project_the_sidebar_picked(self) -> None:
        other = self.make_project("Second shop")
        make_recording(other, "second-errors", console_error_count=1)
        self.client.force_login(self.alice)
        url = with_filter(
            DELETE_MATCHING, where(ERRORS), project__id__exact=str(other.pk)
        )
        confirm(self.client, url)
        self.assertEqual(self.remaining(), {"errors", "held-errors", "calm"})


class EventNamesTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        add_event(make_recording(self.project, "a"), "checkout_started", 1, step=2)
        elsewhere = self.make_charlies_project("Charlie's shop")
        add_event(make_recording(elsewhere, "b"), "charlies_secret_event", 1)

    def test_it_lists_the_names_of_events_in_visible_projects(self) -> None:
        self.client.force_login(self.bob)
        names = self.client.get(reverse(EVENT_NAMES)).json()["names"]
        self.assertEqual(names, ["checkout_started"])

    def test_it_lists_property_keys_of_an_event(self) -> None:
        self.client.force_login(self.bob)
        url = reverse(EVENT_NAMES) + "?name=checkout_started"
        self.assertEqual(self.client.get(url).json(), {"keys": ["step"]})
        url = reverse(EVENT_NAMES) + "?name=charlies_secret_event"
        self.assertEqual(self.client.get(url).json(), {"keys": []})

    def test_outsiders_get_nothing(self) -> None:
        # charlie uses ReplayHub, on his own project only.
        self.client.force_login(self.charlie)
        names = self.client.get(reverse(EVENT_NAMES)).json()["names"]
        self.assertEqual(names, ["charlies_secret_event"])


class OldListUrlsTests(ReplayTestCase):
    """Bookmarks of the list's yes/no filters open the same list, as a document."""

    def setUp(self) -> None:
        super().setUp()
        make_recording(self.project, "rage-no-errors", rage_click_count=2)
        make_recording(
            self.project, "rage-and-errors", rage_click_count=1, console_error_count=1
        )
        make_recording(self.project, "held", legal_hold=True, browser="Chrome")
        self.client.force_login(self.bob)

    def followed(self, query: str) -> tuple[str, list[str]]:
        response = self.client.get(reverse(LIST) + query, follow=True)
        ((location, status),) = response.redirect_chain
        self.assertEqual(status, 302)
        sessions = [r.session_id for r in response.context["cl"].result_list]
        return location, sessions

    def test_yes_no_filters_become_terms(self) -> None:
        location, sessions = self.followed("?rage=yes&errors=no&o=1")
        self.assertEqual(sessions, ["rage-no-errors"])
        self.assertIn("o=1", location)
        document = json.loads(parse_qs(urlsplit(location).query)["filter"][0])
        self.assertEqual(
            document["where"]["all"],
            [
                {"term": "signal", "signal": "rage_clicks", "gte": 1},
                {"term": "signal", "signal": "console_errors", "lte": 0},
            ],
        )

    def test_field_filters_become_terms(self) -> None:
        _, sessions = self.followed("?legal_hold__exact=1&browser__exact=Chrome")
        self.assertEqual(sessions, ["held"])
        _, sessions = self.followed("?has_full_snapshot__exact=0")
        self.assertEqual(sessions, [])
        _, sessions = self.followed("?lost=no")
        self.assertEqual(len(sessions), 3)

    def test_the_date_drill_down_becomes_a_range(self) -> None:
        year = Recording.objects.earliest("started_at").started_at.year
        _, sessions = self.followed(f"?started_at__year={year}")
        self.assertEqual(len(sessions), 3)
        _, sessions = self.followed(f"?started_at__year={year - 1}&started_at__month=2")
        self.assertEqual(sessions, [])


class DeleteMatchingInTheBackgroundTests(ReplayTestCase):
    def test_a_large_set_is_deleted_by_the_task_holds_kept(self) -> None:
        for index in range(3):
            make_recording(self.project, f"errors-{index}", console_error_count=1)
        make_recording(self.project, "held", console_error_count=1, legal_hold=True)
        make_recording(self.project, "calm")
        self.client.force_login(self.alice)
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)
        url = with_filter(DELETE_MATCHING, where(ERRORS))
        with (
            override_settings(REPLAYHUB_PURGE_SYNC_MAX=2),
            self.captureOnCommitCallbacks(execute=True) as queued,
        ):
            response = confirm(self.client, url, follow=True)
        self.assertEqual(len(queued), 1)
        self.assertContains(response, "Deleting 3 recording(s)")
        remaining = Recording.objects.values_list("session_id", flat=True)
        self.assertEqual(set(remaining), {"held", "calm"})
