"""Parse posthog-js analytics requests (/e/, /i/v0/e/) into plain event records.

What comes out fits the database (storable.py): ids within their columns and free
of control characters (or the request is refused, naming the field), every NUL in
the name, properties and `$set` replaced, and no event nested past MAX_DEPTH.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from recordings.ingest import storable
from recordings.ingest.parse import IngestError

_MAX_TOKEN = 200
_SESSION_MAX = storable.SESSION_ID_MAX
_ANON_MAX = storable.DISTINCT_ID_MAX
# As for the ids of recordings (parse.py): an id with control characters is not a
# real id, and NUL alone breaks PostgreSQL text.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


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
        api_key = _token(payload.get("api_key") or payload.get("token"))
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
    # Ids are checked as sent, before the NULs of everything else are replaced
    # (strings are immutable: these stay as sent), and after the depth is: an id
    # nested past it is refused as the rest of the event would be, whatever its
    # depth, and is never turned into text.
    sent = _SentIds(
        uuid=item.get("uuid"),
        distinct_id=properties.get("distinct_id") or item.get("distinct_id"),
        session_id=properties.get("$session_id"),
        anon_id=properties.get("$anon_distinct_id"),
        token=properties.get("token") or item.get("api_key"),
    )
    if storable.clean_json(item) > storable.MAX_DEPTH:
        raise IngestError(
            "too_deep",
            f"an analytics event nests more than {storable.MAX_DEPTH} levels deep",
        )
    uuid = _checked_id(
        _required_text(sent.uuid, "uuid", storable.EVENT_UUID_MAX), "uuid"
    )
    distinct_id = _id(sent.distinct_id, "distinct_id", storable.DISTINCT_ID_MAX)
    session_id = _id(sent.session_id, "$session_id", _SESSION_MAX)
    # An anonymous id is a distinct id the person had before identify().
    anon_id = _id(sent.anon_id, "$anon_distinct_id", _ANON_MAX)
    return AnalyticsEvent(
        uuid=uuid,
        name=_required(item, "event", storable.EVENT_NAME_MAX),
        token=api_key or _token(sent.token),
        distinct_id=distinct_id,
        session_id=session_id,
        timestamp=_timestamp(item.get("timestamp")),
        properties=properties,
        person_set=_person_props(item, properties, "$set"),
        person_set_once=_person_props(item, properties, "$set_once"),
        anon_distinct_id=anon_id,
    )


@dataclass(frozen=True, slots=True)
class _SentIds:
    """An event's ids and token as sent, read before its NULs are replaced."""

    uuid: Any
    distinct_id: Any
    session_id: Any
    anon_id: Any
    token: Any


def _person_props(item: dict[str, Any], properties: dict[str, Any], key: str) -> Any:
    # posthog-js sends `$set` at the event's top level for $identify, and inside
    # properties for $set events and capture(..., {$set}).
    value = item.get(key, properties.get(key))
    return value if isinstance(value, dict) else {}


def _required(item: dict[str, Any], field: str, limit: int) -> str:
    return _required_text(item.get(field), field, limit)


def _required_text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise IngestError(
            "invalid_event",
            f"event field {field!r} must be a string of 1-{limit} chars",
        )
    return value


def _token(value: Any) -> str:
    # Not checked here: a token no project holds is answered 401 where it is looked
    # up (Project.objects.for_token), NUL or not.
    return str(value)[:_MAX_TOKEN] if value not in (None, "") else ""


def _id(value: Any, field: str, limit: int) -> str:
    """An id as text (some SDKs send numbers); refused when it cannot be stored as
    it is, since a cut id is another person's or session's."""
    if value in (None, ""):
        return ""
    if isinstance(value, dict | list):
        # Not an id (and, as text, the repr of whatever it holds).
        raise IngestError("invalid_field", f"`{field}` must be a string or a number")
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise IngestError("invalid_field", f"`{field}` is over {limit} characters")
    return _checked_id(text, field)


def _checked_id(text: str, field: str) -> str:
    if _CONTROL_CHARS.search(text):
        raise IngestError("invalid_field", f"`{field}` contains control characters")
    return text


def _timestamp(value: Any) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(value, str):
        raise IngestError(
            "invalid_timestamp", "event `timestamp` must be an ISO 8601 string"
        )
    shown = repr(value[:40])
    try:
        parsed = dt.datetime.fromisoformat(value)
        # An offset can carry a date Python accepts past year 1 or 9999 in UTC,
        # which is how the database stores it: OverflowError.
        utc = (
            parsed.astimezone(dt.UTC)
            if parsed.tzinfo
            else parsed.replace(tzinfo=dt.UTC)
        )
    except (ValueError, OverflowError):
        raise IngestError(
            "invalid_timestamp", f"bad event `timestamp` {shown}"
        ) from None
    if not storable.EARLIEST <= utc < storable.LATEST:
        raise IngestError(
            "invalid_timestamp",
            f"event `timestamp` {shown} is outside {storable.PLAUSIBLE_YEARS}",
        )
    return utc
