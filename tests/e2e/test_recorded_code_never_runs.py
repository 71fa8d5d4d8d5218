"""A recorded page's code never runs in a viewer's browser, on any of the surfaces
that replay it: the offline HTML file opened from disk, the admin's player and the
public share page.

The recording is planted as anyone holding the public capture token could plant it:
a full snapshot whose elements carry handlers that fire by themselves (an image that
fails, a <details> that opens, an input that takes focus), an iframe's srcdoc with a
script, and canvases whose picture (`rr_dataURL`) makes the player turn on rrweb's
canvas replay, which gives the replay iframe `allow-scripts`. Each payload, had it
run, adds its name to `top.__ran`, the viewer's own page.
"""

from __future__ import annotations

import struct
import zlib
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client

from playlists import services as playlists
from recordings import access
from recordings.models import Project, Recording
from recordings.playback.offline import offline_html
from recordings.services.projects import role_grant
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e

T0 = 1_700_000_000_000
DURATION_MS = 3000
PAGE_TEXT = "Planted page"


def ran(name: str) -> str:
    """The JavaScript a payload runs: it notes `name` in the viewer's page."""
    return f"top.__ran=(top.__ran||[]).concat(['{name}'])"


def red_png(size: int = 20) -> str:
    """A `size`² red PNG as a data: URL (a canvas's picture, as rrweb takes it)."""
    row = b"\x00" + b"\xff\x00\x00" * size
    chunks = [
        (b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)),
        (b"IDAT", zlib.compress(row * size)),
        (b"IEND", b""),
    ]
    png = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )
    return "data:image/png;base64," + b64encode(png).decode()


# What the planted page's <body> holds: (tag, attributes, text).
PAYLOADS: list[tuple[str, dict[str, Any], str]] = [
    ("canvas", {"width": "20", "height": "20", "rr_dataURL": red_png()}, ""),
    ("canvas", {"rr_dataURL": "javascript:" + ran("canvas rr_dataURL")}, ""),
    ("img", {"src": "x", "onerror": ran("img onerror")}, ""),
    ("details", {"open": "", "ontoggle": ran("details ontoggle")}, "more"),
    ("input", {"autofocus": "", "onfocus": ran("input onfocus")}, ""),
    ("iframe", {"srcdoc": f"<script>{ran('iframe srcdoc')}</script>"}, ""),
    ("iframe", {"src": "javascript:" + ran("iframe javascript:")}, ""),
]
BODY_ID = 4  # document 1, <html> 2, <head> 3
IMG_ID = 100  # the image whose handler a later mutation sets
FRAME_ID = 110  # a recorded same-origin iframe: its document comes as a mutation
FRAME_TEXT = "Framed page"


def node(id_: int, tag: str, attributes: dict[str, Any], text: str = "") -> Any:
    children = [{"type": 3, "textContent": text, "id": id_ + 1}] if text else []
    return {
        "type": 2,
        "tagName": tag,
        "attributes": attributes,
        "childNodes": children,
        "id": id_,
    }


