"""A share link opens in a browser with no login and the recording plays."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client

from playlists import services as playlists
from playlists.models import ShareLinkView
from recordings.models import Project, Recording
from tests.access import rrweb_events

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_a_shared_recording_plays_without_login(browser: Any, live_server: Any) -> None:
    project = Project.objects.create(name="Shared shop")
    body = {
        "token": project.token,
        "session_id": "shared-session",
        "window_id": "w1",
        "distinct_id": "someone@example.org",
        "events": rrweb_events("signup"),
    }
    answer = Client().post(
        "/api/v1/ingest/rrweb/", orjson.dumps(body), content_type="application/json"
    )
    assert answer.status_code == 200
    recording = Recording.objects.get(project=project)
    alice = User.objects.create_user("alice", "alice@example.org", "pw")
    _, token = playlists.share_link_create(target=recording, user=alice)

    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" else None,
    )
    page.goto(f"{live_server.url}/share/{token}/")
    page.wait_for_selector(".replayer-wrapper iframe", state="attached", timeout=15000)
    status = page.locator("#player-status").inner_text()
    assert status.endswith(" events"), status
    assert "someone@example.org" not in page.content()
    assert not [p for p in problems if "Content Security Policy" in p], problems
    context.close()
    assert ShareLinkView.objects.filter(link__recording=recording).count() == 1
