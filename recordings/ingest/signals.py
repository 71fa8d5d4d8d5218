"""What happened in a recording: markers for its timeline and counts for its list.

`signals_of(windows, analytics)` reads every window's rrweb events once, in time
order, with bounded look-back, and merges what posthog-js itself reported (its
`$rageclick`, `$dead_click`, `$exception`, `$pageview` and custom analytics
events) so that one occurrence is one marker. The definitions and thresholds:

- rage clicks, dead clicks and mouse thrashing: frustration.py (ClickWatch,
  Thrash);
- U-turns: `_u_turns` (U_TURN_MS); error clicks: `_error_clicks`
  (ERROR_CLICK_MS); active time: `_Activity` and `_active_ms` (ACTIVITY_GAP_MS);
- console and network counts: `_WindowScan._console` and `_WindowScan._network`;
- merging posthog-js's own reports: `_Merge` (SDK_MATCH_MS).

Timestamps are epoch milliseconds as recorded by the browser. Pure: no Django;
nothing here raises on odd JSON (missing fields, wrong types, unknown sources).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from recordings.ingest.frustration import Burst, Click, ClickWatch, Thrash
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

# A page left again within this long, back to the page before it, is a U-turn.
U_TURN_MS = 5000
# A console error, exception or failed request this soon after a click is
# blamed on the click (the click's handler ran and broke).
ERROR_CLICK_MS = 1000
# PostHog's activity segmenter (ACTIVITY_THRESHOLD_MS): input keeps the user
# active until this long after the last input event.
ACTIVITY_GAP_MS = 5000
# A posthog-js `$rageclick`/`$dead_click` this close to one found here, in the
# same window, is the same occurrence (posthog-js stamps a rage click at its
# third click, a dead click at its click).
SDK_MATCH_MS = 2000
LABEL_MAX = 200
URL_MAX = 2048
_TEXT_IN_LABEL = 40

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


class Kind:
    """Marker kinds (stored in a CharField(max_length=20))."""

    CUSTOM_EVENT = "custom_event"
    EXCEPTION = "exception"
    CONSOLE_ERROR = "console_error"
    NETWORK_ERROR = "network_error"
    RAGE_CLICK = "rage_click"
    DEAD_CLICK = "dead_click"
    MOUSE_THRASH = "mouse_thrash"
    U_TURN = "u_turn"
    ERROR_CLICK = "error_click"
    PAGE = "page_change"
    ALL: tuple[str, ...] = (
        CUSTOM_EVENT,
        EXCEPTION,
        CONSOLE_ERROR,
        NETWORK_ERROR,
        RAGE_CLICK,
        DEAD_CLICK,
        MOUSE_THRASH,
        U_TURN,
        ERROR_CLICK,
        PAGE,
    )


@dataclass(frozen=True, slots=True)
class Marker:
    timestamp_ms: int
    window_id: str
    kind: str
    label: str  # short, human, <= LABEL_MAX characters
    details: dict[str, Any]  # JSON-able


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    """A row of the session's analytics events (posthog-js /e/ events)."""

    name: str
    timestamp_ms: int
    window_id: str  # properties["$window_id"] or ""
    properties: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    url: str
    timestamp_ms: int
    window_id: str


@dataclass(frozen=True, slots=True)
class Signals:
    rage_click_count: int
    dead_click_count: int
    mouse_thrash_count: int
    u_turn_count: int
    error_click_count: int
    active_ms: int
    inactive_ms: int
    mouse_activity_count: int
    scroll_count: int
    keypress_count: int
    click_count: int
    console_log_count: int
    console_warn_count: int
    console_error_count: int
    network_request_count: int
    network_4xx_count: int
    network_5xx_count: int
    slowest_request_ms: int
    slowest_request_url: str
    pages: tuple[Page, ...]  # time order; a window's repeats of its URL collapsed
    page_count: int
    first_url: str
    last_url: str
    window_count: int
    markers: tuple[Marker, ...]  # time order
    duration_ms: int = 0  # earliest to latest event, all windows


