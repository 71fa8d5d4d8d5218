"""A wrong device clock or a typo'd event time never costs or stretches a recording."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from recordings.ingest import clock
from recordings.models import Project, Recording, SessionLedger
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, send_rrweb

TOLERANCE_MS = 300_000
# When fixture 04 was sent, by the capturing machine's (right) clock.
SENT_AT = dt.datetime(2026, 11, 22, 9, 44, 21, 595_000, tzinfo=dt.UTC)
SENT_AT_MS = int(SENT_AT.timestamp() * 1000)
YEARS_MS = 30 * 365 * 24 * 3600 * 1000  # a device that thinks it is 1996
DAY_MS = 24 * 3600 * 1000


def skew(sent_at_ms: int | None, times: list[int], previous: int | None = None) -> int:
    return clock.session_skew(
        sent_at_ms=sent_at_ms,
        received_ms=SENT_AT_MS + 200,
        times=times,
        previous=previous,
        tolerance_ms=TOLERANCE_MS,
    )


# --- the rules, as plain functions ------------------------------------------------


def test_a_clock_years_off_is_corrected_by_received_minus_sent() -> None:
    assert skew(SENT_AT_MS - YEARS_MS, [SENT_AT_MS - YEARS_MS]) == YEARS_MS + 200


def test_network_delay_and_small_offsets_are_left_alone() -> None:
    assert skew(SENT_AT_MS - 4 * 60_000, [SENT_AT_MS]) == 0
    assert skew(SENT_AT_MS + 4 * 60_000, [SENT_AT_MS]) == 0


def test_a_session_keeps_its_skew_while_measurements_agree() -> None:
    first = skew(SENT_AT_MS - YEARS_MS, [1])
    # The next batch took 3 s longer on the network: the same shift, not a new one.
    assert skew(SENT_AT_MS - YEARS_MS - 3000, [1], previous=first) == first
    # The person fixed the clock: the new measurement wins.
    assert skew(SENT_AT_MS, [SENT_AT_MS], previous=first) == 0


def test_without_sent_at_only_impossible_times_are_moved() -> None:
    assert skew(None, [SENT_AT_MS - 60_000, SENT_AT_MS]) == 0
    old = SENT_AT_MS - YEARS_MS
    assert skew(None, [old - 5000, old]) == YEARS_MS + 200  # last event: received
    future = SENT_AT_MS + 40 * DAY_MS
    assert skew(None, [future]) == 200 - 40 * DAY_MS


def test_a_typo_far_from_its_batch_takes_its_neighbours_time() -> None:
    events = [{"timestamp": SENT_AT_MS + n * 100} for n in range(5)]
    events[3]["timestamp"] += 198 * DAY_MS
    assert clock.retime_outliers(events) == 1
    assert [e["timestamp"] for e in events] == [
        SENT_AT_MS,
        SENT_AT_MS + 100,
        SENT_AT_MS + 200,
        SENT_AT_MS + 200,
        SENT_AT_MS + 400,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-22T09:44:21.595Z", SENT_AT_MS),
        (SENT_AT_MS, SENT_AT_MS),
        ("9999-12-31T23:59:59-23:59", None),  # past year 9999 once in UTC
        ("0001-01-01T00:00:00+23:59", None),  # before year 1 once in UTC
        ("yesterday", None),
        (True, None),
        (None, None),
        (-1, None),
    ],
)
def test_sent_at_is_read_when_it_is_a_time_and_ignored_otherwise(
    value: Any, expected: int | None
) -> None:
    assert clock.iso_to_ms(value) == expected


# --- through capture ---------------------------------------------------------------


def shifted(payload: list[dict[str, Any]], by_ms: int) -> list[dict[str, Any]]:
    """The request as a device whose clock is `by_ms` off would have sent it."""
    delta = dt.timedelta(milliseconds=by_ms)
    for item in payload:
        for key in ("timestamp", "sent_at"):
            when = dt.datetime.fromisoformat(item[key]) + delta
            item[key] = when.isoformat().replace("+00:00", "Z")
        for event in item["properties"]["$snapshot_data"]:
            event["timestamp"] += by_ms
    return payload


class ClockSkewCaptureTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        # The default, which conftest.py lifts for the rest of the suite.
        self.enterContext(
            override_settings(REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS=300)
        )
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        self.request = captured("04-s-gzip-fullsnapshot")
        # The server receives the request 2 s after the device sent it.
        self.enterContext(
            time_machine.travel(SENT_AT + dt.timedelta(seconds=2), tick=False)
        )

    def payload(self) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = self.request.decoded()
        return loaded

    def send(self, payload: object) -> Any:
        return self.request.send_decoded(self.client, payload)

    def sent_times(self) -> list[int]:
        return sorted(
            e["timestamp"]
            for item in self.payload()
            for e in item["properties"]["$snapshot_data"]
        )

    def test_a_device_clock_decades_behind_still_records_at_the_right_time(
        self,
    ) -> None:
        response = self.send(shifted(self.payload(), -YEARS_MS))
        self.assertEqual(response.status_code, 200, response.content)
        stored = sorted(e["timestamp"] for e in self.stored_events())
        # Moved by received minus sent_at: where a right clock would have put them
        # (2 s of network), with every interval playback needs kept exactly.
        self.assertEqual(stored, [t + 2000 for t in self.sent_times()])
        recording = Recording.objects.get()
        first = dt.datetime.fromtimestamp(self.sent_times()[0] / 1000, tz=dt.UTC)
        self.assertEqual(recording.started_at, first + dt.timedelta(seconds=2))
        ledger = SessionLedger.objects.get()
        self.assertEqual(ledger.clock_skew_ms, YEARS_MS + 2000)

    def test_a_right_clock_is_left_alone(self) -> None:
        self.assertEqual(self.send(self.payload()).status_code, 200)
        stored = sorted(e["timestamp"] for e in self.stored_events())
        self.assertEqual(stored, self.sent_times())
        self.assertEqual(SessionLedger.objects.get().clock_skew_ms, 0)

    def test_a_typo_d_event_time_does_not_stretch_the_recording(self) -> None:
        payload = self.payload()
        events = payload[0]["properties"]["$snapshot_data"]
        events[5]["timestamp"] += 198 * DAY_MS
        self.assertEqual(self.send(payload).status_code, 200)
        recording = Recording.objects.get()
        self.assertLess(recording.duration_ms, 60_000)
        self.assertLess(recording.max_gap_ms, 60_000)

    def test_a_plain_rrweb_client_with_a_1990s_clock_and_no_sent_at(self) -> None:
        old = SENT_AT_MS - YEARS_MS
        events = [
            {"type": 4, "timestamp": old, "data": {"href": "https://a.test/"}},
            {"type": 3, "timestamp": old + 500, "data": {"source": 1}},
        ]
        send_rrweb(self.client, self.project.token, "b1", events)
        stored = sorted(e["timestamp"] for e in self.stored_events())
        received = SENT_AT_MS + 2000
        self.assertEqual(stored, [received - 500, received])
