"""Capture reuses a project looked up by token for a few seconds, per process."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from privacy.models import PrivacySettings
from recordings.capture import admission
from recordings.models import Project, Recording
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured

TTL = 5


class ProjectCacheTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.enterContext(self.settings(REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS=TTL))
        admission._projects.clear()
        self.addCleanup(admission._projects.clear)
        admission._tombstones.clear()
        self.addCleanup(admission._tombstones.clear)
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        self.request = captured("04-s-gzip-fullsnapshot")

    def project_queries(self) -> int:
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.request.send(self.client).status_code, 200)
        return sum('FROM "recordings_project"' in q["sql"] for q in queries)

    def test_it_looks_a_token_up_once_with_its_privacy_settings(self) -> None:
        PrivacySettings.objects.create(project=self.project)
        self.assertEqual(self.project_queries(), 1)
        self.assertEqual(self.project_queries(), 0)
        self.assertEqual(Recording.objects.get().project, self.project)

    def test_it_reads_the_privacy_settings_once_per_request(self) -> None:
        PrivacySettings.objects.create(project=self.project)
        for name in ("04-s-gzip-fullsnapshot", "09b-i-v0-e-rageclick-batch"):
            with self.subTest(name):
                admission._projects.clear()
                with CaptureQueriesContext(connection) as queries:
                    self.assertEqual(captured(name).send(self.client).status_code, 200)
                privacy = [q for q in queries if "privacy_privacysettings" in q["sql"]]
                # The one statement that loads the project with its settings.
                self.assertEqual(len(privacy), 1)
                self.assertIn('FROM "recordings_project"', privacy[0]["sql"])

    def test_it_reads_the_erased_people_once_per_entry(self) -> None:
        self.project_queries()
        with CaptureQueriesContext(connection) as queries:
            self.request.send(self.client)
        self.assertFalse([q for q in queries if "privacy_tombstone" in q["sql"]])

    def test_it_caches_the_default_privacy_settings_it_creates(self) -> None:
        self.project_queries()
        self.assertTrue(PrivacySettings.objects.filter(project=self.project).exists())
        with CaptureQueriesContext(connection) as queries:
            self.request.send(self.client)
        self.assertFalse([q for q in queries if "privacy_privacysettings" in q["sql"]])

    def test_a_switched_off_project_is_refused_once_the_entry_expires(self) -> None:
        self.project_queries()
        Project.objects.filter(pk=self.project.pk).update(recording_enabled=False)
        later = time.monotonic() + TTL + 1
        with mock.patch.object(time, "monotonic", return_value=later):
            response = self.request.send(self.client)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["error"], "recording_disabled")

    def test_it_never_caches_an_unknown_token(self) -> None:
        self.project.delete()
        self.assertEqual(self.request.send(self.client).status_code, 401)
        self.assertEqual(admission._projects, {})

    def test_zero_seconds_turns_the_cache_off(self) -> None:
        PrivacySettings.objects.create(project=self.project)
        with self.settings(REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS=0):
            self.assertEqual(self.project_queries(), 1)
            self.assertEqual(self.project_queries(), 1)
        self.assertEqual(admission._projects, {})

    def refused_then_switched_back_on(self, refused: str, **switch: object) -> Any:
        self.assertEqual(self.request.send(self.client).status_code, 403)
        self.assertEqual(self.request.send(self.client).json()["error"], refused)
        # Another web process saves the change: this one's cache still says no.
        Project.objects.filter(pk=self.project.pk).update(**switch)
        return self.request.send(self.client)

    def test_raising_the_cap_resumes_capture_at_once_in_every_process(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(
            monthly_minutes_cap=10, over_cap_since=now()
        )
        response = self.refused_then_switched_back_on(
            "over_quota", monthly_minutes_cap=60, over_cap_since=None
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertTrue(Recording.objects.filter(project=self.project).exists())

    def test_switching_recording_back_on_resumes_capture_at_once(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(recording_enabled=False)
        response = self.refused_then_switched_back_on(
            "recording_disabled", recording_enabled=True
        )
        self.assertEqual(response.status_code, 200, response.content)

    def test_a_cached_refusal_costs_one_fresh_read(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(recording_enabled=False)
        self.request.send(self.client)
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.request.send(self.client).status_code, 403)
        # The cached "no" is read again once, never trusted for a 4xx.
        reads = [q for q in queries if 'FROM "recordings_project"' in q["sql"]]
        self.assertEqual(len(reads), 1)
