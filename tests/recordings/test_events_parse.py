"""recordings.ingest.events: analytics requests into events that fit the database.

Pure (no database): ids are refused naming the field, everything else has its NULs
replaced, timestamps past what a datetime holds are invalid_timestamp, and an
event nested past the depth limit is too_deep.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from recordings.ingest import storable
from recordings.ingest.events import AnalyticsEvent, parse_event_request
from recordings.ingest.parse import IngestError
from tests.capture import decoded


def request(**changes: Any) -> dict[str, Any]:
    """posthog-js's `$exception` request, its event changed by `changes`."""
    payload: dict[str, Any] = copy.deepcopy(decoded("09a-i-v0-e-exception"))
    event = payload["batch"][0]
    for key, value in changes.items():
        if key.startswith("properties."):
            event["properties"][key.removeprefix("properties.")] = value
        else:
            event[key] = value
    return payload


def parsed(**changes: Any) -> AnalyticsEvent:
    (event,) = parse_event_request(request(**changes))
    return event


def refused(**changes: Any) -> IngestError:
    with pytest.raises(IngestError) as caught:
        parse_event_request(request(**changes))
    return caught.value


@pytest.mark.parametrize(
    ("field", "key", "limit"),
    [
        ("uuid", "uuid", storable.EVENT_UUID_MAX),
        ("distinct_id", "properties.distinct_id", storable.DISTINCT_ID_MAX),
        ("$session_id", "properties.$session_id", storable.SESSION_ID_MAX),
        ("$anon_distinct_id", "properties.$anon_distinct_id", storable.DISTINCT_ID_MAX),
    ],
)
def test_it_refuses_ids_that_cannot_be_stored_as_sent(
    field: str, key: str, limit: int
) -> None:
    assert parsed(**{key: "x" * limit})  # at the limit: fine
    for value in ("a\x00b", "a\nb", "x" * (limit + 1)):
        error = refused(**{key: value})
        assert error.code in {"invalid_field", "invalid_event"}
        assert field in error.message


def test_it_replaces_nuls_in_the_name_properties_and_set() -> None:
    event = parsed(
        event="clicked\x00",
        **{
            "properties.note\x00": "a\x00b",
            "properties.list": ["\x00"],
            "$set": {"plan\x00": "pro\x00"},
            "$set_once": {"first": "x\x00"},
        },
    )
    assert event.name == "clicked\ufffd"
    assert event.properties["note\ufffd"] == "a\ufffdb"
    assert event.properties["list"] == ["\ufffd"]
    assert event.person_set == {"plan\ufffd": "pro\ufffd"}
    assert event.person_set_once == {"first": "x\ufffd"}


def test_it_passes_a_token_with_a_nul_on_to_be_unknown() -> None:
    payload = request()
    payload["api_key"] = "phc_x\x00"
    assert parse_event_request(payload)[0].token == "phc_x\x00"


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-23:59",  # past 9999 in UTC
        "0001-01-01T00:00:00+23:59",  # before year 1 in UTC
        "9999-12-31T23:59:59.999999",
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "not a time",
        12345,
    ],
)
def test_it_refuses_timestamps_no_recording_can_come_from(value: Any) -> None:
    error = refused(timestamp=value)
    assert error.code == "invalid_timestamp"
    assert "timestamp" in error.message


def test_it_keeps_timestamps_in_utc() -> None:
    event = parsed(timestamp="2026-11-22T10:44:18.594+01:00")
    assert event.timestamp == dt.datetime(2026, 11, 22, 9, 44, 18, 594000, dt.UTC)
    assert parsed(timestamp="2026-11-22T09:44:18").timestamp.tzinfo == dt.UTC


def test_it_refuses_an_event_nested_past_the_limit() -> None:
    def props_nested(levels: int) -> Any:
        value: Any = "leaf"
        for _ in range(levels):
            value = {"a": value}
        return value

    # The event object and its properties are two levels.
    assert parsed(**{"properties.deep": props_nested(storable.MAX_DEPTH - 2)})
    error = refused(**{"properties.deep": props_nested(storable.MAX_DEPTH - 1)})
    assert error.code == "too_deep"
