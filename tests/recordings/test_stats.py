"""recordings.ingest.stats on real recordings and on edge cases (no DB)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recordings.ingest.stats import EventStats, summarize
from tests.fixtures import fixtures_dir

EMPTY = EventStats(
    event_count=0,
    click_count=0,
    keypress_count=0,
    console_error_count=0,
    first_url="",
    has_full_snapshot=False,
    first_timestamp_ms=None,
    last_timestamp_ms=None,
)
SHOP = "http://shop.test:8767/"


def manifest_entry(section: str, name: str) -> dict[str, Any]:
    manifest = json.loads((fixtures_dir() / "manifest.json").read_text())
    entries: list[dict[str, Any]] = manifest[section]
    (entry,) = [e for e in entries if e["name"].startswith(name)]
    return entry


def load(path: str) -> list[dict[str, Any]]:
    (file,) = fixtures_dir().glob(path)
    events: list[dict[str, Any]] = json.loads(file.read_text())
    return events


def meta(href: str, ts: int) -> dict[str, Any]:
    return {"type": 4, "data": {"href": href, "width": 1, "height": 1}, "timestamp": ts}


def mouse(interaction: int, ts: int = 1) -> dict[str, Any]:
    return {"type": 3, "data": {"source": 2, "type": interaction}, "timestamp": ts}


def console(level: str, ts: int = 1) -> dict[str, Any]:
    payload = {"level": level, "payload": ['"boom"'], "trace": []}
    data = {"plugin": "rrweb/console@1", "payload": payload}
    return {"type": 6, "data": data, "timestamp": ts}


# manifest.json does not break down clicks or console levels; these counts were
# taken once from the fixture files.
RECORDINGS = [
    # (section, name, path, clicks, console errors, first url)
    pytest.param(
        "rrweb",
        "signup.json",
        "rrweb/signup.json",
        6,
        0,
        SHOP + "signup.html?mode=rrweb&flow=signup",
        id="rrweb-signup",
    ),
    pytest.param(
        "rrweb",
        "checkout.json",
        "rrweb/checkout.json",
        9,
        0,
        SHOP + "checkout.html?mode=rrweb&flow=checkout",
        id="rrweb-checkout",
    ),
    pytest.param(
        "rrweb",
        "browse.json",
        "rrweb/browse.json",
        13,
        2,
        SHOP + "index.html?mode=rrweb&flow=browse",
        id="rrweb-browse",
    ),
    pytest.param(
        "posthog-js",
        "sessions/main.0",
        "posthog-js/sessions/main.0.*.json",
        27,
        2,
        "http://shop.test:8766/index.html?mode=posthog&flow=main",
        id="posthog-main",
    ),
]


@pytest.mark.parametrize(
    ("section", "name", "path", "clicks", "errors", "first_url"),
    RECORDINGS,
)
def test_it_summarizes_real_recordings(
    section: str,
    name: str,
    path: str,
    clicks: int,
    errors: int,
    first_url: str,
) -> None:
    entry = manifest_entry(section, name)
    stats = summarize(load(path))
    assert stats.event_count == entry["events"]
    assert stats.keypress_count == entry["by_type"]["3/src5"]
    assert stats.has_full_snapshot is ("2" in entry["by_type"])
    assert stats.click_count == clicks <= entry["by_type"]["3/src2"]
    assert stats.console_error_count == errors <= entry["by_type"]["6:rrweb/console@1"]
    assert stats.first_url == first_url
    assert stats.last_timestamp_ms is not None and stats.first_timestamp_ms is not None
    # These recordings arrive in order, so the manifest's span is the real one.
    assert stats.last_timestamp_ms - stats.first_timestamp_ms == entry["duration_ms"]


def test_it_uses_earliest_and_latest_not_first_and_last() -> None:
    events = load("posthog-js/sessions/idle-rotation.0.*.json")
    entry = manifest_entry("posthog-js", "sessions/idle-rotation.0")
    assert entry["timestamps_non_decreasing"] is False
    stats = summarize(events)
    assert stats.first_timestamp_ms == min(e["timestamp"] for e in events)
    assert stats.last_timestamp_ms == max(e["timestamp"] for e in events)
    assert stats.last_timestamp_ms != events[-1]["timestamp"]


def test_it_takes_the_first_url_by_time_not_by_arrival() -> None:
    stats = summarize(
        [meta("http://b/", 20), meta("http://a/", 10), meta("http://b/", 5)]
    )
    assert stats.first_url == "http://b/"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param(mouse(2), "click_count", id="click"),
        pytest.param(mouse(0), None, id="mouse-up"),
        pytest.param(mouse(4), None, id="double-click"),
        pytest.param(
            {"type": 3, "data": {"source": 5, "text": "a"}, "timestamp": 1},
            "keypress_count",
            id="input",
        ),
        pytest.param(
            {"type": 3, "data": {"source": 1, "type": 2}, "timestamp": 1},
            None,
            id="mouse-move",
        ),
        pytest.param(
            {"type": 2, "data": {"source": 2, "type": 2}, "timestamp": 1},
            None,
            id="full-snapshot",
        ),
        pytest.param(console("error"), "console_error_count", id="console-error"),
        pytest.param(console("warn"), None, id="console-warn"),
        pytest.param(
            {
                "type": 6,
                "data": {"plugin": "rrweb/network@1", "payload": {"level": "error"}},
                "timestamp": 1,
            },
            None,
            id="network",
        ),
        pytest.param(
            {
                "type": 5,
                "data": {"tag": "error", "payload": {"level": "error"}},
                "timestamp": 1,
            },
            None,
            id="custom",
        ),
    ],
)
def test_it_counts_only_what_each_counter_names(
    event: dict[str, Any], field: str | None
) -> None:
    stats = summarize([event])
    counters = ("click_count", "keypress_count", "console_error_count")
    assert {name: getattr(stats, name) for name in counters} == {
        name: int(name == field) for name in counters
    }


def test_it_tolerates_events_missing_parts() -> None:
    stats = summarize(
        [{"type": 4}, {"type": 4, "data": {"href": 5}, "timestamp": 3}, {"data": 1}]
    )
    assert (stats.event_count, stats.first_url) == (3, "")
    assert (stats.first_timestamp_ms, stats.last_timestamp_ms) == (3, 3)


def test_an_empty_batch_has_empty_stats() -> None:
    assert summarize([]) == summarize(iter([])) == EMPTY
