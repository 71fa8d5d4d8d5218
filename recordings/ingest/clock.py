"""Device clocks that are wrong, and event times that are typos.

No Django here. rrweb stamps every event with the device's clock. A device whose
clock is years off (a reset battery, a test device) would otherwise have every batch
refused, and one event with a typo'd time would stretch a 10-second recording over
months. The server knows when it received a batch, and posthog-js says when it sent
it (`sent_at`), so the skew between the two clocks is measurable, the way analytics
pipelines correct event times (receive time minus send time).

What is corrected, and why only that:

* **skew:** `received - sent_at`. It includes the network's delay, which differs a
  little from batch to batch; shifting every batch by its own delay would reorder
  events across batches (a mutation before the node it changes). So a skew under
  SKEW_TOLERANCE_MS is left alone, and a session keeps the skew it was first given
  for as long as later measurements agree with it within that tolerance: its events
  all move by the same amount and keep the relative timing playback needs.
* **no `sent_at`** (a plain rrweb client that does not send it): only a batch whose
  times cannot be right (before 2000, or more than a day after it was received) is
  moved, so that its last event is when it arrived.
* **outliers:** an event more than OUTLIER_MS away from its batch's median time is a
  typo, not a moment of the recording; it takes the time of the event before it
  (or the median, when it is first), so it keeps its place and stretches nothing.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = [
    "OUTLIER_MS",
    "iso_to_ms",
    "retime_outliers",
    "session_skew",
    "shift",
]

# A batch covers seconds to minutes of a session (posthog-js flushes every few
# seconds, rrweb clients every few); an event an hour off its batch is a typo.
OUTLIER_MS = 60 * 60 * 1000
_YEAR_2000_MS = 946_684_800_000
_DAY_MS = 24 * 60 * 60 * 1000
# Python's datetime ends at year 9999.
_MAX_MS = 253_402_300_799_999


def iso_to_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 time ("2026-11-22T09:44:21.595Z") or of a
    number of milliseconds; None for anything else, or a time Python cannot hold."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if 0 <= value <= _MAX_MS else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        ms = int(parsed.timestamp() * 1000)
    except (ValueError, OverflowError):
        return None  # not a time, or one that overflows once its offset is applied
    return ms if 0 <= ms <= _MAX_MS else None


def session_skew(
    *,
    sent_at_ms: int | None,
    received_ms: int,
    times: Sequence[int | float],
    previous: int | None,
    tolerance_ms: int,
) -> int:
    """Milliseconds to add to a batch's event times (0 for a clock that is right).

    `times` are the batch's event times as sent; `previous` is the skew the session
    was given before, if any; a skew under `tolerance_ms` is network delay or a
    clock off by little, not worth moving events for.
    """
    if sent_at_ms is None:
        return _skew_without_sent_at(times, received_ms, previous)
    measured = received_ms - sent_at_ms
    if previous is not None and abs(measured - previous) < tolerance_ms:
        return previous
    return measured if abs(measured) >= tolerance_ms else 0


def _skew_without_sent_at(
    times: Sequence[int | float], received_ms: int, previous: int | None
) -> int:
    if not times:
        return previous or 0
    earliest, latest = min(times), max(times)
    if previous is not None and all(
        _plausible(ms + previous, received_ms) for ms in (earliest, latest)
    ):
        return previous
    if _plausible(earliest, received_ms) and _plausible(latest, received_ms):
        return 0
    return int(received_ms - latest)


def _plausible(ms: int | float, received_ms: int) -> bool:
    return _YEAR_2000_MS <= ms <= received_ms + _DAY_MS


def shift(events: Sequence[dict[str, Any]], skew_ms: int) -> None:
    """Move every event's time by `skew_ms`, in place."""
    if not skew_ms:
        return
    for event in events:
        event["timestamp"] = event["timestamp"] + skew_ms


def retime_outliers(events: Sequence[dict[str, Any]]) -> int:
    """Give events far from their batch's median time their neighbour's time, in
    place; returns how many were moved."""
    if len(events) < 3:
        return 0  # no majority to tell the typo from the rest
    times = [event["timestamp"] for event in events]
    if max(times) - min(times) <= OUTLIER_MS:
        return 0  # nothing can be that far from the median: the usual batch, O(n)
    median = statistics.median_low(times)
    moved = 0
    previous = median
    for event in events:
        if abs(event["timestamp"] - median) > OUTLIER_MS:
            event["timestamp"] = previous
            moved += 1
        previous = event["timestamp"]
    return moved
