"""One window's rrweb events, read once in time order: what signals.py counts.

WindowScan feeds each event to the detectors of frustration.py and counts mouse,
scroll, input, console and network activity, collecting the pages, the errors
(for error clicks) and the markers that need nothing from other windows.
Pure: no Django.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recordings.ingest.frustration import ClickWatch, Thrash
from recordings.ingest.markers import (
    LABEL_MAX,
    URL_MAX,
    Kind,
    Marker,
    cut,
    finite,
    is_int,
    mapping_of,
    text_of,
    url_path,
)
from recordings.ingest.nodes import NodeMap
from recordings.ingest.rrweb import (
    CONSOLE_PLUGIN,
    CUSTOM,
    FULL_SNAPSHOT,
    INCREMENTAL,
    INTERACTION_CLICK,
    META,
    NETWORK_PLUGIN,
    PLUGIN,
    SOURCE_ADOPTED_STYLE_SHEET,
    SOURCE_CANVAS_MUTATION,
    SOURCE_CUSTOM_ELEMENT,
    SOURCE_DRAG,
    SOURCE_INPUT,
    SOURCE_MEDIA_INTERACTION,
    SOURCE_MOUSE_INTERACTION,
    SOURCE_MOUSE_MOVE,
    SOURCE_MUTATION,
    SOURCE_SCROLL,
    SOURCE_SELECTION,
    SOURCE_STYLE_DECLARATION,
    SOURCE_STYLE_SHEET_RULE,
    SOURCE_TOUCH_MOVE,
    SOURCE_VIEWPORT_RESIZE,
)

# PostHog's activity segmenter (ACTIVITY_THRESHOLD_MS): input keeps the user
# active until this long after the last input event.
ACTIVITY_GAP_MS = 5000
# A request's own start time is used when it is this close to its event's.
_REQUEST_CLOCK_SLACK_MS = 10 * 60_000

# PostHog's "active" incremental sources (segmenter.ts `activeSources`).
_ACTIVE_SOURCES = frozenset(
    {
        SOURCE_MOUSE_MOVE,
        SOURCE_MOUSE_INTERACTION,
        SOURCE_SCROLL,
        SOURCE_VIEWPORT_RESIZE,
        SOURCE_INPUT,
        SOURCE_TOUCH_MOVE,
        SOURCE_MEDIA_INTERACTION,
        SOURCE_DRAG,
    }
)
_MOUSE_SOURCES = frozenset(
    {SOURCE_MOUSE_MOVE, SOURCE_MOUSE_INTERACTION, SOURCE_TOUCH_MOVE}
)
_POSITION_SOURCES = frozenset({SOURCE_MOUSE_MOVE, SOURCE_TOUCH_MOVE, SOURCE_DRAG})
# Incremental sources that show the user the page reacted (dead clicks).
_REACTION_SOURCES = frozenset(
    {
        SOURCE_MUTATION,
        SOURCE_SCROLL,
        SOURCE_INPUT,
        SOURCE_MEDIA_INTERACTION,
        SOURCE_STYLE_SHEET_RULE,
        SOURCE_CANVAS_MUTATION,
        SOURCE_STYLE_DECLARATION,
        SOURCE_SELECTION,
        SOURCE_ADOPTED_STYLE_SHEET,
        SOURCE_CUSTOM_ELEMENT,
    }
)
# posthog-js custom events (wire-protocol §5).
_NAVIGATION_TAGS = frozenset({"$pageview", "$url_changed"})  # payload.href
_HIDDEN_TAG = "window hidden"  # the click opened a tab, a download, a dialog
_INTERNAL_TAGS = frozenset(
    {
        "$remote_config_received",
        "$session_options",
        "$posthog_config",
        "$recording_started",
        "sessionIdle",
        "sessionNoLongerIdle",
        "$session_ending",
        "$session_id_change",
        "$session_starting",
        "window hidden",
        "window visible",
        "browser offline",
        "browser online",
        "recording paused",
        "recording resumed",
    }
)
_LOG_LEVELS = frozenset({"log", "info", "debug"})


@dataclass(slots=True)
class Activity:
    """Active spans of one window, as PostHog's segmenter finds them.

    A span starts at an active event (mouse, touch, scroll, resize, input, media,
    drag) and lasts while active events keep coming less than ACTIVITY_GAP_MS
    apart; any event in that time extends it. A span of one event counts 1 ms.
    """

    spans: list[tuple[int, int]] = field(default_factory=list)
    _start: int | None = None
    _end: int = 0
    _last_active: int = 0

    def feed(self, stamp: int, active: bool) -> None:
        if self._start is not None and self._last_active + ACTIVITY_GAP_MS < stamp:
            self.finish()
        if active:
            if self._start is None:
                self._start = stamp
            self._last_active = stamp
        if self._start is not None:
            self._end = stamp

    def finish(self) -> None:
        if self._start is not None:
            self.spans.append((self._start, max(self._end, self._start + 1)))
            self._start = None


@dataclass(slots=True)
class WindowScan:
    window_id: str
    nodes: NodeMap = field(default_factory=NodeMap)
    clicks: ClickWatch = field(init=False)
    thrash: Thrash = field(default_factory=Thrash)
    activity: Activity = field(default_factory=Activity)
    first_ms: int | None = None
    last_ms: int = 0
    mouse_count: int = 0
    scroll_count: int = 0
    keypress_count: int = 0
    log_count: int = 0
    warn_count: int = 0
    error_count: int = 0
    request_count: int = 0
    client_error_count: int = 0
    server_error_count: int = 0
    slowest_ms: int = 0
    slowest_url: str = ""
    pages: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # for error clicks
    markers: list[Marker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clicks = ClickWatch(self.nodes)

    def feed(self, stamp: int, event: Mapping[str, Any]) -> None:
        kind, data = event.get("type"), _data(event)
        source = data.get("source") if kind == INCREMENTAL else None
        if self.first_ms is None:
            self.first_ms = stamp
        self.last_ms = max(self.last_ms, stamp)
        self.activity.feed(stamp, source in _ACTIVE_SOURCES)
        self.clicks.tick(stamp)
        if kind == INCREMENTAL:
            self._incremental(stamp, source, data)
        elif kind == META:
            self._navigated(stamp, data.get("href"))
        elif kind == FULL_SNAPSHOT:
            self.nodes.reset(data.get("node"))
            self.clicks.react()
        elif kind == CUSTOM:
            self._custom(stamp, data)
        elif kind == PLUGIN:
            self._plugin(stamp, data)

    def _incremental(self, stamp: int, source: Any, data: Mapping[str, Any]) -> None:
        if source == SOURCE_MUTATION:
            self.nodes.mutate(data)
        if source in _REACTION_SOURCES:
            self.clicks.react()
        if source in _MOUSE_SOURCES:
            self.mouse_count += 1
        if source in _POSITION_SOURCES:
            self._positions(stamp, data.get("positions"))
        elif source == SOURCE_MOUSE_INTERACTION:
            if data.get("type") == INTERACTION_CLICK:
                self.clicks.click(stamp, data)
        elif source == SOURCE_SCROLL:
            self.scroll_count += 1
        elif source == SOURCE_INPUT:
            self.keypress_count += 1

    def _positions(self, stamp: int, positions: Any) -> None:
        if not isinstance(positions, list):
            return
        for position in positions:
            if not isinstance(position, Mapping):
                continue
            x, y = finite(position.get("x")), finite(position.get("y"))
            offset = finite(position.get("timeOffset")) or 0.0
            if x is not None and y is not None:
                self.thrash.move(stamp + int(offset), x, y)

    def _navigated(self, stamp: int, href: Any) -> None:
        self.clicks.react()
        if isinstance(href, str) and href:
            self.pages.append((stamp, href[:URL_MAX]))

    def _custom(self, stamp: int, data: Mapping[str, Any]) -> None:
        tag = data.get("tag")
        if not isinstance(tag, str):
            return
        if tag in _NAVIGATION_TAGS:
            self._navigated(stamp, mapping_of(data.get("payload")).get("href"))
        elif tag == _HIDDEN_TAG:
            self.clicks.react()
        elif tag not in _INTERNAL_TAGS:
            self._mark(stamp, Kind.CUSTOM_EVENT, tag or "custom event", {"name": tag})

    def _plugin(self, stamp: int, data: Mapping[str, Any]) -> None:
        payload = mapping_of(data.get("payload"))
        if data.get("plugin") == CONSOLE_PLUGIN:
            self._console(stamp, payload)
        elif data.get("plugin") == NETWORK_PLUGIN:
            requests = payload.get("requests")
            for request in requests if isinstance(requests, list) else ():
                if isinstance(request, Mapping):
                    self._network(stamp, request)

    def _console(self, stamp: int, payload: Mapping[str, Any]) -> None:
        """Count a console call: log/info/debug as log, warn, error (others not)."""
        level = payload.get("level")
        if level in _LOG_LEVELS:
            self.log_count += 1
        elif level == "warn":
            self.warn_count += 1
        elif level == "error":
            self.error_count += 1
            message = _console_message(payload.get("payload")) or "console error"
            self.errors.append((stamp, message))
            self._mark(stamp, Kind.CONSOLE_ERROR, message, {"message": message})

    def _network(self, stamp: int, request: Mapping[str, Any]) -> None:
        """Count one request of the network plugin.

        Every entry counts, the page's own `navigation` entry too (a page served
        with a 404 or 500 is the worst network error there is). A request's time
        is `endTime - startTime` when given: for a navigation `duration` runs to
        the end of the load event, which is page load, not the request.
        """
        self.request_count += 1
        url = text_of(request.get("name"))[:URL_MAX]
        status = _status(request)
        duration = _duration(request)
        if duration is not None and duration > self.slowest_ms:
            self.slowest_ms, self.slowest_url = duration, url
        if status is not None and 400 <= status < 500:
            self.client_error_count += 1
        elif status is not None and 500 <= status < 600:
            self.server_error_count += 1
        method = text_of(request.get("method")).upper()[:16]
        if not _failed(status, method):
            return
        when = _request_time(stamp, request.get("timestamp"))
        label = f"{method or 'GET'} {url_path(url)} {status or 'failed'}"
        self.errors.append((when, label))
        details = {"url": url, "method": method, "status": status}
        self._mark(when, Kind.NETWORK_ERROR, label, details | {"duration_ms": duration})

    def _mark(self, stamp: int, kind: str, label: str, details: dict[str, Any]) -> None:
        self.markers.append(Marker(stamp, self.window_id, kind, cut(label), details))

    def finish(self) -> None:
        self.activity.finish()


def scan_window(window_id: str, events: Iterable[Any]) -> WindowScan:
    scan = WindowScan(window_id)
    for stamp, event in _in_time_order(events):
        scan.feed(stamp, event)
    scan.finish()
    return scan


def _in_time_order(events: Iterable[Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """The timestamped events, by time (stable: equal times keep their order)."""
    timed = []
    for event in events if isinstance(events, Iterable) else ():
        if isinstance(event, Mapping):
            stamp = _stamp(event.get("timestamp"))
            if stamp is not None:
                timed.append((stamp, event))
    timed.sort(key=lambda pair: pair[0])  # linear when already in order
    return timed


def _console_message(args: Any) -> str:
    """A console call's arguments as the console shows them (JSON strings decoded)."""
    if not isinstance(args, list):
        return text_of(args)
    return " ".join(_console_arg(arg) for arg in args[:10])[: LABEL_MAX * 2]


