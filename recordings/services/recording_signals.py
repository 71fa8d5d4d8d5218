"""What happened in a recording: its signals and markers, computed on the server.

The pure work is recordings/ingest/signal_scan.py and environment.py; this reads a
recording's windows in order (live rows or compacted blobs) and its session's
analytics events, and stores the result: the recording's signal columns, and its
markers, replaced whole. Compaction calls it when a recording goes idle, a beat
sweeper every few minutes for recordings still live, `manage.py
recompute_signals` for the rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils.timezone import now

from recordings.ingest import storable
from recordings.ingest.environment import Environment, environment_of
from recordings.ingest.flags import feature_flags_of
from recordings.ingest.signal_scan import (
    AnalyticsEvent,
    Signals,
    signals_of,
)
from recordings.ingest.signal_scan import (
    Marker as Found,
)
from recordings.models import Event, Marker, Recording
from recordings.models.recording import SIGNAL_COLUMNS
from recordings.services.storage import recording_events, recording_lock

logger = logging.getLogger(__name__)

# Markers are written this many rows a statement.
_MARKERS_PER_INSERT = 500


def recording_signals_update(*, recording: Recording) -> Signals | None:
    """Compute the recording's signals and markers now and store them.

    Reads every window's events (a storage failure raises StorageError, and
    nothing is changed); None when the recording was deleted meanwhile. Counters
    capture folds as batches arrive (clicks, keypresses, console errors) are left
    to capture: overwriting them could lose a batch committed meanwhile.
    """
    started = now()
    windows = {
        window_id: recording_events(recording=recording, window_id=window_id)
        for window_id in recording.window_ids()
    }
    analytics = list(_analytics(recording))
    found = signals_of(windows, analytics)
    environment = environment_of(
        analytics=analytics, user_agent=recording.user_agent, windows=windows
    )
    with transaction.atomic():
        locked = recording_lock(recording=recording)
        if locked is None:
            return None
        columns = _columns(found, environment) | {
            "signals_at": started,
            "feature_flags": feature_flags_of(event.properties for event in analytics),
        }
        Recording.objects.filter(pk=locked.pk).update(**columns)
        locked.markers.all().delete()
        markers = [_marker(locked, marker) for marker in found.markers]
        Marker.objects.bulk_create(markers, batch_size=_MARKERS_PER_INSERT)
    return found


def recordings_signals_behind(
    *, now: dt.datetime, refresh_minutes: int, limit: int = 1000
) -> list[int]:
    """Ids of live recordings with data newer than their signals, whose signals
    were last computed at least `refresh_minutes` ago (or never)."""
    due = now - dt.timedelta(minutes=refresh_minutes)
    behind = Q(signals_at__isnull=True) | (
        Q(signals_at__lt=F("last_batch_at")) & Q(signals_at__lt=due)
    )
    live = Recording.objects.filter(behind, compacted=False).order_by("last_batch_at")
    return list(live.values_list("pk", flat=True)[:limit])


def _analytics(recording: Recording) -> Iterator[AnalyticsEvent]:
    events = Event.objects.filter(
        project_id=recording.project_id, session_id=recording.session_id
    ).order_by("timestamp")
    for name, timestamp, properties in events.values_list(
        "name", "timestamp", "properties"
    ).iterator(chunk_size=500):
        props = properties if isinstance(properties, dict) else {}
        window = props.get("$window_id")
        yield AnalyticsEvent(
            name=name,
            timestamp_ms=int(timestamp.timestamp() * 1000),
            window_id=window if isinstance(window, str) else "",
            properties=props,
        )


def _columns(found: Signals, environment: Environment) -> dict[str, Any]:
    columns: dict[str, Any] = {name: getattr(found, name) for name in SIGNAL_COLUMNS}
    columns |= {
        "slowest_request_url": _url(found.slowest_request_url),
        "last_url": _url(found.last_url),
        "urls": [
            dataclasses.asdict(page) | {"url": _url(page.url)} for page in found.pages
        ],
        **dataclasses.asdict(environment),
    }
    if found.first_url:
        columns["first_url"] = _url(found.first_url)
    return columns


def _url(url: str) -> str:
    return storable.clean_text(url[: storable.URL_MAX])


def _marker(recording: Recording, found: Found) -> Marker:
    timestamp = dt.datetime.fromtimestamp(found.timestamp_ms / 1000, tz=dt.UTC)
    offset = timestamp - recording.started_at
    details = dict(found.details)
    storable.clean_json(details)  # page text may hold NULs: none may reach jsonb
    return Marker(
        recording=recording,
        kind=found.kind,
        timestamp=timestamp,
        offset_ms=max(int(offset.total_seconds() * 1000), 0),
        window_id=found.window_id[:200],
        label=storable.clean_text(found.label[:200]),
        details=details,
    )
