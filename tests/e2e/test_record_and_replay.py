"""A real browser records itself with posthog-js; the admin replays it (rrweb-player).

Headless Debian Chromium (never a downloaded browser) talks to a live ReplayHub server.
The demo page is served as http://shop.test:<port> and posthog-js's api_host is
http://ingest.test:<port>, two origins like a real deployment, both mapped to 127.0.0.1
by Chromium's --host-resolver-rules: so CORS on the scripts and /s/ is exercised, and
posthog-js does not treat the page as "localhost" (where it skips network capture).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils.timezone import now

from recordings import access
from recordings.models import Project, Recording
from recordings.services.projects import role_grant
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e

CLICKS = 3


def record_demo_session(browser: Any, url: str) -> list[tuple[str, int]]:
    """Visit the demo page, click and type like a person; return the /s/ answers."""
    context = browser.new_context()
    page = context.new_page()
    answers: list[tuple[str, int]] = []
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    page.on(
        "response",
        lambda r: answers.append((r.url, r.status)) if "/s/" in r.url else None,
    )
    page.goto(url)
    page.wait_for_function("() => window.posthog && window.posthog.__loaded")
    page.mouse.move(200, 200)  # posthog-js uploads nothing before an interaction
    buttons = page.locator("button.add")
    for index in range(CLICKS):
        buttons.nth(index).click()
        page.wait_for_timeout(300)
    page.locator("#search").press_sequentially("teapot", delay=40)
    wait_for(
        lambda: len(answers) >= 1,
        30,
        f"the first /s/ upload; page said: {console}",
        pause=lambda: page.wait_for_timeout(250),
    )
    page.wait_for_timeout(6000)  # the recorder flushes every 2 s, the queue every 3 s
    context.close()  # unload: posthog-js beacons whatever it still holds
    return answers


def find_recording(project: Project) -> Recording | None:
    return Recording.objects.filter(
        project=project, has_full_snapshot=True, click_count__gte=CLICKS
    ).first()


@pytest.mark.django_db(transaction=True)
def test_a_recorded_session_replays_in_the_admin(
    browser: Any, origins: dict[str, str]
) -> None:
    project = Project.objects.create(name="E2E shop", is_demo=True)
    # A viewer, not a superuser: watching is what the viewer role is for.
    bob = User.objects.create_user("bob", "bob@example.org", "correct horse")
    role_grant(project=project, principal=bob, role=access.Role.VIEWER)
    elsewhere = Project.objects.create(name="Someone else's shop")
    Recording.objects.create(
        project=elsewhere,
        session_id="elsewhere-session",
        started_at=now(),
        ended_at=now(),
    )

    answers = record_demo_session(browser, f"{origins['shop']}/demo/")
    assert answers, "posthog-js sent no recording"
    assert all(status == 200 for _, status in answers), answers

    recording = wait_for(lambda: find_recording(project), 20, "the stored recording")
    assert recording.click_count == CLICKS
    assert recording.keypress_count >= 1
    assert recording.first_url.startswith(f"{origins['shop']}/demo/")
    assert recording.lib == "web"
    assert recording.chunks.count() >= 1

    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console: {msg.text}") if msg.type == "error" else None
        ),
    )
    log_in(page, origins["admin"], "bob", "correct horse")

    page.goto(f"{origins['admin']}/admin/recordings/recording/")
    listing = page.content()
    assert "elsewhere-session" not in listing and "Someone else" not in listing
    page.locator(f"a[href$='/{recording.code}/play/']").first.click()
    try:
        page.wait_for_selector(".replayhub-screen .replayer-wrapper", timeout=15000)
        replay = page.frame_locator(".replayer-wrapper iframe")
        heading = replay.get_by_role("heading", name="ReplayHub demo shop")
        heading.wait_for(state="attached", timeout=15000)
        # The replay reaches the end of the session: all three items are in the cart.
        replay.locator("#cart-count").filter(has_text=str(CLICKS)).wait_for(
            state="attached", timeout=30000
        )
    except Exception as exc:
        status = page.locator("#player-status").inner_text()
        raise AssertionError(f"player: {status!r}; page errors: {errors}") from exc
    assert "events" in page.locator("#player-status").inner_text()
    context.close()
    assert errors == []
