"""A comment made in the player lands at the player's moment, and its link (?t=)
opens the player there: real rrweb-player in Chromium, under the page's CSP."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from recordings import access
from recordings.models import Comment, Project
from recordings.services.projects import role_grant
from tests.access import make_tenant
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_a_viewer_comments_at_the_current_moment(
    browser: Any, origins: dict[str, str]
) -> None:
    project = Project.objects.create(name="Moment shop")
    tenant = make_tenant(Client(HTTP_HOST="ingest.test"), "moment", project)
    bob = User.objects.create_user("bob", "bob@example.org", "correct horse")
    role_grant(project=project, principal=bob, role=access.Role.VIEWER)
    recording = tenant.recording

    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    log_in(page, origins["admin"], "bob", "correct horse")
    play = f"{origins['admin']}/admin/recordings/recording/{recording.code}/play/"
    page.goto(f"{play}?t=5")
    page.wait_for_selector(".replayer-wrapper iframe", state="attached", timeout=15000)
    page.wait_for_timeout(500)
    page.fill("#replayhub-comment-form textarea", "the button moved here")
    page.click("#replayhub-comment-form input[type=submit]")
    page.wait_for_url("**/play/?t=*")

    comment = wait_for(
        lambda: Comment.objects.filter(recording=recording).first(),
        10,
        "the comment",
        pause=lambda: page.wait_for_timeout(250),
    )
    # Opened at 5 s; the comment is where the player was when it was sent.
    assert 5000 <= comment.offset_ms < recording.duration_ms, comment.offset_ms
    assert f"t={comment.offset_ms // 1000}" in page.url
    assert page.locator(".replayhub-comment").count() == 1
    context.close()
    assert errors == []