def signals_of(
    windows: Mapping[str, Sequence[Mapping[str, Any]]],
    analytics: Sequence[AnalyticsEvent] = (),
) -> Signals:
    """windows: window id -> that window's rrweb events in time order (as stored).

    The events are not modified. Windows without a timestamped event are left
    out. Analytics events are placed in their `$window_id`'s window, else in the
    window recording at their time, else in the earliest window.
    """
    scans = [_scan_window(str(wid), events) for wid, events in windows.items()]
    scans = [scan for scan in scans if scan.first_ms is not None]
    placed = _place(analytics, scans)
    by_window: dict[str, list[AnalyticsEvent]] = {}
    for window_id, event in placed:
        by_window.setdefault(window_id, []).append(event)
    markers: list[Marker] = []
    pages: list[Page] = []
    for scan in scans:
        mine = by_window.get(scan.window_id, [])
        markers += _window_markers(scan, mine)
        pages += _pages(scan.window_id, scan.pages, mine)
    markers += _u_turns(pages)
    markers += _Merge(scans).markers([pair for pair in placed if _is_sdk(pair[1])])
    markers += _analytics_markers(placed)
    markers.sort(key=lambda marker: marker.timestamp_ms)
    pages.sort(key=lambda page: page.timestamp_ms)
    return _summary(scans, markers, pages)


def _summary(
    scans: list[_WindowScan], markers: list[Marker], pages: list[Page]
) -> Signals:
    kinds = [marker.kind for marker in markers]
    first = min((s.first_ms for s in scans if s.first_ms is not None), default=0)
    last = max((s.last_ms for s in scans), default=0)
    active = _active_ms(scans)
    slowest = max(scans, key=lambda s: s.slowest_ms, default=None)
    return Signals(
        rage_click_count=kinds.count(Kind.RAGE_CLICK),
        dead_click_count=kinds.count(Kind.DEAD_CLICK),
        mouse_thrash_count=kinds.count(Kind.MOUSE_THRASH),
        u_turn_count=kinds.count(Kind.U_TURN),
        error_click_count=kinds.count(Kind.ERROR_CLICK),
        active_ms=active,
        inactive_ms=max(0, last - first - active),
        mouse_activity_count=sum(s.mouse_count for s in scans),
        scroll_count=sum(s.scroll_count for s in scans),
        keypress_count=sum(s.keypress_count for s in scans),
        click_count=sum(len(s.clicks.clicks) for s in scans),
        console_log_count=sum(s.log_count for s in scans),
        console_warn_count=sum(s.warn_count for s in scans),
        console_error_count=sum(s.error_count for s in scans),
        network_request_count=sum(s.request_count for s in scans),
        network_4xx_count=sum(s.client_error_count for s in scans),
        network_5xx_count=sum(s.server_error_count for s in scans),
        slowest_request_ms=slowest.slowest_ms if slowest else 0,
        slowest_request_url=slowest.slowest_url if slowest else "",
        pages=tuple(pages),
        page_count=len(pages),
        first_url=pages[0].url if pages else "",
        last_url=pages[-1].url if pages else "",
        window_count=len(scans),
        markers=tuple(markers),
        duration_ms=max(0, last - first),
    )


# -- one window's events ------------------------------------------------------


@dataclass(slots=True)
class _Activity:
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
class _WindowScan:
    window_id: str
    nodes: NodeMap = field(default_factory=NodeMap)
    clicks: ClickWatch = field(init=False)
    thrash: Thrash = field(default_factory=Thrash)
    activity: _Activity = field(default_factory=_Activity)
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
            x, y = _finite(position.get("x")), _finite(position.get("y"))
            offset = _finite(position.get("timeOffset")) or 0.0
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
            self._navigated(stamp, _mapping(data.get("payload")).get("href"))
        elif tag == _HIDDEN_TAG:
            self.clicks.react()
        elif tag not in _INTERNAL_TAGS:
            self._mark(stamp, Kind.CUSTOM_EVENT, tag or "custom event", {"name": tag})

    def _plugin(self, stamp: int, data: Mapping[str, Any]) -> None:
        payload = _mapping(data.get("payload"))
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
        url = _text(request.get("name"))[:URL_MAX]
        status = _status(request)
        duration = _duration(request)
        if duration is not None and duration > self.slowest_ms:
            self.slowest_ms, self.slowest_url = duration, url
        if status is not None and 400 <= status < 500:
            self.client_error_count += 1
        elif status is not None and 500 <= status < 600:
            self.server_error_count += 1
        method = _text(request.get("method")).upper()[:16]
        if not _failed(status, method):
            return
        when = _request_time(stamp, request.get("timestamp"))
        label = f"{method or 'GET'} {_path(url)} {status or 'failed'}"
        self.errors.append((when, label))
        details = {"url": url, "method": method, "status": status}
        self._mark(when, Kind.NETWORK_ERROR, label, details | {"duration_ms": duration})

    def _mark(self, stamp: int, kind: str, label: str, details: dict[str, Any]) -> None:
        self.markers.append(Marker(stamp, self.window_id, kind, _cut(label), details))

    def finish(self) -> None:
        self.activity.finish()


