"""What happened in a recording: markers for its timeline and counts for its list.

`signals_of(windows, analytics)` reads every window's rrweb events once, in time
order, with bounded look-back (window_scan.py), and merges what posthog-js itself
reported (its `$rageclick`, `$dead_click`, `$exception`, `$pageview` and custom
analytics events) so that one occurrence is one marker. The definitions, each
with its thresholds as module constants:

- rage clicks, dead clicks: frustration.ClickWatch; mouse thrashing:
  frustration.Thrash;
- U-turns: `_u_turns` (U_TURN_MS); error clicks: `_error_clicks`
  (ERROR_CLICK_MS); active time: window_scan.Activity and `_active_ms`;
- console and network counts: window_scan.WindowScan `_console`, `_network`;
- merging posthog-js's own reports: `_Merge` (SDK_MATCH_MS).

Timestamps are epoch milliseconds as recorded by the browser. Pure: no Django;
nothing here raises on odd JSON (missing fields, wrong types, unknown sources).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recordings.ingest.frustration import Burst, Click
from recordings.ingest.markers import (
    LABEL_MAX,
    URL_MAX,
    AnalyticsEvent,
    Kind,
    Marker,
    Page,
    cut,
    element_label,
    is_int,
    mapping_of,
    text_of,
    url_path,
)
from recordings.ingest.window_scan import WindowScan, scan_window

__all__ = [
    "AnalyticsEvent",
    "Kind",
    "Marker",
    "Page",
    "Signals",
    "signals_of",
]

# A page left again within this long, back to the page before it, is a U-turn.
U_TURN_MS = 5000
# A console error, exception or failed request this soon after a click is
# blamed on the click (the click's handler ran and broke).
ERROR_CLICK_MS = 1000
# A posthog-js `$rageclick`/`$dead_click` this close to one found here, in the
# same window, is the same occurrence (posthog-js stamps a rage click at its
# third click, a dead click at its click).
SDK_MATCH_MS = 2000


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
    scans = [scan_window(str(wid), events) for wid, events in windows.items()]
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
    scans: list[WindowScan], markers: list[Marker], pages: list[Page]
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


def _window_markers(scan: WindowScan, analytics: list[AnalyticsEvent]) -> list[Marker]:
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
            cut(
                f"Error after click on {element_label(clicks[index].element)}: {label}"
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
            cut(page.url),
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
                label = cut(
                    f"U-turn: back from {url_path(page.url)} after {shown / 1000:.1f} s"
                )
                details = {"url": page.url, "back_to": after.url, "shown_ms": shown}
                markers.append(
                    Marker(
                        after.timestamp_ms, after.window_id, Kind.U_TURN, label, details
                    )
                )
    return markers


def _active_ms(scans: list[WindowScan]) -> int:
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
    analytics: Sequence[AnalyticsEvent], scans: list[WindowScan]
) -> list[tuple[str, AnalyticsEvent]]:
    """Each analytics event with the window it belongs to."""
    known = {scan.window_id for scan in scans}
    spans = sorted((scan.first_ms or 0, scan.last_ms, scan.window_id) for scan in scans)
    placed = []
    for event in analytics:
        if not isinstance(event, AnalyticsEvent) or not is_int(event.timestamp_ms):
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
            cut(event.name),
            {"name": event.name},
        )
        for window_id, event in placed
        if isinstance(event.name, str) and event.name and not event.name.startswith("$")
    ]


def _exception(window_id: str, event: AnalyticsEvent) -> Marker:
    """An EXCEPTION marker from `$exception` (label: `type: value`)."""
    props = event.properties
    listed = props.get("$exception_list")
    first = mapping_of(listed[0]) if isinstance(listed, list) and listed else {}
    kind = (
        text_of(first.get("type")) or text_of(props.get("$exception_type")) or "Error"
    )
    value = text_of(first.get("value")) or text_of(props.get("$exception_message"))
    mechanism = mapping_of(first.get("mechanism"))
    handled = mechanism.get("handled")
    details = {
        "type": kind[:LABEL_MAX],
        "message": value[:LABEL_MAX],
        "handled": handled if isinstance(handled, bool) else None,
        "url": text_of(props.get("$current_url"))[:URL_MAX],
    }
    label = cut(f"{kind}: {value}" if value else kind)
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

    def __init__(self, scans: list[WindowScan]) -> None:
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
    what = element_label(found.element)
    if kind == Kind.RAGE_CLICK:
        times = f" ({found.clicks}×)" if found.clicks else ""
        label = f"Rage click{times} on {what}"
    else:
        label = f"Dead click on {what}"
    details: dict[str, Any] = {"element": found.element, "source": found.source}
    if kind == Kind.RAGE_CLICK and found.clicks:
        details["clicks"] = found.clicks
    return Marker(found.start_ms, found.window_id, kind, cut(label), details)


def _sdk_time(event: AnalyticsEvent) -> int:
    clicked = event.properties.get("$dead_click_event_timestamp")
    if event.name == "$dead_click" and is_int(clicked):
        return int(clicked)
    return event.timestamp_ms


def _sdk_element(event: AnalyticsEvent) -> dict[str, Any]:
    """The clicked element from posthog-js's `$elements` (first is the target)."""
    elements = event.properties.get("$elements")
    first = mapping_of(elements[0]) if isinstance(elements, list) and elements else {}
    classes = first.get("classes") or first.get("attr__class") or []
    if isinstance(classes, str):
        classes = classes.split()
    return {
        "node_id": None,
        "tag": text_of(first.get("tag_name"))[:50],
        "id": text_of(first.get("attr__id"))[:100],
        "classes": [c for c in classes if isinstance(c, str)][:20]
        if isinstance(classes, list)
        else [],
        "text": text_of(first.get("$el_text"))[:100],
    }
