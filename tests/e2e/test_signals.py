"""What happened in a real session is found on the server, for both kinds of client.

A page with a button that does nothing, one that throws and one whose request fails
is recorded in headless Chromium, once by posthog-js pointed at ReplayHub and once
by plain rrweb (with its console plugin) posting to the rrweb endpoint. A person
rage-clicks the dead button, clicks another dead button once, makes the error and
the failing request. Once the recording is compacted (what the worker does when it
goes idle), its signals and markers say so.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.conf import settings

from recordings.models import Marker, Project, Recording
from recordings.services.compaction import recording_compact
from tests.e2e.browser import wait_for

pytestmark = pytest.mark.e2e

# Headless Chromium names itself HeadlessChrome; a person's browser does not.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)

MODULES = Path(settings.NODE_MODULES_DIR)
RRWEB = MODULES / "rrweb" / "dist" / "rrweb.umd.min.cjs"
CONSOLE_PLUGIN = (
    MODULES
    / "@rrweb"
    / "rrweb-plugin-console-record"
    / "dist"
    / "rrweb-plugin-console-record.umd.min.cjs"
)

SHOP = """<!doctype html>
<html><head><title>Signals shop</title></head><body>
<h1>Signals shop</h1>
<p><button id="wish">Add to wish list</button> (does nothing)</p>
<p><button id="newsletter">Newsletter</button> (does nothing)</p>
<p><button id="report">Report a problem</button> <span id="reported"></span></p>
<p><button id="stock">Check stock</button> <span id="stock-answer"></span></p>
<script>
  document.getElementById("report").addEventListener("click", function () {
    throw new Error("report failed: no such order");
  });
  document.getElementById("stock").addEventListener("click", function () {
    fetch("/api/stock").then(function (answer) {
      document.getElementById("stock-answer").textContent = "stock: " + answer.status;
    });
  });
</script>
%(recorder)s
</body></html>"""

POSTHOG = """<script src="%(api_host)s/static/array.js"></script>
<script>
  posthog.init("%(token)s", {
    api_host: "%(api_host)s",
    person_profiles: "identified_only",
    opt_out_useragent_filter: true,
    capture_performance: { network_timing: true },
  });
</script>"""

START_RRWEB = """() => {
  window.recorded = [];
  rrweb.record({
    emit: (event) => window.recorded.push(event),
    plugins: [rrwebPluginConsoleRecord.getRecordConsolePlugin()],
  });
}"""


def act(page: Any) -> None:
    """A person's session: moves, a rage click, a dead click, an error, a 500."""
    page.mouse.move(50, 50)
    page.mouse.move(200, 120, steps=5)
    page.wait_for_timeout(500)
    wish = page.locator("#wish")
    for _ in range(5):
        wish.click(delay=10)
        page.wait_for_timeout(60)
    page.wait_for_timeout(4000)  # nothing reacts: past any dead-click window
    page.locator("#newsletter").click()
    page.wait_for_timeout(4000)
    page.locator("#report").click()
    page.wait_for_timeout(1500)
    page.locator("#stock").click()
    page.get_by_text("stock: 500").wait_for(timeout=5000)
    page.wait_for_timeout(1500)


@contextlib.contextmanager
def shop_server(recorder: str) -> Iterator[str]:
    """The shop on a server of its own on the loopback, like the live server: a
    page Playwright made up would count as public, and Chromium keeps public pages
    from calling a loopback server (ReplayHub here)."""
    page = (SHOP % {"recorder": recorder}).encode()

    class Shop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if self.path == "/api/stock":
                self.answer(500, b"stock service down", "text/plain")
            else:
                self.answer(200, page, "text/html")

        def answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://shop.test:{server.server_address[1]}/shop"
    finally:
        server.shutdown()
        server.server_close()


def assert_signals_found(recording: Recording, *, network: bool) -> None:
    recording_compact(recording=recording)
    recording.refresh_from_db()
    assert recording.signals_at is not None
    assert recording.rage_click_count == 1, recording.rage_click_count
    assert recording.dead_click_count >= 1, recording.dead_click_count
    assert recording.console_error_count >= 1
    kinds = set(recording.markers.values_list("kind", flat=True))
    assert {Marker.Kind.RAGE_CLICK, Marker.Kind.DEAD_CLICK} <= kinds, kinds
    assert kinds & {Marker.Kind.CONSOLE_ERROR, Marker.Kind.EXCEPTION}, kinds
    assert Marker.Kind.ERROR_CLICK in kinds, kinds
    rage = recording.markers.get(kind=Marker.Kind.RAGE_CLICK)
    assert rage.details["element"]["tag"] == "button", rage.details
    assert "wish" in (rage.details["element"].get("id") or ""), rage.details
    dead = recording.markers.filter(kind=Marker.Kind.DEAD_CLICK)
    assert any(m.details["element"].get("id") == "newsletter" for m in dead)
    if network:
        assert recording.network_5xx_count >= 1
        failed = recording.markers.filter(kind=Marker.Kind.NETWORK_ERROR)
        assert any(m.details.get("status") == 500 for m in failed), list(failed)
    assert recording.browser == "Chrome", recording.browser
    assert recording.device_type == "Desktop", recording.device_type


@pytest.mark.django_db(transaction=True)
def test_posthog_js_signals_are_found(browser: Any, origins: dict[str, str]) -> None:
    project = Project.objects.create(name="Signals shop")
    recorder = POSTHOG % {"api_host": origins["ingest"], "token": project.token}
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    with shop_server(recorder) as url:
        page.goto(url)
        try:
            page.wait_for_function("() => window.posthog && window.posthog.__loaded")
        except Exception:
            raise AssertionError(f"posthog-js did not load: {problems}") from None
        act(page)
        page.wait_for_timeout(6000)  # the recorder's flush and request queue
    context.close()
    recording = wait_for(
        lambda: Recording.objects.filter(project=project, click_count__gte=8).first(),
        30,
        "the posthog-js recording with every click",
    )
    assert_signals_found(recording, network=True)


@pytest.mark.django_db(transaction=True)
def test_plain_rrweb_signals_are_found(browser: Any, origins: dict[str, str]) -> None:
    project = Project.objects.create(name="Signals shop")
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    with shop_server("") as url:
        page.goto(url)
        page.add_script_tag(path=str(RRWEB))
        page.add_script_tag(path=str(CONSOLE_PLUGIN))
        page.evaluate(START_RRWEB)
        act(page)
        events: list[dict[str, Any]] = page.evaluate("() => window.recorded")
        user_agent = page.evaluate("() => navigator.userAgent")
    context.close()
    body = {"token": project.token, "session_id": "rrweb-signals", "events": events}
    request = urllib.request.Request(
        f"http://127.0.0.1:{origins['ingest'].rsplit(':', 1)[1]}/api/v1/ingest/rrweb/",
        data=orjson.dumps(body),
        headers={
            "Content-Type": "application/json",
            "Host": "ingest.test",
            "User-Agent": user_agent,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    recording = Recording.objects.get(project=project, session_id="rrweb-signals")
    # Plain rrweb records no network requests: no 5xx to find.
    assert_signals_found(recording, network=False)