def _scan_window(window_id: str, events: Iterable[Any]) -> _WindowScan:
    scan = _WindowScan(window_id)
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


def _window_markers(scan: _WindowScan, analytics: list[AnalyticsEvent]) -> list[Marker]:
    """The markers of one window that need nothing from other windows."""
    exceptions = [
        _exception(scan.window_id, e) for e in analytics if _is(e, "$exception")
    ]
    errors = scan.errors + [(m.timestamp_ms, m.label) for m in exceptions]
    thrash = [
        Marker(
            episode.start_ms,
            scan.window_id,
            Kind.MOUSE_THRASH,
            "Mouse thrashing",
            {"turns": episode.turns},
        )
        for episode in scan.thrash.episodes
    ]
    clicks = _error_clicks(scan.window_id, scan.clicks.clicks, errors)
    return scan.markers + exceptions + thrash + clicks


# -- derived: error clicks, pages, U-turns, activity --------------------------


def _error_clicks(
    window_id: str, clicks: list[Click], errors: list[tuple[int, str]]
) -> list[Marker]:
    """Error click: a click followed within ERROR_CLICK_MS by an error.

    The error is a console error (an uncaught exception shows as one starting
    "Uncaught"), a posthog-js `$exception`, or a failed request (status >= 400,
    or a fetch/XHR that got no response). The marker is at the click, once per
    click, naming its first error; an error is blamed on the latest click
    before it.
    """
    clicks = sorted(clicks, key=lambda click: click.timestamp_ms)
    stamps = [click.timestamp_ms for click in clicks]
    blamed: dict[int, str] = {}
    for when, label in sorted(errors, key=lambda error: error[0]):
        index = bisect.bisect_right(stamps, when) - 1
        if index >= 0 and when - stamps[index] <= ERROR_CLICK_MS:
            blamed.setdefault(index, label)
    return [
        Marker(
            clicks[index].timestamp_ms,
            window_id,
            Kind.ERROR_CLICK,
            _cut(
                f"Error after click on {_element_label(clicks[index].element)}: {label}"
            ),
            {"element": clicks[index].element, "error": label},
        )
        for index, label in sorted(blamed.items())
    ]


def _pages(
    window_id: str, visits: list[tuple[int, str]], analytics: list[AnalyticsEvent]
) -> list[Page]:
    """A window's pages in time order, a visit to the URL it is on dropped.

    Full navigations come from Meta events, SPA ones from posthog-js's
    `$pageview`/`$url_changed` custom events and `$pageview` analytics events
    (`$current_url`); the same page seen from two of them, or re-snapshotted by
    posthog-js every 5 minutes, is one visit.
    """
    visits = visits + [
        (event.timestamp_ms, url[:URL_MAX])
        for event in analytics
        if _is(event, "$pageview")
        and isinstance(url := event.properties.get("$current_url"), str)
        and url
    ]
    visits.sort(key=lambda visit: visit[0])
    pages: list[Page] = []
    for stamp, url in visits:
        if not pages or pages[-1].url != url:
            pages.append(Page(url, stamp, window_id))
    return pages


def _u_turns(pages: list[Page]) -> list[Marker]:
    """U-turn: a page left within U_TURN_MS of arriving, back to the page before.

    A -> B -> A in one window with B shown less than U_TURN_MS, whether the
    navigations were full page loads or SPA route changes; the marker is at the
    return to A. Also makes a PAGE marker per page.
    """
    markers = [
        Marker(
            page.timestamp_ms,
            page.window_id,
            Kind.PAGE,
            _cut(page.url),
            {"url": page.url},
        )
        for page in pages
    ]
    by_window: dict[str, list[Page]] = {}
    for page in pages:
        by_window.setdefault(page.window_id, []).append(page)
    for visits in by_window.values():
        for before, page, after in zip(visits, visits[1:], visits[2:], strict=False):
            shown = after.timestamp_ms - page.timestamp_ms
            if after.url == before.url and shown < U_TURN_MS:
                label = _cut(
                    f"U-turn: back from {_path(page.url)} after {shown / 1000:.1f} s"
                )
                details = {"url": page.url, "back_to": after.url, "shown_ms": shown}
                markers.append(
                    Marker(
                        after.timestamp_ms, after.window_id, Kind.U_TURN, label, details
                    )
                )
    return markers


