"""recordings.ingest.images: inline data: images swapped for a placeholder (no DB)."""

from __future__ import annotations

import base64
import copy
import json
import random
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from recordings.ingest.images import (
    LARGE_PAYLOAD_BYTES,
    PLACEHOLDER_IMAGE,
    payload_is_large,
    replace_data_url_images,
)
from tests.fixtures import fixtures_dir

# Long enough to pass the default min_length of 1024 characters.
IMG = "data:image/png;base64," + "iVBORw0KGgo" * 200
SMALL_IMG = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
FONT = "data:font/woff2;base64," + "d09GMgABAAAAA" * 200
MARK = "@IMG@"


def full_snapshot(*children: dict[str, Any]) -> dict[str, Any]:
    body = element("body", {}, *children)
    html = element("html", {}, element("head", {}), body)
    document = {"type": 0, "childNodes": [html], "id": 1}
    return {"type": 2, "data": {"node": document, "initialOffset": {}}, "timestamp": 1}


def body(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The children of <body> in a `full_snapshot`."""
    html = snapshot["data"]["node"]["childNodes"][0]
    children: list[dict[str, Any]] = html["childNodes"][1]["childNodes"]
    return children


def element(tag: str, attributes: dict[str, Any], *children: Any) -> dict[str, Any]:
    return {
        "type": 2,
        "tagName": tag,
        "attributes": attributes,
        "childNodes": list(children),
        "id": 2,
    }


def incremental(source: int, **data: Any) -> dict[str, Any]:
    return {"type": 3, "data": {"source": source, **data}, "timestamp": 1}


def mutation(**data: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"texts": [], "attributes": [], "removes": [], "adds": []}
    return incremental(0, **{**fields, **data})


def style_text(css: str) -> dict[str, Any]:
    return {"type": 3, "textContent": css, "isStyle": True, "id": 3}


CSS = f"color: red; background: url({MARK}) no-repeat; width: 2px;"
# Where rrweb carries inline images; MARK is where one goes. Each case holds one
# image per MARK.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("img src", full_snapshot(element("img", {"src": MARK, "alt": "a"}))),
    (
        "img srcset",
        full_snapshot(element("img", {"srcset": f"{MARK} 1x, /b.png 2x"})),
    ),
    ("srcset, no descriptor", full_snapshot(element("img", {"srcset": MARK}))),
    (
        "srcset, second candidate",
        full_snapshot(element("img", {"srcset": f"/a.png 1x,{MARK}, /c.png 3x"})),
    ),
    ("link rel icon", full_snapshot(element("link", {"rel": "icon", "href": MARK}))),
    ("video poster", full_snapshot(element("video", {"poster": MARK}))),
    ("img rr_dataURL", full_snapshot(element("img", {"rr_dataURL": MARK}))),
    ("canvas rr_dataURL", full_snapshot(element("canvas", {"rr_dataURL": MARK}))),
    ("svg image xlink:href", full_snapshot(element("image", {"xlink:href": MARK}))),
    ("style attribute", full_snapshot(element("div", {"style": CSS}))),
    (
        "style attribute, quoted urls",
        full_snapshot(
            element("div", {"style": f"background: url(\"{MARK}\"), url('{MARK}')"})
        ),
    ),
    ("link _cssText", full_snapshot(element("link", {"_cssText": f".a {{{CSS}}}"}))),
    (
        "style element _cssText",
        full_snapshot(element("style", {"_cssText": f".a {{{CSS}}}"})),
    ),
    (
        "isStyle text node",
        full_snapshot(element("style", {}, style_text(f".a {{{CSS}}}"))),
    ),
    (
        "css image-set",
        full_snapshot(
            element("div", {"style": f'background: image-set("{MARK}" 1x) red'})
        ),
    ),
    (
        "mutation add",
        mutation(adds=[{"parentId": 1, "node": element("img", {"src": MARK})}]),
    ),
    (
        "mutation add, nested children",
        mutation(
            adds=[
                {
                    "parentId": 1,
                    "node": element(
                        "div",
                        {"style": CSS},
                        element("p", {}, element("img", {"src": MARK})),
                        element("style", {}, style_text(CSS)),
                    ),
                }
            ]
        ),
    ),
    (
        "mutation attribute src",
        mutation(attributes=[{"id": 9, "attributes": {"src": MARK, "alt": None}}]),
    ),
    (
        "mutation attribute style string",
        mutation(attributes=[{"id": 9, "attributes": {"style": CSS}}]),
    ),
    (
        "mutation attribute style diff",
        mutation(
            attributes=[
                {
                    "id": 9,
                    "attributes": {
                        "style": {
                            "background-image": f"url({MARK})",
                            "color": "red",
                            "mask": [f"url('{MARK}')", "important"],
                            "border": False,
                        }
                    },
                }
            ]
        ),
    ),
    ("mutation text of a style", mutation(texts=[{"id": 3, "value": CSS}])),
    ("stylesheet rule add", incremental(8, id=4, adds=[{"rule": f".a{{{CSS}}}"}])),
    ("stylesheet replaceSync", incremental(8, styleId=1, replaceSync=f".a{{{CSS}}}")),
    (
        "style declaration",
        incremental(
            13, id=4, index=[0], set={"property": "background", "value": f"url({MARK})"}
        ),
    ),
    (
        "adopted style sheet",
        incremental(
            15, id=1, styleIds=[1], styles=[{"styleId": 1, "rules": [{"rule": CSS}]}]
        ),
    ),
]


def fill(template: dict[str, Any], url: str) -> dict[str, Any]:
    # The URLs hold no JSON-special characters, so text substitution is exact.
    filled: dict[str, Any] = json.loads(json.dumps(template).replace(MARK, url))
    return filled


def marks(template: dict[str, Any]) -> int:
    return json.dumps(template).count(MARK)


@pytest.mark.parametrize(
    "template", [case for _, case in CASES], ids=[name for name, _ in CASES]
)
def test_each_location_is_replaced(template: dict[str, Any]) -> None:
    events = [fill(template, IMG)]
    assert replace_data_url_images(events) == marks(template)
    # Everything but the image stays as it was, CSS around the URL included.
    assert events == [fill(template, PLACEHOLDER_IMAGE)]


@pytest.mark.parametrize(
    "template", [case for _, case in CASES], ids=[name for name, _ in CASES]
)
def test_small_images_stay(template: dict[str, Any]) -> None:
    events = [fill(template, SMALL_IMG)]
    assert replace_data_url_images(events) == 0
    assert events == [fill(template, SMALL_IMG)]


@pytest.mark.parametrize(
    "url",
    [
        FONT,
        "data:text/html;base64," + "PGgxPmhpPC9oMT4" * 100,
        "data:application/octet-stream;base64," + "AAAA" * 400,
        "data:," + "x" * 2000,
        "https://cdn.test/" + "a" * 2000 + ".png",
    ],
    ids=["font", "html", "octet-stream", "plain", "https"],
)
@pytest.mark.parametrize(
    "template", [case for _, case in CASES], ids=[name for name, _ in CASES]
)
def test_other_urls_stay(template: dict[str, Any], url: str) -> None:
    events = [fill(template, url)]
    assert replace_data_url_images(events) == 0
    assert events == [fill(template, url)]


def test_min_length_is_the_data_url_length() -> None:
    url = "data:image/png;base64," + "A" * 78
    events = [full_snapshot(element("img", {"src": url}))]
    assert replace_data_url_images(events, min_length=101) == 0
    assert replace_data_url_images(events, min_length=100) == 1


def test_the_scheme_is_matched_case_insensitively() -> None:
    upper = "DATA:IMAGE/PNG;BASE64," + "A" * 2000
    style = f"color: red; background: URL({upper}); width: 1px"
    events = [full_snapshot(element("img", {"src": upper, "style": style}))]
    assert replace_data_url_images(events) == 2
    assert body(events[0])[0]["attributes"] == {
        "src": PLACEHOLDER_IMAGE,
        "style": f"color: red; background: URL({PLACEHOLDER_IMAGE}); width: 1px",
    }


def test_css_keeps_fonts_and_other_declarations() -> None:
    css = (
        f"@font-face {{ font-family: X; src: url({FONT}) format('woff2'); }}"
        f'.hero {{ color: red; background: #fff url("{IMG}") center / cover; }}'
        ".b { margin: 0; }"
    )
    events = [incremental(8, id=1, adds=[{"rule": css, "index": 0}])]
    assert replace_data_url_images(events) == 1
    assert events[0]["data"]["adds"][0]["rule"] == css.replace(IMG, PLACEHOLDER_IMAGE)


def test_escaped_quotes_inside_a_quoted_svg_url() -> None:
    # As a browser serialises it: the quotes inside escaped.
    svg = r"data:image/svg+xml,<svg xmlns=\"http://www.w3.org/2000/svg\">"
    svg += "<g/>" * 400 + "</svg>"
    css = f'.a {{ background: url("{svg}"); color: red; }}'
    events = [full_snapshot(element("style", {}, style_text(css)))]
    assert replace_data_url_images(events) == 1
    text = events[0]["data"]["node"]["childNodes"][0]["childNodes"][1]["childNodes"][0][
        "childNodes"
    ][0]["textContent"]
    assert text == f'.a {{ background: url("{PLACEHOLDER_IMAGE}"); color: red; }}'


def test_quotes_that_never_close_cost_linear_time() -> None:
    # Every `\'` escapes a quote, so no data URL ever closes. A backtracking
    # engine scans to the end from each quote: quadratic, and at this length
    # (~650 KB) many minutes; this test would not finish.
    css = "'data:image/" + "\\'data:image/" * 50_000
    events = [full_snapshot(element("div", {"style": css}))]
    assert replace_data_url_images(events) == 0
    assert body(events[0])[0]["attributes"]["style"] == css


def test_returns_the_count_over_all_events() -> None:
    events = [fill(template, IMG) for _, template in CASES]
    expected = sum(marks(template) for _, template in CASES)
    assert expected > len(CASES)
    assert replace_data_url_images(events) == expected
    # The placeholder is too short to be replaced again.
    assert replace_data_url_images(events) == 0
    assert replace_data_url_images(events, min_length=1) == 0


def test_other_events_and_malformed_data_are_ignored() -> None:
    canvas = incremental(
        9, id=5, type=0, commands=[{"property": "drawImage", "args": [IMG]}]
    )
    events: list[dict[str, Any]] = [
        {"type": 4, "data": {"href": IMG, "width": 1, "height": 1}, "timestamp": 1},
        {"type": 5, "data": {"tag": "x", "payload": {"src": IMG}}, "timestamp": 1},
        canvas,
        {"type": 2, "data": "compressed, still a string", "timestamp": 1, "cv": "x"},
        {"type": 2, "data": {"node": [IMG, None, {"type": 2, "attributes": None}]}},
        mutation(adds=None, attributes=[None, {"id": 1}], texts="x"),
        incremental(8, adds=[{"rule": None}], replace=3),
        incremental(13, set=[IMG]),
    ]
    before = copy.deepcopy(events)
    assert replace_data_url_images(events) == 0
    assert events == before


def png_data_url(size: int) -> str:
    # Random bytes do not compress, like a real photo.
    raw = b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(size)
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def gallery(photo: str) -> list[dict[str, Any]]:
    thumbs = [
        element("figure", {"class": "thumb"}, element("img", {"src": f"/t/{i}.jpg"}))
        for i in range(50)
    ]
    snapshot = full_snapshot(
        element("h1", {}, {"type": 3, "textContent": "Gallery", "id": 5}),
        element("div", {"class": "grid"}, *thumbs),
        element("img", {"src": photo, "alt": "hero", "width": "800"}),
    )
    added = element("div", {"class": "lightbox"}, element("img", {"src": photo}))
    return [
        {"type": 4, "data": {"href": "http://shop.test/g", "width": 1280}},
        snapshot,
        mutation(adds=[{"parentId": 4, "nextId": None, "node": added}]),
    ]


def test_a_gallery_with_a_big_photo_shrinks() -> None:
    photo = png_data_url(900_000)
    assert len(photo) > 1_200_000
    events = gallery(photo)
    assert len(json.dumps(events)) > 2_400_000
    assert replace_data_url_images(events) == 2
    assert len(json.dumps(events)) < 50_000


def test_a_six_megabyte_batch_is_quick() -> None:
    photo = png_data_url(1_200_000)
    events = gallery(photo) + gallery(photo)
    assert len(json.dumps(events)) > 6_000_000
    started = time.perf_counter()
    assert replace_data_url_images(events) == 4
    # Measured at a few ms; the bound only catches an accidental rescan or copy.
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("depth", [600, 20_000])
def test_deep_trees_do_not_recurse(depth: int) -> None:
    leaf = element("img", {"src": IMG})
    node = leaf
    for _ in range(depth):
        node = element("div", {"style": CSS.replace(MARK, SMALL_IMG)}, node)
    events = [
        full_snapshot(node),
        mutation(adds=[{"parentId": 1, "node": copy.copy(node)}]),
    ]
    assert replace_data_url_images(events) == 1
    assert leaf["attributes"]["src"] == PLACEHOLDER_IMAGE


def test_the_placeholder_is_a_small_svg_data_url() -> None:
    prefix = "data:image/svg+xml;base64,"
    assert PLACEHOLDER_IMAGE.startswith(prefix)
    assert len(PLACEHOLDER_IMAGE.encode()) < 400
    svg = base64.b64decode(PLACEHOLDER_IMAGE[len(prefix) :], validate=True)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_payload_is_large_from_five_megabytes() -> None:
    assert LARGE_PAYLOAD_BYTES == 5 * 1024 * 1024
    assert not payload_is_large(0)
    assert not payload_is_large(LARGE_PAYLOAD_BYTES - 1)
    assert payload_is_large(LARGE_PAYLOAD_BYTES)
    assert payload_is_large(LARGE_PAYLOAD_BYTES * 3)


def recorded_sessions() -> list[Path]:
    root = fixtures_dir()
    return sorted(root.glob("rrweb/*.json")) + sorted(
        root.glob("posthog-js/sessions/*.rrweb.json")
    )


@pytest.mark.parametrize("path", recorded_sessions(), ids=lambda path: path.name)
def test_recorded_sessions_pass_through_unchanged(path: Path) -> None:
    events = json.loads(path.read_text())
    before = copy.deepcopy(events)
    # min_length=1: these recordings hold no inline image of any size.
    assert replace_data_url_images(events, min_length=1) == 0
    assert events == before