def mutation(ms: int, **change: Any) -> dict[str, Any]:
    data = {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": []}
    return {"type": 3, "timestamp": T0 + ms, "data": {**data, **change}}


def planted_events() -> list[dict[str, Any]]:
    """The page, then (while it plays) an added element and a changed attribute
    that carry handlers too."""
    children = [node(10, "h1", {}, PAGE_TEXT)]
    children += [node(20 + 2 * n, *payload) for n, payload in enumerate(PAYLOADS)]
    children.append(node(IMG_ID, "img", {"src": "data:,"}))
    children.append(node(FRAME_ID, "iframe", {}))
    body = {**node(BODY_ID, "body", {}), "childNodes": children}
    html = {**node(2, "html", {}), "childNodes": [node(3, "head", {}), body]}
    document = {"type": 0, "id": 1, "childNodes": [html]}
    meta = {"href": "https://shop.test/planted", "width": 800, "height": 600}
    added = node(200, "img", {"src": "y", "onerror": ran("added img onerror")})
    changed = {"id": IMG_ID, "attributes": {"src": "z", "onerror": ran("set onerror")}}
    moves = [
        {
            "type": 3,
            "timestamp": T0 + ms,
            "data": {"source": 1, "positions": [{"x": ms // 10, "y": 50, "id": 1}]},
        }
        for ms in range(500, DURATION_MS + 1, 500)
    ]
    framed = {
        **node(302, "html", {}),
        "childNodes": [node(303, "head", {}), node(304, "body", {}, FRAME_TEXT)],
    }
    frame_document = {"type": 0, "id": 301, "childNodes": [framed]}
    changes = [
        mutation(
            100,
            adds=[{"parentId": FRAME_ID, "nextId": None, "node": frame_document}],
            isAttachIframe=True,  # as rrweb's recorder says it
        ),
        mutation(1000, adds=[{"parentId": BODY_ID, "nextId": None, "node": added}]),
        mutation(1500, attributes=[changed]),
    ]
    return [
        {"type": 4, "timestamp": T0, "data": meta},
        {"type": 2, "timestamp": T0 + 10, "data": {"node": document}},
        *sorted([*moves, *changes], key=lambda event: event["timestamp"]),
    ]


def planted_recording() -> Recording:
    project = Project.objects.create(name="Planted shop")
    body = {
        "token": project.token,
        "session_id": "planted",
        "window_id": "w1",
        "events": planted_events(),
    }
    answer = Client(HTTP_HOST="localhost").post(
        "/api/v1/ingest/rrweb/", orjson.dumps(body), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    return Recording.objects.get(project=project)


RED_PIXEL = """() => {
  const canvas = document.querySelector("canvas");
  return canvas && Array.from(canvas.getContext("2d").getImageData(5, 5, 1, 1).data);
}"""


def assert_it_shows_the_page(page: Any) -> None:
    """The replay iframe shows the recorded page, its canvas's picture drawn
    (canvas replay is on, as the payloads need)."""
    page.wait_for_selector(".replayer-wrapper iframe", state="attached", timeout=20000)
    frame = page.locator(".replayer-wrapper iframe").element_handle().content_frame()
    wait_for(
        lambda: (
            PAGE_TEXT in frame.inner_text("body")
            and frame.evaluate(RED_PIXEL) == [255, 0, 0, 255]
        ),
        10,
        "the recorded page and its canvas's picture",
        pause=lambda: page.wait_for_timeout(100),
    )


def play_through(page: Any) -> None:
    """The player from the start to the end, then a moment for late events."""
    page.evaluate("() => { replayhubPlayer.seek(0); replayhubPlayer.play(); }")
    page.wait_for_function(
        f"() => window.replayhubPlayer.currentTime() >= {DURATION_MS}", timeout=20000
    )
    page.wait_for_timeout(500)


FRAMED_TEXTS = """() => Array.from(document.querySelectorAll("iframe"), (frame) => {
  try { return frame.contentDocument.body.innerText; } catch (error) { return null; }
})"""


def framed_texts(page: Any) -> list[str | None]:
    """The texts of the frames inside the replay iframe: the recorded iframe's."""
    frame = page.locator(".replayer-wrapper iframe").element_handle().content_frame()
    texts: list[str | None] = frame.evaluate(FRAMED_TEXTS)
    return texts


def ran_in(page: Any) -> list[str]:
    names: list[str] = page.evaluate("() => window.__ran || []")
    return names


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    opened = browser.new_context()
    yield opened
    opened.close()


@pytest.mark.django_db(transaction=True)
def test_the_offline_file_runs_no_recorded_code(context: Any, tmp_path: Path) -> None:
    recording = planted_recording()
    path = tmp_path / "planted.html"
    path.write_bytes(b"".join(offline_html(recording)))
    context.set_offline(True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.goto(path.as_uri(), wait_until="domcontentloaded")
    page.wait_for_function("() => window.replayhubPlayer.loadedAt !== null")
    assert_it_shows_the_page(page)
    play_through(page)
    assert FRAME_TEXT in framed_texts(page)
    assert ran_in(page) == []
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_the_admin_player_runs_no_recorded_code(
    context: Any, origins: dict[str, str]
) -> None:
    recording = planted_recording()
    bob = User.objects.create_user("bob", "bob@example.org", "correct horse")
    role_grant(project=recording.project, principal=bob, role=access.Role.VIEWER)
    page = context.new_page()
    log_in(page, origins["admin"], "bob", "correct horse")
    page.goto(f"{origins['admin']}/admin/recordings/recording/{recording.code}/play/")
    page.wait_for_function("() => window.replayhubPlayer.loadedAt !== null")
    assert_it_shows_the_page(page)
    play_through(page)
    assert FRAME_TEXT in framed_texts(page)
    assert ran_in(page) == []


@pytest.mark.django_db(transaction=True)
def test_the_share_page_runs_no_recorded_code(context: Any, live_server: Any) -> None:
    recording = planted_recording()
    alice = User.objects.create_user("alice", "alice@example.org", "pw")
    _, token = playlists.share_link_create(target=recording, user=alice)
    page = context.new_page()
    page.goto(f"{live_server.url}/share/{token}/")
    assert_it_shows_the_page(page)
    # rrweb-player plays it from the start by itself (autoPlay).
    page.wait_for_timeout(DURATION_MS + 1000)
    assert ran_in(page) == []
