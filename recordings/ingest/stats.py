"""Per-recording counters computed from rrweb events, for list columns and filters.

Timestamps within one recording are not monotonic (wire-protocol §0.10: back-dated
`$session_ending`, re-stamped idle events, rotations), so "first" and "last" here
always mean earliest and latest, never arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recordings.ingest.rrweb import (
    CONSOLE_PLUGIN,
    FULL_SNAPSHOT,
    INCREMENTAL,
    INTERACTION_CLICK,
    META,
    PLUGIN,
    SOURCE_INPUT,
    SOURCE_MOUSE_INTERACTION,
)


@dataclass(frozen=True, slots=True)
class EventStats:
    event_count: int
    click_count: int
    keypress_count: int
    console_error_count: int
    first_url: str
    has_full_snapshot: bool
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None


def summarize(events: Iterable[Mapping[str, Any]]) -> EventStats:
    """Count what the admin shows about a batch of rrweb events."""
    items = tuple(events)
    stamps = [ts for ts in map(_timestamp_ms, items) if ts is not None]
    hrefs = _meta_hrefs_by_time(items)
    return EventStats(
        event_count=len(items),
        click_count=sum(map(_is_click, items)),
        keypress_count=sum(map(_is_input, items)),
        console_error_count=sum(map(_is_console_error, items)),
        first_url=hrefs[0] if hrefs else "",
        has_full_snapshot=any(_event_type(e) == FULL_SNAPSHOT for e in items),
        first_timestamp_ms=min(stamps, default=None),
        last_timestamp_ms=max(stamps, default=None),
    )


def _meta_hrefs_by_time(items: tuple[Mapping[str, Any], ...]) -> list[str]:
    metas = [e for e in items if _event_type(e) == META and _href(e)]
    # sorted() is stable: Metas with equal timestamps keep their arrival order.
    metas.sort(key=_time_key)
    return [_href(e) for e in metas]


def _time_key(event: Mapping[str, Any]) -> tuple[bool, int]:
    stamp = _timestamp_ms(event)
    return (stamp is None, stamp or 0)


def _href(event: Mapping[str, Any]) -> str:
    href = _data(event).get("href")
    return href if isinstance(href, str) else ""


def _is_click(event: Mapping[str, Any]) -> bool:
    data = _data(event)
    return (
        _is_incremental(event, SOURCE_MOUSE_INTERACTION)
        and data.get("type") == INTERACTION_CLICK
    )


def _is_input(event: Mapping[str, Any]) -> bool:
    return _is_incremental(event, SOURCE_INPUT)


def _is_incremental(event: Mapping[str, Any], source: int) -> bool:
    return _event_type(event) == INCREMENTAL and _data(event).get("source") == source


def _is_console_error(event: Mapping[str, Any]) -> bool:
    data = _data(event)
    if _event_type(event) != PLUGIN or data.get("plugin") != CONSOLE_PLUGIN:
        return False
    payload = data.get("payload")
    return isinstance(payload, Mapping) and payload.get("level") == "error"


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}


def _event_type(event: Mapping[str, Any]) -> int | None:
    value = event.get("type")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _timestamp_ms(event: Mapping[str, Any]) -> int | None:
    value = event.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # NaN/inf cannot come out of JSON, but would make int() raise.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)
