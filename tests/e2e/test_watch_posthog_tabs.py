"""A real two-tab session recorded by posthog-js plays on one timeline.

Two pages of one browser context share posthog-js's session (localStorage) and
have a window id each (sessionStorage). A person clicks about in tab A, then opens
tab B and clicks there. In the player the indicator shows tab A at A's clicks and
tab B at B's, on the one timeline.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User

from recordings import access
from recordings.models import Project, Recording
from recordings.playback.timeline import recording_timeline
from recordings.services.projects import role_grant
from tests.e2e.browser import log_in, wait_for
from tests.e2e.test_signals import DESKTOP_CHROME, POSTHOG, shop_server

pytestmark = pytest.mark.e2e


def clicks(page: Any) -> int:
    """Move and click about on the page for about two seconds; when it started (ms)."""
    page.wait_for_function("() => window.posthog && window.posthog.__loaded")
    page.wait_for_timeout(1500)  # the recorder's script and first full snapshot
    started = int(time.time() * 1000)
    page.mouse.move(40, 40)
    page.mouse.move(220, 130, steps=8)
    for _ in range(3):
        page.locator("#newsletter").click()
        page.wait_for_timeout(500)
    return started


@pytest.mark.django_db(transaction=True)
def test_posthog_tabs_switch_on_one_timeline(
    browser: Any, origins: dict[str, str]
) -> None:
    project = Project.objects.create(name="Tabs shop")
    bob = User.objects.create_user("bob", "bob@example.org", "correct horse")
    role_grant(project=project, principal=bob, role=access.Role.VIEWER)
    recorder = POSTHOG % {"api_host": origins["ingest"], "token": project.token}
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    with shop_server(recorder) as url:
        tab_a = context.new_page()
        tab_a.goto(url + "?tab=a")
        a_at = clicks(tab_a)
        tab_b = context.new_page()
        tab_b.goto(url + "?tab=b")
        b_at = clicks(tab_b)
        tab_b.wait_for_timeout(6000)  # the recorders' flush and request queues
    context.close()
    recording = wait_for(
        lambda: (
            Recording.objects.filter(project=project)
            .filter(chunks__window_id__gt="")
            .distinct()
            .first()
        ),
        30,
        "the recording",
    )
    wait_for(lambda: len(recording.window_ids()) == 2, 30, "both tabs' data")
    origin = recording_timeline(recording=recording, segment_url=str)["recording"][
        "started_ms"
    ]

    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    log_in(page, origins["admin"], "bob", "correct horse")
    play = f"{origins['admin']}/admin/recordings/recording/{recording.code}/play/"
    page.goto(play + "?t=0")
    page.wait_for_function(
        "() => window.replayhubPlayer.loadedAt !== null", timeout=40000
    )
    assert page.locator(".replayhub-lane").count() == 2

    def showing(at_ms: int) -> tuple[str, str]:
        page.evaluate(f"() => window.replayhubPlayer.seek({at_ms - origin})")
        tab = page.locator("#replayhub-tab").inner_text()
        return tab, page.locator("#replayhub-tab-url").inner_text()

    tab, where = showing(a_at + 1200)
    assert tab == "Tab 1 of 2" and "tab=a" in where, (tab, where)
    tab, where = showing(b_at + 1200)
    assert tab == "Tab 2 of 2" and "tab=b" in where, (tab, where)
    frame = page.frame_locator(".replayhub-screen:not([hidden]) iframe")
    frame.get_by_text("Signals shop").first.wait_for(state="attached", timeout=20000)
    tab, where = showing(a_at + 1200)
    assert tab == "Tab 1 of 2", tab
    assert errors == []
