"""The player of issue 15 in Chromium: a session in two tabs plays on one timeline.

The session is built from recorded fixtures: the signup flow in tab A, then the
checkout flow in tab B a few seconds after tab A's last event, both sent to the
rrweb ingest endpoint with one session id. The player runs under the page's CSP.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from recordings import access
from recordings.models import Event, Marker, Project, Recording
from recordings.playback.offline import offline_html
from recordings.services.projects import role_grant
from tests.access import rrweb_events
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e

GAP_MS = 3000  # tab B starts this long after tab A's last event
LEAD_MS = 2000  # a marker seeks this long before its moment


def ingest(client: Client, token: str, window: str, events: list[Any]) -> None:
    body = {
        "token": token,
        "session_id": "two-tabs",
        "window_id": window,
        "batch_id": f"{window}-1",
        "distinct_id": "two-tabs-person",
        "events": events,
    }
    response = client.post(
        "/api/v1/ingest/rrweb/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content


def two_tab_recording() -> tuple[Recording, int]:
    """The recording, and tab B's start in ms from the recording's start."""
    project = Project.objects.create(name="Two tabs shop")
    client = Client(HTTP_HOST="ingest.test")
    signup, checkout = rrweb_events("signup"), rrweb_events("checkout")
    t0 = signup[0]["timestamp"]
    b_start = signup[-1]["timestamp"] + GAP_MS
    shift = b_start - checkout[0]["timestamp"]
    # A request that failed, as posthog's network plugin records it.
    failed = {
        "name": "http://shop.test/api/fail",
        "method": "POST",
        "responseStatus": 500,
        "duration": 5.1,
        "timestamp": t0 + 2000,
    }
    network = {
        "type": 6,
        "timestamp": t0 + 2000,
        "data": {"plugin": "rrweb/network@1", "payload": {"requests": [failed]}},
    }
    signup = sorted([*signup, network], key=lambda event: event["timestamp"])
    ingest(client, project.token, "tab-a", signup)
    ingest(
        client,
        project.token,
        "tab-b",
        [{**event, "timestamp": event["timestamp"] + shift} for event in checkout],
    )
    return Recording.objects.get(project=project), b_start - t0


def viewer(project: Project) -> None:
    bob = User.objects.create_user("bob", "bob@example.org", "correct horse")
    role_grant(project=project, principal=bob, role=access.Role.VIEWER)


def open_player(
    browser: Any, origins: dict[str, str], recording: Recording, query: str = ""
) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if "Content Security Policy" in m.text else None
        ),
    )
    log_in(page, origins["admin"], "bob", "correct horse")
    play = f"{origins['admin']}/admin/recordings/recording/{recording.code}/play/"
    page.goto(play + query)
    page.wait_for_function(
        "() => window.replayhubPlayer.loadedAt !== null", timeout=40000
    )
    return context, page, errors


def now_ms(page: Any) -> float:
    return float(page.evaluate("() => window.replayhubPlayer.currentTime()"))


def tab_text(page: Any) -> str:
    return str(page.locator("#replayhub-tab").inner_text())


@pytest.mark.django_db(transaction=True)
def test_two_tabs_play_on_one_timeline(browser: Any, origins: dict[str, str]) -> None:
    recording, b_start = two_tab_recording()
    viewer(recording.project)
    context, page, errors = open_player(browser, origins, recording, "?t=2")
    # ?t= opens paused there, in tab 1 (tab 2 has not started).
    assert abs(now_ms(page) - 2000) < 50, now_ms(page)
    assert tab_text(page) == "Tab 1 of 2"
    assert page.locator(".replayhub-lane").count() == 2
    frame = page.frame_locator(".replayhub-screen:not([hidden]) iframe")
    frame.locator("body").wait_for(timeout=20000)
    assert "Sign up" in frame.locator("body").inner_text()

    # Played on, the indicator switches to tab 2 once it starts, and back on a seek.
    page.evaluate(f"() => window.replayhubPlayer.seek({b_start - 1500})")
    page.locator("#replayhub-skip").uncheck()
    page.click("#replayhub-play")
    wait_for(
        lambda: tab_text(page) == "Tab 2 of 2",
        10,
        "the switch to tab 2",
        pause=lambda: page.wait_for_timeout(100),
    )
    switched_at = now_ms(page)
    # Not before tab 2's first event, and promptly after it (polled every 100 ms).
    assert b_start - 50 <= switched_at < b_start + 3000, (switched_at, b_start)
    assert page.evaluate("() => window.replayhubPlayer.activeWindow()") == "tab-b"
    frame = page.frame_locator(".replayhub-screen:not([hidden]) iframe")
    wait_for(
        lambda: "checkout" in frame.locator("body").inner_text().lower(),
        10,
        "tab 2's page",
        pause=lambda: page.wait_for_timeout(100),
    )
    page.click("#replayhub-play")  # pause
    page.keyboard.press("ArrowLeft")
    page.evaluate("() => window.replayhubPlayer.seek(5000)")
    assert tab_text(page) == "Tab 1 of 2"
    hooks = page.evaluate("() => window.replayhubPlayer")
    assert hooks["firstFrameAt"] <= hooks["loadedAt"], hooks
    context.close()
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_markers_and_the_side_panel_seek(browser: Any, origins: dict[str, str]) -> None:
    recording, b_start = two_tab_recording()
    viewer(recording.project)
    rage_at = b_start + 6000
    Marker.objects.create(
        recording=recording,
        kind=Marker.Kind.RAGE_CLICK,
        timestamp=recording.started_at + dt.timedelta(milliseconds=rage_at),
        offset_ms=rage_at,
        window_id="tab-b",
        label="5 clicks on Pay",
    )
    for n, at in enumerate((1000, 4000, 9000)):
        Event.objects.create(
            project=recording.project,
            uuid=f"e{n}",
            name=f"step-{n}",
            session_id="two-tabs",
            timestamp=recording.started_at + dt.timedelta(milliseconds=at),
            properties={"$window_id": "tab-a"},
        )
    context, page, errors = open_player(browser, origins, recording, "?t=0")

    # A marker: a tick with a tooltip; clicking seeks the lead before it.
    tick = page.locator(".replayhub-tick-rage_click")
    assert "5 clicks on Pay" in tick.get_attribute("title")
    tick.click()
    assert abs(now_ms(page) - (rage_at - LEAD_MS)) < 100, now_ms(page)
    assert tab_text(page) == "Tab 2 of 2"

    # The events panel: its current row follows the clock; clicking a row seeks.
    current = page.locator("#replayhub-panel-events .replayhub-row-current")
    assert "step-2" in current.inner_text()
    page.locator("#replayhub-panel-events .replayhub-row", has_text="step-0").click()
    assert abs(now_ms(page) - 1000) < 100, now_ms(page)
    assert "step-0" in current.inner_text()
    page.locator("#replayhub-skip").uncheck()
    page.click("#replayhub-play")
    wait_for(
        lambda: "step-1" in current.inner_text(),
        10,
        "the row of step-1",
        pause=lambda: page.wait_for_timeout(100),
    )
    page.click("#replayhub-play")

    # The console panel holds the recorded console rows; the filter narrows them.
    page.click(".replayhub-side-tab[data-panel=console]")
    rows = page.locator("#replayhub-panel-console .replayhub-row")
    assert rows.count() == 2, rows.all_inner_texts()
    page.fill("#replayhub-filter", "zzz-nothing")
    assert page.locator("#replayhub-panel-console .replayhub-row:visible").count() == 0
    page.fill("#replayhub-filter", "")

    # The network panel: method, URL, status and duration.
    page.click(".replayhub-side-tab[data-panel=network]")
    (row,) = page.locator("#replayhub-panel-network .replayhub-row").all_inner_texts()
    assert "POST http://shop.test/api/fail 500 5 ms" in row, row

    # The person and environment cards; the person's other recordings, one click.
    person = page.locator("#replayhub-person-facts").inner_text()
    assert "two-tabs-person" in person, person
    assert "rrweb" in page.locator("#replayhub-environment-facts").inner_text()
    others = page.locator("#replayhub-person-facts a").get_attribute("href")
    assert others.startswith("/admin/recordings/recording/?filter="), others

    # Shortcuts (not while typing in the filter): 3 is 4×; space plays and pauses.
    page.focus("#replayhub-filter")
    page.keyboard.press("3")
    assert page.locator("#replayhub-filter").input_value() == "3"
    page.fill("#replayhub-filter", "")
    page.locator("#replayhub-filter").blur()
    page.keyboard.press("3")
    assert (
        page.locator(".replayhub-speed[data-speed='4']").get_attribute("aria-pressed")
        == "true"
    )
    page.keyboard.press(" ")
    page.wait_for_timeout(600)
    page.keyboard.press(" ")
    assert page.locator("#replayhub-play").inner_text() == "Play"
    # The link at the current time carries t.
    page.click("#replayhub-copy")
    link = page.locator("#replayhub-link").input_value()
    assert f"t={int(now_ms(page) // 1000)}" in link, link
    context.close()
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_the_offline_file_plays_with_no_network(
    browser: Any, origins: dict[str, str], tmp_path: Path
) -> None:
    recording, b_start = two_tab_recording()
    path = tmp_path / "recording.html"
    with path.open("wb") as out:
        for piece in offline_html(recording):
            out.write(piece)
    context = browser.new_context()
    context.set_offline(True)
    requested: list[str] = []

    def refuse(route: Any) -> None:
        requested.append(route.request.url)
        route.abort()

    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file://")
            else refuse(route)
        ),
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # Not the load event: it waits on the recorded pages' refused subresources.
    page.goto(path.as_uri() + "?t=3", wait_until="domcontentloaded")
    page.wait_for_function(
        "() => window.replayhubPlayer.loadedAt !== null", timeout=40000
    )
    frame = page.frame_locator(".replayhub-screen:not([hidden]) iframe")
    frame.locator("body").wait_for(timeout=20000)
    assert "Sign up" in frame.locator("body").inner_text()
    assert abs(now_ms(page) - 3000) < 50
    page.evaluate(f"() => window.replayhubPlayer.seek({b_start + 2000})")
    assert tab_text(page) == "Tab 2 of 2"
    frame = page.frame_locator(".replayhub-screen:not([hidden]) iframe")
    wait_for(
        lambda: "checkout" in frame.locator("body").inner_text().lower(),
        10,
        "tab 2's page",
        pause=lambda: page.wait_for_timeout(100),
    )
    assert "events" in page.locator("#player-status").inner_text()
    # The segment rule: a whole array, or a fragment of one.
    cases = ['[{"a":1}]', ' ,{"a":1},{"a":2}] ', '{"a":1}', "[]", '[{"a":1}']
    parsed = page.evaluate("(cs) => cs.map(window.replayhubParseSegment)", cases)
    assert parsed == [[{"a": 1}], [{"a": 1}, {"a": 2}], [{"a": 1}], [], [{"a": 1}]], (
        parsed
    )
    context.close()
    assert errors == []
    # Whatever the recorded pages asked for (their stylesheets, images) was refused.
    assert all(not url.startswith("file://") for url in requested)


def _inert(text: str) -> str:
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def in_fragments(html: str) -> str:
    """The offline page with each window's events cut into three segments that are
    fragments of one array ("[a,b", ",c,d", ",e]"), as segmented storage serves."""
    block = r'<script id="{}" type="application/json">(.*?)</script>'
    found = re.search(block.format("replayhub-timeline"), html, re.S)
    assert found
    timeline = json.loads(found[1])
    for window in timeline["windows"]:
        (segment,) = window["segments"]
        name = segment["url"][1:]
        whole = re.search(block.format(name), html, re.S)
        assert whole
        events = json.loads(whole[1])
        third = len(events) // 3
        parts = [events[:third], events[third : 2 * third], events[2 * third :]]
        texts = [",".join(json.dumps(e) for e in part) for part in parts]
        texts = ["[" + texts[0], "," + texts[1], "," + texts[2] + "]"]
        elements = "".join(
            f'<script id="{name}-{k}" type="application/json">{_inert(t)}</script>'
            for k, t in enumerate(texts, 1)
        )
        html = html.replace(whole[0], elements)
        window["segments"] = [{**segment, "url": f"#{name}-{k}"} for k in range(1, 4)]
    new = block.format("replayhub-timeline").split("(")[0].replace("\\", "")
    replaced = new + _inert(json.dumps(timeline)) + "</script>"
    return html.replace(found[0], replaced)


@pytest.mark.django_db(transaction=True)
def test_segments_that_are_fragments_are_appended(
    browser: Any, origins: dict[str, str], tmp_path: Path
) -> None:
    recording, b_start = two_tab_recording()
    html = b"".join(offline_html(recording)).decode()
    path = tmp_path / "fragments.html"
    path.write_text(in_fragments(html), encoding="utf-8")
    context = browser.new_context()
    context.set_offline(True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.goto(path.as_uri() + "?t=0")
    page.wait_for_function(
        "() => window.replayhubPlayer.loadedAt !== null", timeout=40000
    )
    total = recording.event_count
    assert page.locator("#player-status").inner_text() == f"{total} events"
    # "Welcome aboard!" is added to tab 1's page in its last segment.
    page.evaluate(f"() => window.replayhubPlayer.seek({b_start - GAP_MS - 100})")
    assert page.locator("#replayhub-tab").inner_text() == "Tab 1 of 2"
    frame = page.frame_locator(".replayhub-screen:not([hidden]) iframe")
    frame.get_by_text("Welcome aboard!").wait_for(state="attached", timeout=20000)
    context.close()
    assert errors == []
