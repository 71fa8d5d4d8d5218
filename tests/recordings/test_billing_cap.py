"""Billing caps: recorded minutes a month; at the cap capture stops, then resumes."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils.timezone import now

from recordings.models import Project, Recording, SessionLedger
from recordings.services.usage import month_start, project_usage, projects_cap_enforce
from recordings.tasks import projects_cap_enforce as projects_cap_enforce_task
from tests.access import rrweb_events
from tests.base import ReplayTestCase
from tests.capture import send_rrweb

MINUTE_MS = 60_000


class BillingCapTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", monthly_minutes_cap=10)
        self.other = Project.objects.create(name="Other shop", monthly_minutes_cap=10)

    def recorded(self, project: Project, session: str, minutes: float) -> Recording:
        """A real recording ingested over HTTP, then given a duration."""
        send_rrweb(
            self.client, project.token, f"{session}-1", rrweb_events("signup"), session
        )
        Recording.objects.filter(session_id=session).update(
            duration_ms=int(minutes * MINUTE_MS)
        )
        return Recording.objects.get(session_id=session)

    def send(self, project: Project, session: str) -> int:
        body = {
            "token": project.token,
            "session_id": session,
            "window_id": "w",
            "events": rrweb_events("signup"),
        }
        response = self.client.post(
            "/api/v1/ingest/rrweb/", json.dumps(body), content_type="application/json"
        )
        return response.status_code

    def refresh(self) -> None:
        self.project.refresh_from_db()

    def test_usage_counts_this_months_recordings_of_the_project_only(self) -> None:
        self.recorded(self.project, "a", 3)
        self.recorded(self.project, "b", 4.5)
        last_month = self.recorded(self.project, "old", 60)
        Recording.objects.filter(pk=last_month.pk).update(
            created=month_start(now()) - dt.timedelta(seconds=1)
        )
        self.recorded(self.other, "c", 60)

        usage = project_usage(project=self.project, now=now())

        self.assertAlmostEqual(usage.minutes, 7.5)
        self.assertFalse(usage.over)
        self.assertEqual(
            usage.describe(), "7.5 of 10 recorded minutes this month (75%)"
        )

    def test_at_the_cap_capture_stops_and_the_sdk_is_told_to_stop(self) -> None:
        self.recorded(self.project, "a", 10)
        self.assertEqual(projects_cap_enforce_task(), 1)
        self.refresh()
        self.assertIsNotNone(self.project.over_cap_since)

        self.assertEqual(self.send(self.project, "more"), 403)
        self.assertFalse(Recording.objects.filter(session_id="more").exists())
        ledger = SessionLedger.objects.get(session_id="more")
        self.assertEqual(ledger.last_refusal, "over_quota")
        config = self.client.get(f"/array/{self.project.token}/config").json()
        self.assertIs(config["sessionRecording"], False)
        # Another project under its cap goes on recording.
        self.assertEqual(self.send(self.other, "other"), 200)

    def test_it_resumes_when_the_month_ends(self) -> None:
        self.recorded(self.project, "a", 12)
        projects_cap_enforce(now=now())
        next_month = month_start(now()) + dt.timedelta(days=32)

        self.assertEqual(projects_cap_enforce(now=next_month), 1)

        self.refresh()
        self.assertIsNone(self.project.over_cap_since)
        self.assertEqual(self.send(self.project, "new-month"), 200)

    def test_raising_the_cap_in_the_admin_resumes_at_once(self) -> None:
        self.recorded(self.project, "a", 12)
        projects_cap_enforce(now=now())
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_project_change", args=[self.project.pk])
        page = self.client.get(url).content.decode()
        self.assertIn("12.0 of 10 recorded minutes this month (120%)", page)
        self.assertIn("Capture stopped at the cap", page)

        data = {"name": "Shop", "recording_enabled": "on", "monthly_minutes_cap": "60"}
        response = self.client.post(url, data)

        self.assertEqual(response.status_code, 302, response.content[:500])
        self.refresh()
        self.assertIsNone(self.project.over_cap_since)
        self.assertEqual(self.send(self.project, "after-raise"), 200)

    def test_a_project_without_a_cap_is_never_stopped(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(monthly_minutes_cap=None)
        self.recorded(self.project, "a", 10_000)
        projects_cap_enforce(now=now())
        self.refresh()
        self.assertIsNone(self.project.over_cap_since)

    def test_beat_checks_every_five_minutes(self) -> None:
        entry = settings.CELERY_BEAT_SCHEDULE["enforce-billing-caps"]
        self.assertEqual(entry["task"], "recordings.tasks.projects_cap_enforce")
        self.assertEqual(str(entry["schedule"]._orig_minute), "*/5")

    def test_the_command_checks_like_beat_and_prints_each_decision(self) -> None:
        self.recorded(self.project, "a", 12)
        Project.objects.create(name="Uncapped")
        out = StringIO()

        call_command("enforce_billing_caps", stdout=out)

        self.refresh()
        self.assertIsNotNone(self.project.over_cap_since)
        self.assertEqual(
            out.getvalue().splitlines(),
            [
                "Other shop: 0.0 of 10 recorded minutes this month (0%); "
                "capture goes on",
                "Shop: 12.0 of 10 recorded minutes this month (120%); capture stops",
                "2 project(s) checked, 1 changed",
            ],
        )
        self.assertEqual(self.send(self.project, "more"), 403)

        Project.objects.filter(pk=self.project.pk).update(monthly_minutes_cap=60)
        out = StringIO()
        call_command("enforce_billing_caps", stdout=out)
        self.assertIn("Shop: 12.0 of 60", out.getvalue())
        self.assertIn("capture resumes", out.getvalue())
        self.assertEqual(self.send(self.project, "after-raise"), 200)
