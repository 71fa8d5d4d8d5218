"""A recording's signals and markers, computed on the server and kept where the
admin, the API and (next) the filters use them."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.urls import reverse
from django.utils.timezone import now

from recordings.ingest.signal_scan import AnalyticsEvent, signals_of
from recordings.models import Event, Marker, Recording
from recordings.services.compaction import recording_compact
from recordings.services.recording_signals import (
    recording_signals_update,
    recordings_signals_behind,
)
from recordings.services.storage import recording_events
from recordings.tasks import recordings_signals_refresh as refresh_task
from replayhub.celery import app
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, full_session, send_rrweb, session_events

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
CAPTURE_PATHS = ("/s/", "/e/", "/i/v0/e/")


class RealSessionSignalsTests(ReplayTestCase):
    """The real 72-second posthog-js session: its snapshots and analytics events."""

    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        for request in full_session():
            if request.method == "POST" and request.path in CAPTURE_PATHS:
                response = request.send(self.client)
                self.assertEqual(response.status_code, 200, response.content)
        self.recording = Recording.objects.get(session_id=MAIN_SESSION)

    def found_now(self) -> Any:
        """What the pure core finds in what is stored, computed here apart."""
        windows = {
            window: recording_events(recording=self.recording, window_id=window)
            for window in self.recording.window_ids()
        }
        events = Event.objects.filter(session_id=MAIN_SESSION).order_by("timestamp")
        analytics = [
            AnalyticsEvent(
                e.name,
                int(e.timestamp.timestamp() * 1000),
                e.properties.get("$window_id", ""),
                e.properties,
            )
            for e in events
        ]
        return signals_of(windows, analytics)

    def test_the_signals_fold_the_sessions_feature_flags(self) -> None:
        # The fixture's SDK evaluated no flag; a later event of the session did.
        first = Event.objects.filter(session_id=MAIN_SESSION).earliest("timestamp")
        Event.objects.create(
            project=self.project,
            uuid="flagged-event",
            name="checkout_started",
            session_id=MAIN_SESSION,
            timestamp=first.timestamp,
            properties={
                "$feature/new_checkout_flow": "test",
                "$feature/dark-mode": False,
                "$feature_flag_payloads": {"new_checkout_flow": {"big": "payload"}},
            },
        )
        self.assertIsNone(self.recording.feature_flags)
        recording_signals_update(recording=self.recording)
        recording = Recording.objects.get(pk=self.recording.pk)
        self.assertEqual(
            recording.feature_flags,
            {
                "new_checkout_flow": {"s:test": True, "*": True},
                "dark-mode": {"false": True},
            },
        )

    def test_compaction_stores_what_happened(self) -> None:
        self.assertIsNone(self.recording.signals_at)
        recording_compact(recording=self.recording)
        recording = Recording.objects.get(pk=self.recording.pk)
        found = self.found_now()
        # The fixture's flow: one 5-click rage click, a fetch answered 500.
        self.assertEqual(recording.rage_click_count, 1)
        self.assertEqual(recording.network_5xx_count, 1)
        self.assertGreaterEqual(recording.dead_click_count, 1)
        self.assertGreaterEqual(recording.error_click_count, 1)
        for name in (
            "dead_click_count",
            "error_click_count",
            "u_turn_count",
            "mouse_thrash_count",
            "active_ms",
            "scroll_count",
            "console_log_count",
            "console_warn_count",
            "network_request_count",
            "network_4xx_count",
            "slowest_request_ms",
            "page_count",
            "window_count",
        ):
            self.assertEqual(getattr(recording, name), getattr(found, name), name)
        self.assertEqual(
            [page["url"] for page in recording.urls], [p.url for p in found.pages]
        )
        self.assertEqual(recording.last_url, found.last_url)
        self.assertIsNotNone(recording.signals_at)
        # posthog-js's own properties name the browser.
        self.assertEqual(
            (recording.browser, recording.device_type), ("Chrome", "Desktop")
        )
        self.assertTrue(recording.viewport_width)

    def test_the_markers_are_the_moments_found_in_time_order(self) -> None:
        recording_compact(recording=self.recording)
        recording = Recording.objects.get(pk=self.recording.pk)
        found = self.found_now()
        stored = list(recording.markers.in_time_order())
        self.assertEqual(
            [(m.kind, int(m.timestamp.timestamp() * 1000), m.label) for m in stored],
            [(m.kind, m.timestamp_ms, m.label) for m in found.markers],
        )
        rage = recording.markers.get(kind=Marker.Kind.RAGE_CLICK)
        start_ms = int(recording.started_at.timestamp() * 1000)
        self.assertEqual(
            rage.offset_ms, int(rage.timestamp.timestamp() * 1000) - start_ms
        )
        self.assertEqual(rage.details["element"]["tag"], "button")
        failed = recording.markers.get(kind=Marker.Kind.NETWORK_ERROR)
        self.assertEqual(failed.details["status"], 500)

    def test_computing_again_replaces_the_markers(self) -> None:
        recording_compact(recording=self.recording)
        count = Marker.objects.count()
        self.assertGreater(count, 0)
        recording_signals_update(recording=self.recording)
        self.assertEqual(Marker.objects.count(), count)

    def test_the_api_shows_every_signal_and_serves_the_markers(self) -> None:
        recording_compact(recording=self.recording)
        code = self.recording.code
        self.client.force_login(self.bob)  # a viewer
        detail = self.client.get(f"/api/v1/recordings/{code}/").json()
        for name in (
            "rage_click_count",
            "dead_click_count",
            "mouse_thrash_count",
            "u_turn_count",
            "error_click_count",
            "active_ms",
            "console_log_count",
            "console_warn_count",
            "console_error_count",
            "network_request_count",
            "network_4xx_count",
            "network_5xx_count",
            "page_count",
            "window_count",
            "urls",
            "browser",
            "browser_version",
            "os",
            "device_type",
            "viewport_width",
            "viewport_height",
            "country",
        ):
            self.assertIn(name, detail)
        self.assertEqual(detail["rage_click_count"], 1)
        markers = self.client.get(f"/api/v1/recordings/{code}/markers/")
        self.assertEqual(markers.status_code, 200)
        kinds = [marker["kind"] for marker in markers.json()]
        self.assertIn("rage_click", kinds)
        self.assertEqual(len(kinds), self.recording.markers.count())

    def test_an_outsider_gets_404_for_the_markers(self) -> None:
        recording_compact(recording=self.recording)
        self.make_charlies_project("Charlie's shop")  # he uses ReplayHub, elsewhere
        self.client.force_login(self.charlie)
        answer = self.client.get(f"/api/v1/recordings/{self.recording.code}/markers/")
        self.assertEqual(answer.status_code, 404)

    def test_the_player_page_lists_the_markers_and_the_list_shows_signals(self) -> None:
        recording_compact(recording=self.recording)
        self.client.force_login(self.bob)
        page = self.client.get(self.recording.player_url())
        self.assertContains(page, "replayhub-marker-rage_click")
        self.assertContains(page, "rage click")
        rage = {"term": "signal", "signal": "rage_clicks"}
        listing = self.client.get(
            reverse("admin:recordings_recording_changelist"),
            {"filter": json.dumps({"version": 1, "where": {**rage, "gte": 1}})},
        )
        self.assertContains(listing, str(self.recording.code))
        none = self.client.get(
            reverse("admin:recordings_recording_changelist"),
            {"filter": json.dumps({"version": 1, "where": {**rage, "lte": 0}})},
        )
        self.assertNotContains(none, str(self.recording.code))


class LiveSignalsTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.events = session_events("main.0")
        send_rrweb(self.client, self.project.token, "b1", self.events, "live")
        self.recording = Recording.objects.get(session_id="live")
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)

    def behind(self, at: dt.datetime) -> list[int]:
        return recordings_signals_behind(now=at, refresh_minutes=3)

    def test_the_sweeper_brings_a_live_recording_up_to_date(self) -> None:
        self.assertEqual(self.behind(now()), [self.recording.pk])
        self.assertEqual(refresh_task.apply().get(), 1)
        self.recording.refresh_from_db()
        self.assertIsNotNone(self.recording.signals_at)
        self.assertFalse(self.recording.compacted)  # still live, still loose
        self.assertEqual(self.behind(now()), [])

    def test_new_data_is_picked_up_within_the_refresh_time(self) -> None:
        refresh_task.apply()
        Recording.objects.filter(pk=self.recording.pk).update(
            last_batch_at=now() + dt.timedelta(seconds=1)
        )
        self.assertEqual(self.behind(now()), [])  # computed under 3 minutes ago
        later = now() + dt.timedelta(minutes=4)
        self.assertEqual(self.behind(later), [self.recording.pk])

    def test_a_compacted_recording_is_not_swept(self) -> None:
        recording_compact(recording=self.recording)
        self.assertEqual(self.behind(now() + dt.timedelta(hours=1)), [])


class RecomputeCommandTests(ReplayTestCase):
    def test_it_recomputes_every_recording_with_progress_and_can_rerun(self) -> None:
        events = session_events("main.0")
        for session in ("a", "b", "c"):
            send_rrweb(self.client, self.project.token, session, events, session)
        other = self.make_project("Other")
        send_rrweb(self.client, other.token, "d", events, "d")
        out = StringIO()
        call_command("recompute_signals", "--project", "Other", stdout=out)
        self.assertIn("1 recording(s) to recompute", out.getvalue())
        self.assertIn("1/1", out.getvalue())
        self.assertEqual(
            set(
                Recording.objects.filter(signals_at__isnull=False).values_list(
                    "session_id", flat=True
                )
            ),
            {"d"},
        )
        for _ in range(2):  # safe to rerun
            out = StringIO()
            call_command("recompute_signals", "--batch-size", "2", stdout=out)
            self.assertIn("recomputed 4 recording(s), 0 failed", out.getvalue())
            self.assertIn("2/4", out.getvalue())
        markers = Marker.objects.count()
        call_command("recompute_signals", stdout=StringIO())
        self.assertEqual(Marker.objects.count(), markers)


def test_the_model_knows_every_kind_of_marker_the_core_makes() -> None:
    from recordings.ingest.signal_scan import Kind

    assert set(Marker.Kind.values) == set(Kind.ALL)


class OddInputTests(ReplayTestCase):
    def test_a_nul_in_page_urls_and_console_text_costs_nothing(self) -> None:
        t0 = 1_764_000_000_000
        href = "https://shop.test/a\x00b"
        console = {
            "plugin": "rrweb/console@1",
            "payload": {
                "level": "error",
                "payload": ['"bad\\u0000thing"'],
                "trace": [],
            },
        }
        events = [
            {
                "type": 4,
                "timestamp": t0,
                "data": {"href": href, "width": 800, "height": 600},
            },
            {"type": 6, "timestamp": t0 + 10, "data": console},
        ]
        send_rrweb(self.client, self.project.token, "b1", events, "odd")
        recording = Recording.objects.get(session_id="odd")
        recording_compact(recording=recording)
        recording.refresh_from_db()
        self.assertEqual(recording.last_url, "https://shop.test/a\ufffdb")
        self.assertEqual(recording.urls[0]["url"], "https://shop.test/a\ufffdb")
        error = recording.markers.get(kind=Marker.Kind.CONSOLE_ERROR)
        self.assertNotIn("\x00", error.label)