def _active_ms(scans: list[_WindowScan]) -> int:
    """Active time of all windows together: overlapping spans count once."""
    spans = sorted(span for scan in scans for span in scan.activity.spans)
    total, reach = 0, None
    for start, end in spans:
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


# -- posthog-js's analytics events --------------------------------------------


def _place(
    analytics: Sequence[AnalyticsEvent], scans: list[_WindowScan]
) -> list[tuple[str, AnalyticsEvent]]:
    """Each analytics event with the window it belongs to."""
    known = {scan.window_id for scan in scans}
    spans = sorted((scan.first_ms or 0, scan.last_ms, scan.window_id) for scan in scans)
    placed = []
    for event in analytics:
        if not isinstance(event, AnalyticsEvent) or not _is_int(event.timestamp_ms):
            continue
        window_id = event.window_id if isinstance(event.window_id, str) else ""
        if window_id not in known:
            during = [
                wid for first, last, wid in spans if first <= event.timestamp_ms <= last
            ]
            window_id = during[0] if during else (spans[0][2] if spans else window_id)
        placed.append((window_id, event))
    return placed


def _is_sdk(event: AnalyticsEvent) -> bool:
    return _is(event, "$rageclick") or _is(event, "$dead_click")


def _is(event: AnalyticsEvent, name: str) -> bool:
    return event.name == name and isinstance(event.properties, Mapping)


def _analytics_markers(placed: list[tuple[str, AnalyticsEvent]]) -> list[Marker]:
    """Custom analytics events (names without `$`) as CUSTOM_EVENT markers."""
    return [
        Marker(
            event.timestamp_ms,
            window_id,
            Kind.CUSTOM_EVENT,
            _cut(event.name),
            {"name": event.name},
        )
        for window_id, event in placed
        if isinstance(event.name, str) and event.name and not event.name.startswith("$")
    ]


def _exception(window_id: str, event: AnalyticsEvent) -> Marker:
    """An EXCEPTION marker from `$exception` (label: `type: value`)."""
    props = event.properties
    listed = props.get("$exception_list")
    first = _mapping(listed[0]) if isinstance(listed, list) and listed else {}
    kind = _text(first.get("type")) or _text(props.get("$exception_type")) or "Error"
    value = _text(first.get("value")) or _text(props.get("$exception_message"))
    mechanism = _mapping(first.get("mechanism"))
    handled = mechanism.get("handled")
    details = {
        "type": kind[:LABEL_MAX],
        "message": value[:LABEL_MAX],
        "handled": handled if isinstance(handled, bool) else None,
        "url": _text(props.get("$current_url"))[:URL_MAX],
    }
    label = _cut(f"{kind}: {value}" if value else kind)
    return Marker(event.timestamp_ms, window_id, Kind.EXCEPTION, label, details)


@dataclass(slots=True)
class _Found:
    start_ms: int
    end_ms: int
    window_id: str
    element: dict[str, Any]
    clicks: int
    source: str = "replay"


class _Merge:
    """Rage and dead clicks found here, merged with posthog-js's own reports.

    A `$rageclick` within SDK_MATCH_MS of a rage click found here (its span,
    first to last click) in the same window is that rage click; a `$dead_click`
    (at `$dead_click_event_timestamp`) within SDK_MATCH_MS of a dead click, or
    of a rage click (posthog-js reports the first click of a burst as dead too),
    is that occurrence. The matched ones are marked `source: "both"`; the
    others become markers of their own (`source: "posthog-js"`) and count.
    """

    def __init__(self, scans: list[_WindowScan]) -> None:
        self.rage: dict[str, list[_Found]] = {}
        self.dead: dict[str, list[_Found]] = {}
        for scan in scans:
            self.rage[scan.window_id] = [
                _from_burst(scan.window_id, b) for b in scan.clicks.rage
            ]
            self.dead[scan.window_id] = [
                _from_click(scan.window_id, c) for c in scan.clicks.dead
            ]

    def markers(self, placed: list[tuple[str, AnalyticsEvent]]) -> list[Marker]:
        extra: list[tuple[str, _Found]] = []
        for window_id, event in placed:
            stamp = _sdk_time(event)
            rage = self.rage.get(window_id, [])
            if event.name == "$rageclick":
                found = _near(rage, stamp)
            else:
                found = _near(self.dead.get(window_id, []), stamp) or _near(rage, stamp)
            if found is not None:
                found.source = "both"
            else:
                kind = (
                    Kind.RAGE_CLICK if event.name == "$rageclick" else Kind.DEAD_CLICK
                )
                sdk = _Found(
                    stamp, stamp, window_id, _sdk_element(event), 0, "posthog-js"
                )
                extra.append((kind, sdk))
        found_all = [(Kind.RAGE_CLICK, f) for fs in self.rage.values() for f in fs]
        found_all += [(Kind.DEAD_CLICK, f) for fs in self.dead.values() for f in fs]
        return [_click_marker(kind, found) for kind, found in found_all + extra]


