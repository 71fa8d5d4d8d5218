"""Parse posthog-js analytics requests (/e/, /i/v0/e/) into plain event records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from recordings.ingest.parse import IngestError

_MAX_ID = 200
_MAX_NAME = 400


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    uuid: str
    name: str
    token: str
    distinct_id: str
    session_id: str
    timestamp: dt.datetime
    properties: dict[str, Any]
    person_set: dict[str, Any]  # `$set`: person properties to overwrite
    person_set_once: dict[str, Any]  # `$set_once`: only where not set yet
    anon_distinct_id: str  # `$identify`: the anonymous id this person had before


def parse_event_request(payload: Any) -> list[AnalyticsEvent]:
    """The decoded JSON of an analytics request -> its events.

    posthog-js sends `{"api_key", "batch": [...], "sent_at"}`; a single event object
    or a bare list is accepted too, as older SDKs sent them.
    """
    api_key = ""
    items: Any = payload
    if isinstance(payload, dict):
        api_key = _text(payload.get("api_key") or payload.get("token"))
        items = payload.get("batch", [payload])
    if not isinstance(items, list) or not items:
        raise IngestError("not_a_batch", "expected a non-empty list of events")
    return [_event(item, api_key) for item in items]


def _event(item: Any, api_key: str) -> AnalyticsEvent:
    if not isinstance(item, dict):
        raise IngestError("invalid_event", "every event must be a JSON object")
    properties = item.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    name = _required(item, "event", _MAX_NAME)
    return AnalyticsEvent(
        uuid=_required(item, "uuid", 100),
        name=name,
        token=api_key or _text(properties.get("token") or item.get("api_key")),
        distinct_id=_text(properties.get("distinct_id") or item.get("distinct_id")),
        session_id=_text(properties.get("$session_id")),
        timestamp=_timestamp(item.get("timestamp")),
        properties=properties,
        person_set=_person_props(item, properties, "$set"),
        person_set_once=_person_props(item, properties, "$set_once"),
        anon_distinct_id=_text(properties.get("$anon_distinct_id")),
    )


def _person_props(item: dict[str, Any], properties: dict[str, Any], key: str) -> Any:
    # posthog-js sends `$set` at the event's top level for $identify, and inside
    # properties for $set events and capture(..., {$set}).
    value = item.get(key, properties.get(key))
    return value if isinstance(value, dict) else {}


def _required(item: dict[str, Any], field: str, limit: int) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise IngestError(
            "invalid_event",
            f"event field {field!r} must be a string of 1-{limit} chars",
        )
    return value


def _text(value: Any) -> str:
    return str(value)[:_MAX_ID] if value not in (None, "") else ""


def _timestamp(value: Any) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(value, str):
        raise IngestError("invalid_event", "event timestamp must be an ISO 8601 string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise IngestError("invalid_event", f"bad event timestamp {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
