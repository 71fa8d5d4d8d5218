"""A page that draws on a <canvas>, recorded by real rrweb, replays its pixels.

rrweb records a canvas two ways: the picture it already shows when the snapshot is
taken (`rr_dataURL`), and every later drawing call (CanvasMutation events). The
admin player turns on rrweb's canvas replay for such a recording; the page's Content
Security Policy still keeps any script the recorded page carried from running.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.contrib.auth.models import User

from recordings import access
from recordings.models import Project, Recording
from recordings.services.projects import role_grant
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e

RRWEB = Path(settings.NODE_MODULES_DIR) / "rrweb" / "dist" / "rrweb.umd.min.cjs"

# Red is on the canvas before recording starts; blue is drawn while it records. The
# image's onerror is what a hostile page would leave in its DOM for the replay.
CANVAS_PAGE = """<!doctype html>
<html><head><title>Canvas</title></head><body>
<h1>Drawing</h1>
<canvas id="art" width="200" height="100"></canvas>
<img src="/missing-picture.png" onerror="window.parent.__recorded_script_ran = 1">
<script>
  const ctx = document.getElementById("art").getContext("2d");
  ctx.fillStyle = "rgb(255, 0, 0)";
  ctx.fillRect(0, 0, 50, 50);
</script>
</body></html>"""

START_RECORDING = """() => {
  window.recorded = [];
  rrweb.record({ emit: (event) => window.recorded.push(event), recordCanvas: true });
}"""

DRAW_BLUE = """() => {
  const ctx = document.getElementById("art").getContext("2d");
  ctx.fillStyle = "rgb(0, 0, 255)";
  ctx.fillRect(100, 0, 50, 50);
}"""

PIXEL = """([x, y]) => {
  const canvas = document.querySelector("canvas");
  if (!canvas) return null;
  return Array.from(canvas.getContext("2d").getImageData(x, y, 1, 1).data);
}"""


def record_canvas_page(browser: Any, url: str) -> list[dict[str, Any]]:
    context = browser.new_context()
    page = context.new_page()
    page.route(
        url, lambda route: route.fulfill(body=CANVAS_PAGE, content_type="text/html")
    )
    page.goto(url)
    page.add_script_tag(path=str(RRWEB))
    page.evaluate(START_RECORDING)
    page.wait_for_timeout(300)
    page.evaluate(DRAW_BLUE)
    page.wait_for_timeout(1000)  # rrweb flushes canvas calls once per frame
    events: list[dict[str, Any]] = page.evaluate("() => window.recorded")
    context.close()
    return events


def replayed_pixel(frame: Any, x: int, y: int) -> list[int] | None:
    pixel: list[int] | None = frame.evaluate(PIXEL, [x, y])
    return pixel


@pytest.mark.django_db(transaction=True)
def test_a_canvas_drawing_replays_in_the_admin_player(
    browser: Any, origins: dict[str, str]
) -> None:
    project = Project.objects.create(name="Canvas shop")
    bob = User.objects.create_user("bob", "bob@example.org", "correct horse")
    role_grant(project=project, principal=bob, role=access.Role.VIEWER)

    events = record_canvas_page(browser, f"{origins['shop']}/canvas")
    assert any(e["type"] == 3 and e["data"].get("source") == 9 for e in events)
    body = {
        "token": project.token,
        "session_id": "canvas-session",
        "window_id": "w1",
        "events": events,
    }
    # Through the live server as a client would; the ingest host maps to it.
    request = urllib.request.Request(
        f"http://127.0.0.1:{origins['ingest'].rsplit(':', 1)[1]}/api/v1/ingest/rrweb/",
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json", "Host": "ingest.test"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    recording = Recording.objects.get(project=project, session_id="canvas-session")

    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    log_in(page, origins["admin"], "bob", "correct horse")
    page.goto(f"{origins['admin']}/admin/recordings/recording/{recording.code}/play/")
    page.wait_for_selector(".replayer-wrapper iframe", state="attached", timeout=15000)
    frame = page.locator(".replayer-wrapper iframe").element_handle().content_frame()

    def pixels() -> tuple[list[int] | None, list[int] | None] | None:
        red, blue = replayed_pixel(frame, 10, 10), replayed_pixel(frame, 110, 10)
        drawn = red == [255, 0, 0, 255] and blue == [0, 0, 255, 255]
        return (red, blue) if drawn else None

    wait_for(
        pixels,
        20,
        "the replayed canvas to show red and blue",
        pause=lambda: page.wait_for_timeout(250),
    )
    assert page.evaluate("() => window.__recorded_script_ran") is None
    context.close()
    assert errors == []
