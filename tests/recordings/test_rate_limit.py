from __future__ import annotations

import time

import time_machine
from django.core.cache import cache

from recordings.models import Project, SessionLedger, SnapshotChunk
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded


class IngestRateLimitTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        cache.clear()
        self.project = Project.objects.create(
            name="Shop", token=FIXTURE_TOKEN, ingest_rate_limit=2
        )

    def test_over_the_limit_a_batch_is_deferred_not_dropped(self) -> None:
        first = captured("04-s-gzip-fullsnapshot")
        second = captured("05-s-gzip-incremental-console-network")
        third = captured("10a-s-retry-first-attempt-500")
        self.assertEqual(first.send(self.client).status_code, 200)
        self.assertEqual(second.send(self.client).status_code, 200)
        response = third.send(self.client)
        # 503 is what posthog-js retries (it drops every 4xx, 429 included).
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"], "rate_limited")
        self.assertTrue(1 <= int(response["Retry-After"]) <= 30)
        self.assertIn("Retry-After", response["Access-Control-Expose-Headers"])
        batches = decoded("10a-s-retry-first-attempt-500")
        session_id = batches[0]["properties"]["$session_id"]
        ledger = SessionLedger.objects.get(session_id=session_id)
        self.assertEqual(ledger.refusals.get("rate_limited"), len(batches))
        # Once the window has passed, the retry is stored.
        with time_machine.travel(time.time() + 60):
            self.assertEqual(third.send(self.client).status_code, 200)
        self.assertTrue(
            SnapshotChunk.objects.filter(recording__project=self.project).exists()
        )

    def test_limits_are_per_project(self) -> None:
        other = Project.objects.create(name="Other", ingest_rate_limit=1)
        for _ in range(3):
            response = self.client.post(
                "/api/v1/ingest/rrweb/",
                data={
                    "token": other.token,
                    "session_id": "s",
                    "events": [
                        {
                            "type": 4,
                            "timestamp": 1_790_000_000_000,
                            "data": {"href": "https://x.test/"},
                        }
                    ],
                },
                content_type="application/json",
            )
        self.assertEqual(response.status_code, 503)
        self.assertEqual(
            captured("04-s-gzip-fullsnapshot").send(self.client).status_code, 200
        )

    def test_zero_means_no_limit(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(ingest_rate_limit=0)
        for name in (
            "04-s-gzip-fullsnapshot",
            "05-s-gzip-incremental-console-network",
            "10a-s-retry-first-attempt-500",
        ):
            self.assertEqual(captured(name).send(self.client).status_code, 200)
