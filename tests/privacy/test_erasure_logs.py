"""After an erasure, the logs hold nothing that names the person.

Log lines outlive an erasure (files, journald, a log service): ReplayHub's own
name a recording by its code, never by its session id, and name no distinct id.
Everything is logged at DEBUG here, from the person's first batch to the erasure.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import override_settings

from recordings.models import Recording
from recordings.services.compaction import recording_compact
from tests.access import rrweb_events
from tests.privacy.test_erasure import JANE, JANE_ANON, ErasureTestCase

LOGGERS = ("recordings", "privacy", "playlists", "replayhub", "celery", "django")
JANES = ("jane-session", "jane-anon-session")


class ErasureLogTests(ErasureTestCase):
    caplog: pytest.LogCaptureFixture

    @pytest.fixture(autouse=True)
    def _log_everything(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        for name in LOGGERS:
            caplog.set_level(logging.DEBUG, logger=name)
        self.caplog = caplog

    def logged(self) -> list[str]:
        handler = self.caplog.handler
        return [
            handler.format(record) if record.exc_info else record.getMessage()
            for record in self.caplog.records
        ]

    def send_eventful_batch(self) -> None:
        """A batch of Jane's whose capture has things to say: an event of an unknown
        kind, a card number, an event a long way off the rest, a clock to correct."""
        events: list[dict[str, Any]] = rrweb_events("signup")
        last = events[-1]["timestamp"]
        text = {"id": 5, "value": "card 4111 1111 1111 1111"}
        mutation = {"source": 0, "texts": [text], "attributes": [], "removes": []}
        events += [
            {"type": 99, "data": {}, "timestamp": last},
            {"type": 3, "data": {**mutation, "adds": []}, "timestamp": last + 1},
            {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": 10**13},
        ]
        body = {
            "token": self.project.token,
            "session_id": "jane-session",
            "window_id": "w",
            "batch_id": "jane-session-2",
            "distinct_id": JANE,
            "events": events,
        }
        with override_settings(REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS=300):
            response = self.client.post(
                "/api/v1/ingest/rrweb/",
                json.dumps(body),
                content_type="application/json",
            )
        self.assertEqual(response.status_code, 200, response.content)

    def test_the_logs_hold_no_session_or_distinct_id_of_an_erased_person(
        self,
    ) -> None:
        self.send_eventful_batch()
        jane = Recording.objects.get(session_id="jane-session")
        recording_compact(recording=jane)
        codes = set(
            Recording.objects.filter(session_id__in=JANES).values_list(
                "code", flat=True
            )
        )

        self.erase(JANE)

        logged = self.logged()
        self.assertGreater(len(logged), 8)  # capture, compaction and purge spoke
        for secret in (*JANES, JANE, JANE_ANON):
            leaks = [line for line in logged if secret in line]
            self.assertEqual(leaks, [], secret)
        purged = {line for line in logged if line.startswith("purged recording")}
        self.assertEqual(
            {line.split()[2] for line in purged}, {str(code) for code in codes}
        )
