"""Issue 14's whole curating workflow, in Chromium, over real rrweb recordings.

alice (the project's admin) filters the recording list with the quick filters,
saves the filter as a playlist, pins a recording the filter does not find, opens
the playlist and a recording from it (previous/next), comments at the player's
moment, makes a share link, watches it with no login, revokes it, and the link
answers 410.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client

from playlists.models import Playlist, PlaylistPin, ShareLink
from recordings import access
from recordings.models import Comment, Project, Recording
from recordings.services.projects import role_grant
from recordings.services.recording_signals import recording_signals_update
from tests.access import rrweb_events
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse"
LIST = "/admin/recordings/recording/"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
# The shared fixtures' real rrweb sessions, and the browser each was "sent from".
# Newest first by their timestamps: browse, checkout, signup.
SESSIONS = {"browse": CHROME, "checkout": CHROME, "signup": FIREFOX}
HREFS = "links => links.map(link => link.getAttribute('href'))"


def capture(project: Project, flow: str, user_agent: str) -> Recording:
    """A fixture session posted through the capture endpoint, its signals computed
    (what the periodic task does: the browser comes from the User-Agent)."""
    body = {
        "token": project.token,
        "session_id": f"{flow}-session",
        "window_id": f"{flow}-window",
        "distinct_id": f"{flow}-person@example.org",
        "events": rrweb_events(flow),
    }
    answer = Client(HTTP_USER_AGENT=user_agent).post(
        "/api/v1/ingest/rrweb/", orjson.dumps(body), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    recording = Recording.objects.get(project=project, session_id=f"{flow}-session")
    recording_signals_update(recording=recording)
    recording.refresh_from_db()
    return recording


def watched(page: Any) -> list[str]:
    """pageerrors and console errors of a page, as they come (but the 404 of the
    favicon Chromium asks for by itself)."""
    problems: list[str] = []

    def console(msg: Any) -> None:
        if msg.type == "error" and not msg.location["url"].endswith("/favicon.ico"):
            problems.append(f"{msg.text} ({msg.location['url']})")

    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", console)
    return problems


def listed(page: Any) -> set[str]:
    """The flows of the recordings the list shows (rows link to the player)."""
    hrefs = page.locator("#result_list a[href*='/play/']").evaluate_all(HREFS)
    codes = {href.split("/")[-3] for href in hrefs}
    sessions = Recording.objects.filter(code__in=codes).values_list(
        "session_id", flat=True
    )
    return {s.removesuffix("-session") for s in sessions}


def player_seconds(page: Any) -> int:
    """The player's current time as it shows it: the admin's player ("m:ss /
    m:ss"), or rrweb-player's controller (mm:ss) on the public share page."""
    if page.locator("#replayhub-time").count():
        text = page.locator("#replayhub-time").inner_text().split("/")[0].strip()
    else:
        text = page.locator(".rr-timeline__time").first.inner_text().strip()
    match = re.fullmatch(r"(\d+):(\d\d)", text)
    assert match, text
    return int(match[1]) * 60 + int(match[2])


def later(page: Any) -> Any:
    """wait_for's pause inside a browser step (Playwright keeps delivering events)."""
    return lambda: page.wait_for_timeout(200)


@pytest.mark.django_db(transaction=True)
def test_filter_save_pin_comment_share_and_revoke(
    browser: Any, live_server: Any
) -> None:
    project = Project.objects.create(name="Curated shop")
    alice = User.objects.create_user("alice", "alice@example.org", PASSWORD)
    role_grant(project=project, principal=alice, role=access.Role.ADMIN)
    recordings = {
        flow: capture(project, flow, agent) for flow, agent in SESSIONS.items()
    }
    assert {r.browser for r in recordings.values()} == {"Chrome", "Firefox"}
    server = live_server.url

    context = browser.new_context()
    page = context.new_page()
    problems = watched(page)
    log_in(page, server, "alice", PASSWORD)

    # 1. The list, filtered with the quick filters: the Chrome sessions.
    page.goto(server + LIST)
    assert listed(page) == set(SESSIONS)
    page.locator("fieldset[data-term=browser] label", has_text="Chrome").click()
    page.click("#replayhub-filter-apply")
    page.wait_for_url("**filter=**")
    document = json.loads(parse_qs(urlsplit(page.url).query)["filter"][0])
    assert document["where"] == {"all": [{"term": "browser", "in": ["Chrome"]}]}
    assert listed(page) == {"browse", "checkout"}

    # 2. "Save as playlist": the add form holds the filter.
    page.click(".replayhub-save-as-playlist")
    page.wait_for_url("**/admin/playlists/playlist/add/**")
    assert json.loads(page.locator("#id_filter").input_value()) == document
    page.fill("#id_name", "Chrome sessions")
    page.select_option("#id_project", str(project.pk))
    page.click("input[name=_save]")
    page.wait_for_url(f"{server}/admin/playlists/playlist/")
    playlist = Playlist.objects.get(name="Chrome sessions")
    assert playlist.filter == document
    assert playlist.project == project and playlist.owner == alice

    # 3. A recording the filter does not find, pinned with the list's action.
    signup = recordings["signup"]
    page.goto(server + LIST)
    row = page.locator(f"#result_list tr:has(a[href*='{signup.code}/play/'])")
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "add_to_playlist")
    page.click("button[name=index]")
    page.select_option("#id_playlist", str(playlist.code))
    page.click("input[type=submit][value='Add them']")
    page.wait_for_selector(".messagelist .success")
    assert (
        "Added 1 recording(s) to “Chrome sessions”."
        in page.locator(".messagelist").inner_text()
    )
    assert list(
        PlaylistPin.objects.filter(playlist=playlist).values_list(
            "recording", flat=True
        )
    ) == [signup.pk]

    # 4. The playlist's page: the two found and the pinned one, newest first.
    page.goto(f"{server}/admin/playlists/playlist/{playlist.pk}/change/")
    links = page.locator(".replayhub-playlist-row a").evaluate_all(HREFS)
    order = ("browse", "checkout", "signup")
    assert links == [
        f"/admin/recordings/recording/{recordings[flow].code}/play/"
        f"?playlist={playlist.code}"
        for flow in order
    ], links
    page.locator(".replayhub-playlist-row a").nth(1).click()  # checkout
    checkout = recordings["checkout"]
    page.wait_for_url(f"**/{checkout.code}/play/?playlist={playlist.code}")
    nav = page.locator("#replayhub-playlist-nav")
    assert nav.locator("a[rel=prev]").get_attribute("href") == (
        f"/admin/recordings/recording/{recordings['browse'].code}/play/"
        f"?playlist={playlist.code}"
    )
    assert nav.locator("a[rel=next]").get_attribute("href") == (
        f"/admin/recordings/recording/{signup.code}/play/?playlist={playlist.code}"
    )

    # 5. It plays; paused a few seconds in, a comment at that moment.
    page.wait_for_selector(".replayer-wrapper iframe", state="attached", timeout=15000)
    wait_for(lambda: player_seconds(page) >= 3, 20, "the player to play", later(page))
    page.click("#replayhub-play")  # pause
    shown = player_seconds(page)
    page.fill("#replayhub-comment-form textarea", "checkout button moved")
    assert player_seconds(page) == shown  # paused: the time stands still
    page.click("#replayhub-comment-form input[type=submit]")
    page.wait_for_url(f"**/play/?t=*&playlist={playlist.code}")
    comment = Comment.objects.get(recording=checkout)
    assert shown * 1000 <= comment.offset_ms < (shown + 1) * 1000, (
        shown,
        comment.offset_ms,
    )
    at = f"{comment.offset_ms // 60_000}:{comment.offset_ms // 1000 % 60:02d}"
    posted = page.locator(".replayhub-comment")
    assert posted.count() == 1
    assert posted.locator(".replayhub-comment-at").inner_text() == at
    assert "checkout button moved" in posted.inner_text()
    marker = page.locator(".replayhub-marker-comment")
    assert marker.count() == 1
    assert marker.locator("td").nth(0).inner_text() == at
    assert "alice: checkout button moved" in marker.inner_text()
    # The list is in time order, the comment among the recording's own markers.
    times = page.locator(".replayhub-marker td:first-child").all_inner_texts()
    assert times == sorted(times, key=lambda t: [int(p) for p in t.split(":")])

    # 6. A share link, made on the player's page; its URL shows once.
    page.click("a:text('Share link…')")
    page.wait_for_url(f"**/{checkout.code}/share-link/")
    page.click("input[type=submit][value='Make a share link']")
    url = page.locator("#replayhub-share-url").input_value()
    assert re.fullmatch(rf"{re.escape(server)}/share/[^/]+/", url), url
    link = ShareLink.objects.get(recording=checkout)
    assert link.created_by == alice

    # 7. Anyone with the URL watches it: no cookies, no login, no distinct id.
    stranger = browser.new_context()
    public = stranger.new_page()
    public_problems = watched(public)
    answer = public.goto(url)
    assert answer is not None and answer.status == 200
    public.wait_for_selector(
        ".replayer-wrapper iframe", state="attached", timeout=15000
    )
    frame = public.frame_locator(".replayer-wrapper iframe")
    frame.locator("body *").first.wait_for(state="attached", timeout=15000)
    wait_for(
        lambda: player_seconds(public) >= 2, 20, "the shared replay", later(public)
    )
    assert public.locator("#player-status").inner_text().endswith(" events")
    assert "checkout-person" not in public.content()
    assert "Log in" not in public.content() and "/admin/" not in public.content()
    assert stranger.cookies() == []
    assert public_problems == [], public_problems

    # 8. Revoked in the share links' admin: the URL answers 410, says why.
    page.goto(f"{server}/admin/playlists/sharelink/")
    page.locator("#result_list input.action-select").check()
    page.select_option("select[name=action]", "revoke_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert "1 share link(s) revoked." in page.locator(".messagelist").inner_text()
    link.refresh_from_db()
    assert link.revoked_at is not None
    answer = public.goto(url)
    assert answer is not None and answer.status == 410
    assert "revoked" in public.locator("body").inner_text()
    assert "checkout-person" not in public.content()
    # The browser's own note of the 410, and nothing else.
    assert public_problems == [
        "Failed to load resource: the server responded with a status of 410 (Gone)"
        f" ({url})"
    ], public_problems

    stranger.close()
    context.close()
    assert problems == [], problems
