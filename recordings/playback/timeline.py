"""A recording's timeline: what the player needs besides the events themselves.

One document for the whole session: its windows (tabs) and where each window's
events are read from (segments), the markers, comments and analytics events at
their moments, stretches with no data, the person and the environment. The admin's
timeline endpoint answers with it and the offline export inlines it; both hand it
to the same player script (recordings/static/recordings/player.js).

Times are epoch milliseconds throughout; the player counts from `started_ms`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.db.models import Max, Min, Sum
from django.urls import reverse
from django.utils.http import urlencode

from recordings.models import Event, Marker, Person, Recording

# A timeline lists at most this many markers and analytics events each: a recording
# can hold thousands, and the player draws every one.
MAX_MARKERS = 2000
MAX_EVENTS = 2000
# No data at all (no batch in any window) for this long is an inactive stretch. The
# player refines it from the events once loaded (no user input for 5 s, as
# recordings.ingest.window_scan's activity spans).
INACTIVE_GAP_MS = 5000
# The person card shows these properties first, then others up to PERSON_PROPERTIES.
PERSON_KEYS = ("email", "name", "$name", "username", "plan", "$initial_referrer")
PERSON_PROPERTIES = 8

# Given a window id, the URL its events are read from.
SegmentUrl = Callable[[str], str]


def epoch_ms(moment: dt.datetime) -> int:
    """Milliseconds since the epoch.

    >>> epoch_ms(dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC))
    1000
    """
    return int(moment.timestamp() * 1000)


def recording_timeline(
    *,
    recording: Recording,
    segment_url: SegmentUrl,
    segments: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The player's timeline document of `recording` (see the module docstring).

    `segments`: per window id, its segments as the events view serves them
    (playback.segments_timeline); a window without is one segment, `segment_url`.
    """
    windows = _windows(recording, segment_url, segments or {})
    started = epoch_ms(recording.started_at)
    ended = max([epoch_ms(recording.ended_at), *(w["last_ms"] for w in windows)])
    started = min([started, *(w["first_ms"] for w in windows)])
    return {
        "recording": {
            "code": str(recording.code),
            "session_id": recording.session_id,
            "started_ms": started,
            "ended_ms": ended,
            "duration_ms": ended - started,
        },
        "windows": windows,
        "markers": _markers(recording),
        "comments": _comments(recording, started),
        "events": _events(recording),
        "inactive": _inactive(recording, started, ended),
        "person": _person(recording),
        "environment": _environment(recording),
    }


def _windows(
    recording: Recording,
    segment_url: SegmentUrl,
    segments: dict[str, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    rows = (
        recording.chunks.values("window_id")
        .annotate(
            first=Min("first_timestamp"),
            last=Max("last_timestamp"),
            size=Sum("size_bytes"),
        )
        .order_by("first", "window_id")
    )
    windows = []
    for number, row in enumerate(rows, 1):
        first, last = epoch_ms(row["first"]), epoch_ms(row["last"])
        # Without a segment index: one segment, the whole window's events.
        whole = {
            "url": segment_url(row["window_id"]),
            "first_ms": first,
            "last_ms": last,
            "bytes": row["size"],
        }
        windows.append(
            {
                "id": row["window_id"],
                "number": number,
                "first_ms": first,
                "last_ms": last,
                "segments": segments.get(row["window_id"]) or [whole],
            }
        )
    return windows


def _markers(recording: Recording) -> list[dict[str, Any]]:
    # Rows, not model objects: a long recording has thousands
    # (docs/benchmarks/playback.md).
    labels = dict(Marker.Kind.choices)
    rows = recording.markers.in_time_order().values_list(
        "timestamp", "kind", "label", "window_id"
    )
    return [
        {
            "at_ms": epoch_ms(timestamp),
            "kind": kind,
            "kind_label": labels.get(kind, kind),
            "label": label,
            "window_id": window_id,
        }
        for timestamp, kind, label, window_id in rows[:MAX_MARKERS]
    ]


def _comments(recording: Recording, started: int) -> list[dict[str, Any]]:
    # A comment's offset counts from the recording's start, as the player's clock.
    return [
        {
            "at_ms": started + comment.offset_ms,
            "text": comment.text,
            "author": str(comment.author) if comment.author else "someone",
            "window_id": comment.window_id,
        }
        for comment in recording.comments.select_related("author").order_by(
            "offset_ms", "pk"
        )
    ]


def _events(recording: Recording) -> list[dict[str, Any]]:
    rows = Event.objects.filter(
        project_id=recording.project_id, session_id=recording.session_id
    ).order_by("timestamp", "pk")[:MAX_EVENTS]
    return [
        {
            "at_ms": epoch_ms(event.timestamp),
            "name": event.name,
            "window_id": str(event.properties.get("$window_id") or ""),
            "url": str(event.properties.get("$current_url") or ""),
        }
        for event in rows
    ]


def _inactive(recording: Recording, started: int, ended: int) -> list[list[int]]:
    """Stretches with no batch in any window, longer than INACTIVE_GAP_MS."""
    spans = sorted(
        (epoch_ms(first), epoch_ms(last))
        for first, last in recording.chunks.values_list(
            "first_timestamp", "last_timestamp"
        )
    )
    return gaps(spans, started, ended, INACTIVE_GAP_MS)


def gaps(
    spans: list[tuple[int, int]], start: int, end: int, longer_than: int
) -> list[list[int]]:
    """The stretches of [start, end] that no span covers, longer than `longer_than`.

    >>> gaps([(0, 10), (5, 20), (40, 50)], 0, 100, 5)
    [[20, 40], [50, 100]]
    """
    found, reach = [], start
    for first, last in sorted(spans):
        if first - reach > longer_than:
            found.append([reach, first])
        reach = max(reach, last)
    if end - reach > longer_than:
        found.append([reach, end])
    return found


def _person(recording: Recording) -> dict[str, Any] | None:
    if not recording.distinct_id:
        return None
    person = Person.objects.filter(
        project_id=recording.project_id, distinct_id=recording.distinct_id
    ).first()
    properties = person.properties if person else {}
    return {
        "distinct_id": recording.distinct_id,
        "properties": _some_properties(properties),
        "recordings_url": person_recordings_url(recording.distinct_id),
    }


def _some_properties(properties: dict[str, Any]) -> dict[str, str]:
    keys = [k for k in PERSON_KEYS if k in properties]
    keys += [k for k in sorted(properties) if k not in keys]
    return {k: str(properties[k]) for k in keys[:PERSON_PROPERTIES]}


def person_recordings_url(distinct_id: str) -> str:
    """The admin's recording list filtered on this person (the filter language)."""
    document = {
        "version": 1,
        "where": {"term": "distinct_id", "in": [distinct_id]},
    }
    found = json.dumps(document, separators=(",", ":"))
    return (
        reverse("admin:recordings_recording_changelist")
        + "?"
        + urlencode({"filter": found})
    )


def _environment(recording: Recording) -> dict[str, str]:
    viewport = ""
    if recording.viewport_width and recording.viewport_height:
        viewport = f"{recording.viewport_width}×{recording.viewport_height}"
    return {
        "browser": f"{recording.browser} {recording.browser_version}".strip(),
        "os": recording.os,
        "device": recording.device_type,
        "viewport": viewport,
        "country": recording.country,
        "sdk": f"{recording.lib} {recording.lib_version}".strip(),
    }
