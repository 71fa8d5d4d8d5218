"""The browser, OS, device type and viewport a recording was made with.

posthog-js reports these itself on every analytics event (`$browser`,
`$browser_version`, `$os`, `$device_type`, `$viewport_width/height`); they win.
What it did not say comes from the User-Agent, parsed by ua-parser (uap-core's
maintained patterns, never our own regexes), and the viewport from the first
Meta event (or viewport-resize event). Pure: no Django.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import ua_parser

from recordings.ingest.markers import AnalyticsEvent, finite, is_int, mapping_of
from recordings.ingest.rrweb import INCREMENTAL, META, SOURCE_VIEWPORT_RESIZE

BROWSER_MAX = 100
OS_MAX = 100
BROWSER_VERSION_MAX = 50
DEVICE_TYPE_MAX = 20
DESKTOP, MOBILE, TABLET = "Desktop", "Mobile", "Tablet"  # posthog-js's words
_UA_MAX = 1000  # longer User-Agents are not real browsers'
_NO_WINDOWS: Mapping[str, Sequence[Mapping[str, Any]]] = MappingProxyType({})
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD"}
)


@dataclass(frozen=True, slots=True)
class Environment:
    browser: str
    browser_version: str
    os: str
    device_type: str  # "Desktop" | "Mobile" | "Tablet" | "" (posthog-js's values)
    viewport_width: int | None
    viewport_height: int | None


def environment_of(
    *,
    analytics: Sequence[AnalyticsEvent] = (),
    user_agent: str = "",
    windows: Mapping[str, Sequence[Mapping[str, Any]]] = _NO_WINDOWS,
) -> Environment:
    """posthog-js's own properties first, field by field; then the User-Agent
    (ua-parser) and the viewport of the earliest Meta or viewport-resize event."""
    said = _posthog_says(analytics)
    parsed = _parse_user_agent(user_agent if isinstance(user_agent, str) else "")
    width, height = _viewport(said)
    if width is None or height is None:
        width, height = _recorded_viewport(windows)
    return Environment(
        browser=(_text(said.get("$browser")) or parsed[0])[:BROWSER_MAX],
        browser_version=(_version(said) or parsed[1])[:BROWSER_VERSION_MAX],
        os=(_text(said.get("$os")) or parsed[2])[:OS_MAX],
        device_type=(_text(said.get("$device_type")) or parsed[3])[:DEVICE_TYPE_MAX],
        viewport_width=width,
        viewport_height=height,
    )


def _posthog_says(analytics: Sequence[AnalyticsEvent]) -> Mapping[str, Any]:
    """The properties of the earliest analytics event that names its browser."""
    best: AnalyticsEvent | None = None
    for event in analytics:
        if not isinstance(event, AnalyticsEvent) or not is_int(event.timestamp_ms):
            continue
        props = mapping_of(event.properties)
        if _text(props.get("$browser")) and (
            best is None or event.timestamp_ms < best.timestamp_ms
        ):
            best = event
    return mapping_of(best.properties) if best is not None else {}


def _version(said: Mapping[str, Any]) -> str:
    value = said.get("$browser_version")
    number = finite(value)
    if number is not None:  # posthog-js sends a number: 156, 17.4
        return str(int(number)) if number.is_integer() else str(number)
    return _text(value)


def _viewport(said: Mapping[str, Any]) -> tuple[int | None, int | None]:
    return _size(said.get("$viewport_width")), _size(said.get("$viewport_height"))


@functools.lru_cache(maxsize=256)
def _parse_user_agent(user_agent: str) -> tuple[str, str, str, str]:
    """(browser, version, os, device type) of a User-Agent; "" where unknown."""
    if not user_agent.strip() or len(user_agent) > _UA_MAX:
        return "", "", "", ""
    result = ua_parser.parse(user_agent)
    agent, system, device = result.user_agent, result.os, result.device
    browser = agent.family if agent and agent.family != "Other" else ""
    version = ".".join(p for p in (agent.major, agent.minor) if p) if agent else ""
    if version.endswith(".0"):
        version = version[:-2]  # "120.0" -> "120", as posthog-js says it
    os_name = system.family if system and system.family != "Other" else ""
    device_family = device.family if device else ""
    return browser, version, os_name, _device_type(user_agent, os_name, device_family)


def _device_type(user_agent: str, os_name: str, device_family: str) -> str:
    """Desktop, Mobile or Tablet from what ua-parser found.

    ua-parser names devices, not their kind: an iPad is a tablet, other iOS
    devices phones; an Android browser says "Mobile" in its User-Agent on a
    phone and leaves it out on a tablet (Chrome's documented convention);
    desktop systems are desktops. Anything else is left unknown.
    """
    if device_family == "Spider":
        return ""
    if os_name in ("iOS", "iPadOS"):
        return TABLET if device_family == "iPad" else MOBILE
    if os_name == "Android":
        return MOBILE if "Mobile" in user_agent else TABLET
    if os_name in _DESKTOP_OS or os_name.startswith("Windows"):
        return DESKTOP
    return ""


def _recorded_viewport(
    windows: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[int | None, int | None]:
    """Width and height of the earliest Meta (or viewport-resize) event."""
    best: tuple[float, int, int] | None = None
    for events in windows.values() if isinstance(windows, Mapping) else ():
        for event in events if isinstance(events, Sequence) else ():
            size = _event_size(event)
            stamp = finite(event.get("timestamp")) if size else None
            if size and stamp is not None and (best is None or stamp < best[0]):
                best = (stamp, *size)
    return (best[1], best[2]) if best else (None, None)


def _event_size(event: Any) -> tuple[int, int] | None:
    if not isinstance(event, Mapping):
        return None
    kind, data = event.get("type"), mapping_of(event.get("data"))
    resized = kind == INCREMENTAL and data.get("source") == SOURCE_VIEWPORT_RESIZE
    if kind != META and not resized:
        return None
    width, height = _size(data.get("width")), _size(data.get("height"))
    return (width, height) if width is not None and height is not None else None


def _size(value: Any) -> int | None:
    number = finite(value)
    return int(number) if number is not None and 0 < number < 100_000 else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
