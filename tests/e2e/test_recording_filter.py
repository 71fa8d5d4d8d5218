"""A person filters the recording list with the mouse, in Chromium, and shares it.

Over hand-made recordings with known answers (tests/finding.py), alice builds
"did llm_call_completed where model = claude-3-5-sonnet, followed by an error within
30 s, and did not do feedback_positive_clicked" in the builder, applies it, gets
exactly the sessions it should find, and gets them again from the URL alone: after
a reload, and when bob opens the link she pasted him.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import User

from recordings import access
from recordings.models import Project, Recording
from recordings.search.language import parse_document
from recordings.services import curation
from recordings.services.projects import role_grant
from tests.e2e.browser import log_in
from tests.finding import (
    FEEDBACK,
    LLM_CALL,
    LLM_ERROR_ANSWER,
    LLM_ERROR_FILTER,
    make_llm_sessions,
    make_recording,
)

pytestmark = pytest.mark.e2e

LIST = "/admin/recordings/recording/"
PASSWORD = "correct horse"


def listed(page: Any) -> set[str]:
    """The session ids of the recordings the page lists (rows link to the player)."""
    links = page.locator("#result_list a[href*='/play/']")
    codes = {href.split("/")[-3] for href in links.evaluate_all(HREFS)}
    return set(
        Recording.objects.filter(code__in=codes).values_list("session_id", flat=True)
    )


HREFS = "links => links.map(link => link.getAttribute('href'))"


def filter_in(url: str) -> Any:
    return json.loads(parse_qs(urlsplit(url).query)["filter"][0])


def person(browser: Any, server: str, username: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    log_in(page, server, username, PASSWORD)
    return context, page, errors


def build_llm_error_filter(page: Any) -> None:
    """The filter, with the mouse (and the keyboard for two values)."""
    page.click("#replayhub-advanced > summary")
    root = page.locator(".replayhub-root")
    add_event = root.locator(":scope > .replayhub-add .replayhub-add-event")
    events = root.locator(":scope > .replayhub-children > .replayhub-event")

    add_event.click()
    call = events.nth(0)
    call.locator(".replayhub-node-head .replayhub-event-name").select_option(LLM_CALL)
    call.locator(".replayhub-add-condition").click()
    call.locator(".replayhub-condition-key").fill("model")
    call.locator(".replayhub-condition-op").select_option("equals")
    call.locator(".replayhub-condition-value").fill("claude-3-5-sonnet")
    call.locator(".replayhub-follow-mode").select_option("followed")
    call.locator(".replayhub-follow-target").select_option("error")
    call.locator(".replayhub-follow-within").fill("30")

    add_event.click()
    feedback = events.nth(1)
    feedback.locator(".replayhub-negate").select_option("not")
    feedback.locator(".replayhub-node-head .replayhub-event-name").select_option(
        FEEDBACK
    )


@pytest.mark.django_db(transaction=True)
def test_an_event_filter_built_with_the_mouse_finds_and_is_shared_by_its_url(
    browser: Any, live_server: Any
) -> None:
    project = Project.objects.create(name="LLM app")
    for name, role in (("alice", access.Role.ADMIN), ("bob", access.Role.VIEWER)):
        user = User.objects.create_user(name, f"{name}@example.org", PASSWORD)
        role_grant(project=project, principal=user, role=role)
    sessions = make_llm_sessions(project)
    server = live_server.url

    context, page, errors = person(browser, server, "alice")
    page.goto(server + LIST)
    assert listed(page) == set(sessions), errors
    build_llm_error_filter(page)
    shown = json.loads(page.locator("#replayhub-filter-json-text").input_value())
    assert shown == LLM_ERROR_FILTER, shown
    page.click("#replayhub-filter-apply")
    page.wait_for_url("**filter=**")

    assert filter_in(page.url) == LLM_ERROR_FILTER
    assert listed(page) == LLM_ERROR_ANSWER, errors
    count = page.locator("#replayhub-filter-count").inner_text()
    assert count.startswith(f"{len(LLM_ERROR_ANSWER)} recordings match"), count

    page.reload()
    assert listed(page) == LLM_ERROR_ANSWER
    # The builder reads the document back from the URL, ready for the next change.
    call = page.locator(".replayhub-root > .replayhub-children > .replayhub-event")
    assert call.nth(0).locator(".replayhub-event-name").first.input_value() == LLM_CALL
    assert call.nth(1).locator(".replayhub-negate").input_value() == "not"
    assert page.locator("#replayhub-filter-apply").is_enabled()
    shared = page.url
    assert errors == [], errors
    context.close()

    context, page, errors = person(browser, server, "bob")
    page.goto(shared)
    assert listed(page) == LLM_ERROR_ANSWER
    assert page.locator(".replayhub-delete-matching").count() == 0  # a viewer
    assert errors == [], errors
    context.close()


@pytest.mark.django_db(transaction=True)
def test_the_quick_filters_write_ranges_and_choices_into_the_url(
    browser: Any, live_server: Any
) -> None:
    project = Project.objects.create(name="Shop")
    alice = User.objects.create_user("alice", "alice@example.org", PASSWORD)
    role_grant(project=project, principal=alice, role=access.Role.ADMIN)
    make_recording(
        project,
        "long-chrome",
        browser="Chrome",
        duration_ms=400_000,
        rage_click_count=2,
    )
    make_recording(project, "short-chrome", browser="Chrome", duration_ms=30_000)
    make_recording(
        project,
        "long-firefox",
        browser="Firefox",
        duration_ms=500_000,
        rage_click_count=1,
    )
    make_recording(project, "calm-chrome", browser="Chrome", duration_ms=700_000)
    server = live_server.url

    context, page, errors = person(browser, server, "alice")
    page.goto(server + LIST)
    page.select_option("#rf-when", "-24h")
    page.fill("#rf-duration-min", "300")
    page.locator("fieldset[data-term=browser] label", has_text="Chrome").click()
    page.click("#rf-signals > summary")
    page.fill("#rf-signal-rage_clicks-min", "1")
    page.select_option("#rf-order", "longest")
    page.click("#replayhub-filter-apply")
    page.wait_for_url("**filter=**")

    assert filter_in(page.url) == {
        "version": 1,
        "where": {
            "all": [
                {"term": "started", "from": "-24h"},
                {"term": "duration", "gte": 300},
                {"term": "browser", "in": ["Chrome"]},
                {"term": "signal", "signal": "rage_clicks", "gte": 1},
            ]
        },
        "order": "longest",
    }
    assert listed(page) == {"long-chrome"}
    # Read back from the URL into the same controls.
    assert page.locator("#rf-duration-min").input_value() == "300"
    assert page.locator("#rf-when").input_value() == "-24h"
    assert page.locator("fieldset[data-term=browser] input[value=Chrome]").is_checked()

    page.select_option("#rf-errors", "no")  # "Errors: without" is console_errors ≤ 0
    assert page.locator("#rf-signal-console_errors-max").input_value() == "0"
    page.click("#replayhub-filter-clear")
    page.wait_for_url(server + LIST)
    assert listed(page) == {
        "long-chrome",
        "short-chrome",
        "long-firefox",
        "calm-chrome",
    }
    assert errors == [], errors
    context.close()


# Every kind of condition the controls show, in the order they write them back:
# the quick filters' terms first, then the builder's.
EVERY_KIND: dict[str, Any] = {
    "version": 1,
    "where": {
        "all": [
            {
                "term": "started",
                "from": "2026-01-01T00:00:00Z",
                "to": "2026-02-01T12:30:00Z",
            },
            {"term": "duration", "gte": 60, "lte": 600},
            {"term": "country", "in": ["FR"]},
            {"term": "signal", "signal": "network_5xx", "gte": 1},
            {"term": "signal", "signal": "rage_clicks", "lte": 0},
            {"not": {"term": "playability", "problem": "any"}},
            {"term": "legal_hold", "value": False},
            {"term": "event", "name": "$pageview", "count": {"gte": 3}},
            {
                "any": [
                    {"term": "url", "op": "contains", "value": "/checkout"},
                    {
                        "not": {
                            "term": "person",
                            "key": "plan",
                            "op": "equals",
                            "value": "pro",
                        }
                    },
                    {"term": "feature_flag", "flag": "new-nav", "value": True},
                    {
                        "all": [
                            {"term": "distinct_id", "in": ["u1", "u2"]},
                            {
                                "term": "first_url",
                                "op": "starts_with",
                                "value": "https",
                            },
                        ]
                    },
                ]
            },
            {
                "term": "event",
                "name": "signup",
                "followed_by": {
                    "within": 60,
                    "target": {
                        "event": "purchase",
                        "where": [{"key": "amount", "op": "gt", "value": 10}],
                    },
                    "absent": True,
                },
            },
            {
                "term": "event",
                "name": "click",
                "followed_by": {"within": 5, "target": {"marker": "dead_click"}},
            },
            {"term": "person_first_seen", "from": "-7d"},
        ]
    },
    "order": "most_errors",
}


@pytest.mark.django_db(transaction=True)
def test_the_quick_filters_offer_tags_and_what_i_have_not_seen(
    browser: Any, live_server: Any
) -> None:
    project = Project.objects.create(name="Shop")
    alice = User.objects.create_user("alice", "alice@example.org", PASSWORD)
    role_grant(project=project, principal=alice, role=access.Role.ADMIN)
    seen = make_recording(project, "bug-seen")
    unseen = make_recording(project, "bug-unseen")
    make_recording(project, "untagged")
    bug = curation.tag_get_or_create(project=project, name="bug")
    curation.recordings_tag(recordings=[seen, unseen], tag=bug, user=alice)
    curation.recording_view_record(recording=seen, user=alice)
    server = live_server.url

    context, page, errors = person(browser, server, "alice")
    page.goto(server + LIST)
    page.locator("fieldset[data-term=tag] label", has_text="bug").click()
    page.select_option("#rf-viewed", "no")
    page.click("#replayhub-filter-apply")
    page.wait_for_url("**filter=**")

    assert filter_in(page.url)["where"] == {
        "all": [
            {"term": "tag", "in": ["bug"]},
            {"not": {"term": "viewed", "by": "me"}},
        ]
    }
    assert listed(page) == {"bug-unseen"}
    # Read back from the URL into the same controls.
    assert page.locator("fieldset[data-term=tag] input[value=bug]").is_checked()
    assert page.locator("#rf-viewed").input_value() == "no"
    assert errors == []
    context.close()


def test_every_kind_of_condition_is_read_from_the_url_and_written_back(
    browser: Any, live_server: Any
) -> None:
    parse_document(EVERY_KIND)  # a valid document, as the list applies it
    project = Project.objects.create(name="Shop")
    alice = User.objects.create_user("alice", "alice@example.org", PASSWORD)
    role_grant(project=project, principal=alice, role=access.Role.ADMIN)
    server = live_server.url

    context, page, errors = person(browser, server, "alice")
    page.goto(f"{server}{LIST}?{urlencode({'filter': json.dumps(EVERY_KIND)})}")
    text = page.locator("#replayhub-filter-json-text")
    # The script's own writing (indented), not the page's copy of the URL's text.
    written = text.input_value()
    assert written.startswith('{\n  "version": 1'), written
    assert json.loads(written) == EVERY_KIND
    # Kept as JSON: the builder has no controls for it.
    assert "person_first_seen" in page.locator(".replayhub-json-node").input_value()
    assert page.locator(".replayhub-pending").is_hidden()

    page.fill("#rf-duration-max", "900")  # a change: shown at once, not yet applied
    assert json.loads(text.input_value())["where"]["all"][1]["lte"] == 900
    assert page.locator(".replayhub-pending").is_visible()
    assert errors == [], errors
    context.close()