def _from_burst(window_id: str, burst: Burst) -> _Found:
    return _Found(burst.first_ms, burst.last_ms, window_id, burst.element, burst.count)


def _from_click(window_id: str, click: Click) -> _Found:
    return _Found(click.timestamp_ms, click.timestamp_ms, window_id, click.element, 1)


def _near(found: list[_Found], stamp: int) -> _Found | None:
    """The first occurrence (sorted, not overlapping) within SDK_MATCH_MS of `stamp`."""
    ends = [item.end_ms for item in found]
    index = bisect.bisect_left(ends, stamp - SDK_MATCH_MS)
    if index < len(found) and found[index].start_ms - SDK_MATCH_MS <= stamp:
        return found[index]
    return None


def _click_marker(kind: str, found: _Found) -> Marker:
    what = _element_label(found.element)
    if kind == Kind.RAGE_CLICK:
        times = f" ({found.clicks}×)" if found.clicks else ""
        label = f"Rage click{times} on {what}"
    else:
        label = f"Dead click on {what}"
    details: dict[str, Any] = {"element": found.element, "source": found.source}
    if kind == Kind.RAGE_CLICK and found.clicks:
        details["clicks"] = found.clicks
    return Marker(found.start_ms, found.window_id, kind, _cut(label), details)


def _sdk_time(event: AnalyticsEvent) -> int:
    clicked = event.properties.get("$dead_click_event_timestamp")
    if event.name == "$dead_click" and _is_int(clicked):
        return int(clicked)
    return event.timestamp_ms


def _sdk_element(event: AnalyticsEvent) -> dict[str, Any]:
    """The clicked element from posthog-js's `$elements` (first is the target)."""
    elements = event.properties.get("$elements")
    first = _mapping(elements[0]) if isinstance(elements, list) and elements else {}
    classes = first.get("classes") or first.get("attr__class") or []
    if isinstance(classes, str):
        classes = classes.split()
    return {
        "node_id": None,
        "tag": _text(first.get("tag_name"))[:50],
        "id": _text(first.get("attr__id"))[:100],
        "classes": [c for c in classes if isinstance(c, str)][:20]
        if isinstance(classes, list)
        else [],
        "text": _text(first.get("$el_text"))[:100],
    }


# -- small readers --------------------------------------------------------------


def _element_label(element: Mapping[str, Any]) -> str:
    """`button#pay "Pay now"`, as much of it as is known."""
    label = _text(element.get("tag")) or "element"
    if element_id := _text(element.get("id")):
        label += f"#{element_id}"
    if text := _text(element.get("text")):
        label += f' "{text[:_TEXT_IN_LABEL]}"'
    return label


def _console_message(args: Any) -> str:
    """A console call's arguments as the console shows them (JSON strings decoded)."""
    if not isinstance(args, list):
        return _text(args)
    return " ".join(_console_arg(arg) for arg in args[:10])[: LABEL_MAX * 2]


def _console_arg(arg: Any) -> str:
    if not isinstance(arg, str):
        return _text(arg)
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
        if _is_int(value):
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
    start, end = _finite(request.get("startTime")), _finite(request.get("endTime"))
    if start is not None and end is not None and end >= start:
        return round(end - start)
    duration = _finite(request.get("duration"))
    return round(duration) if duration is not None and duration >= 0 else None


def _request_time(stamp: int, started: Any) -> int:
    """When a request started: its own timestamp, if it is a sane one."""
    value = _finite(started)
    if value is None or abs(value - stamp) > 10 * 60_000:
        return stamp
    return int(value)


def _path(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return parts.path or url


def _cut(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, Mapping | list):
        return ""
    return str(value)


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(event.get("data"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _stamp(value: Any) -> int | None:
    number = _finite(value)
    return int(number) if number is not None else None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