def _console_arg(arg: Any) -> str:
    if not isinstance(arg, str):
        return text_of(arg)
    if arg.startswith('"') and len(arg) <= 4 * LABEL_MAX:
        try:
            decoded = json.loads(arg)
        except ValueError:
            return arg
        return decoded if isinstance(decoded, str) else arg
    return arg


def _status(request: Mapping[str, Any]) -> int | None:
    for key in ("responseStatus", "status"):
        value = request.get(key)
        if is_int(value):
            return int(value)
    return None


def _failed(status: int | None, method: str) -> bool:
    """An error status, or a fetch/XHR (it has a method) that got no response.

    Status 0 alone is not a failure: resource timing reports 0 for every
    cross-origin script or image whose server sends no Timing-Allow-Origin.
    """
    if status is None:
        return False
    return status >= 400 or (status == 0 and bool(method))


def _duration(request: Mapping[str, Any]) -> int | None:
    start, end = finite(request.get("startTime")), finite(request.get("endTime"))
    if start is not None and end is not None and end >= start:
        return round(end - start)
    duration = finite(request.get("duration"))
    return round(duration) if duration is not None and duration >= 0 else None


def _request_time(stamp: int, started: Any) -> int:
    """When a request started: its own timestamp, if it is a sane one."""
    value = finite(started)
    if value is None or abs(value - stamp) > _REQUEST_CLOCK_SLACK_MS:
        return stamp
    return int(value)


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping_of(event.get("data"))


def _stamp(value: Any) -> int | None:
    number = finite(value)
    return int(number) if number is not None else None
