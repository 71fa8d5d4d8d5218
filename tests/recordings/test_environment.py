"""Browser, OS, device type and viewport of a recording (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recordings.ingest.environment import Environment, environment_of
from recordings.ingest.signal_scan import AnalyticsEvent
from tests.capture import session_events
from tests.fixtures import fixtures_dir

T0 = 1_800_000_000_000
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)
FIREFOX_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) "
    "Gecko/20100101 Firefox/125.0"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "browser", "version", "os", "device_type"),
    [
        (CHROME_LINUX, "Chrome", "156", "Linux", "Desktop"),
        (CHROME_WINDOWS, "Chrome", "124", "Windows", "Desktop"),
        (SAFARI_IPHONE, "Mobile Safari", "17.4", "iOS", "Mobile"),
        (SAFARI_IPAD, "Mobile Safari", "16.6", "iOS", "Tablet"),
        (FIREFOX_MAC, "Firefox", "125", "Mac OS X", "Desktop"),
        (ANDROID_TABLET, "Chrome", "120", "Android", "Tablet"),
        (ANDROID_PHONE, "Chrome Mobile", "124", "Android", "Mobile"),
        ("", "", "", "", ""),
        ("curl/8.5.0", "curl", "8.5", "", ""),
        ("x" * 5000, "", "", "", ""),
    ],
)
def test_it_parses_user_agents(
    user_agent: str, browser: str, version: str, os: str, device_type: str
) -> None:
    found = environment_of(user_agent=user_agent)
    assert (found.browser, found.browser_version, found.os, found.device_type) == (
        browser,
        version,
        os,
        device_type,
    )


def posthog_event(props: dict[str, Any], ts: int = T0) -> AnalyticsEvent:
    return AnalyticsEvent("$pageview", ts, "w", props)


POSTHOG_SAYS = {
    "$browser": "Chrome",
    "$browser_version": 156,
    "$os": "Linux",
    "$device_type": "Desktop",
    "$viewport_width": 1280,
    "$viewport_height": 800,
}


def test_it_takes_posthogs_own_properties_first() -> None:
    found = environment_of(
        analytics=[posthog_event(POSTHOG_SAYS)],
        user_agent=SAFARI_IPHONE,
        windows={"w": [meta(T0, 390, 844)]},
    )
    assert found == Environment("Chrome", "156", "Linux", "Desktop", 1280, 800)


def test_it_takes_the_earliest_event_that_names_a_browser() -> None:
    events = [
        posthog_event(POSTHOG_SAYS | {"$browser": "Firefox"}, T0 + 5),
        posthog_event({}, T0 + 1),  # says nothing
        posthog_event(POSTHOG_SAYS | {"$browser_version": 17.4}, T0 + 2),
    ]
    found = environment_of(analytics=events)
    assert (found.browser, found.browser_version) == ("Chrome", "17.4")


def test_it_fills_what_posthog_left_out() -> None:
    found = environment_of(
        analytics=[posthog_event({"$browser": "Chrome"})],
        user_agent=ANDROID_TABLET,
        windows={"w": [meta(T0, 800, 1280)]},
    )
    assert found == Environment("Chrome", "120", "Android", "Tablet", 800, 1280)


def meta(ts: int, width: Any, height: Any) -> dict[str, Any]:
    data = {"href": "https://shop.test/", "width": width, "height": height}
    return {"type": 4, "timestamp": ts, "data": data}


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        ({}, (None, None)),
        ({"w": [meta(T0, 1280, 800)]}, (1280, 800)),
        ({"w": [meta(T0 + 9, 1024, 700)], "v": [meta(T0, 1280, 800)]}, (1280, 800)),
        (
            {
                "w": [
                    {
                        "type": 3,
                        "timestamp": T0,
                        "data": {"source": 4, "width": 390, "height": 844},
                    }
                ]
            },
            (390, 844),
        ),
        ({"w": [meta(T0, "wide", None), meta(T0 + 1, 640, 480)]}, (640, 480)),
        (
            {"w": [None, "x", {"type": 4}, {"type": 4, "timestamp": T0, "data": 3}]},
            (None, None),
        ),
    ],
)
def test_it_takes_the_viewport_of_the_first_meta(
    windows: dict[str, Any], expected: tuple[int | None, int | None]
) -> None:
    found = environment_of(windows=windows)
    assert (found.viewport_width, found.viewport_height) == expected


def test_it_cuts_values_to_their_columns() -> None:
    long = POSTHOG_SAYS | {
        "$browser": "B" * 300,
        "$os": "O" * 300,
        "$browser_version": "9" * 300,
        "$device_type": "D" * 300,
    }
    found = environment_of(analytics=[posthog_event(long)])
    lengths = len(found.browser), len(found.os), len(found.browser_version)
    assert lengths + (len(found.device_type),) == (100, 100, 50, 20)


def test_it_reads_odd_input_without_raising() -> None:
    odd: list[Any] = [None, AnalyticsEvent("$pageview", T0, "w", {"$browser": 5})]
    found = environment_of(analytics=odd, user_agent=None)  # type: ignore[arg-type]
    assert found == Environment("", "", "", "", None, None)


def test_it_reads_the_fixtures() -> None:
    browse = json.loads((fixtures_dir() / "rrweb" / "browse.json").read_text())
    found = environment_of(user_agent=CHROME_LINUX, windows={"w": browse})
    assert found == Environment("Chrome", "156", "Linux", "Desktop", 1280, 800)
    main = session_events("main")
    first_meta = next(e for e in main if e["type"] == 4)
    found = environment_of(windows={"w": main})
    width, height = first_meta["data"]["width"], first_meta["data"]["height"]
    assert (found.viewport_width, found.viewport_height) == (width, height)
