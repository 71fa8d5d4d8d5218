"""A newer SDK's events of unknown kinds cost only those events, never the batch."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse

from recordings.models import Recording, SessionLedger
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, send_rrweb
from tests.fixtures import fixtures_dir

# What a future rrweb or posthog-js might send: an event type and an incremental
# source that do not exist today, carrying data the firewall knows nothing about.
NEW_TYPE = {"type": 42, "timestamp": 1795340661700, "data": {"note": "4242"}}
NEW_SOURCE = {
    "type": 3,
    "timestamp": 1795340661701,
    "data": {"source": 99, "id": 5, "text": "jane.doe@example.com"},
}


class UnknownEventTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        self.request = captured("04-s-gzip-fullsnapshot")

    def payload(self) -> Any:
        return self.request.decoded()

    def send(self, payload: object) -> Any:
        return self.request.send_decoded(self.client, payload)

    def test_it_stores_a_real_batch_without_its_unknown_events(self) -> None:
        payload = self.payload()
        sent = sum(len(item["properties"]["$snapshot_data"]) for item in payload)
        payload[-1]["properties"]["$snapshot_data"] += [NEW_TYPE, NEW_SOURCE]
        session_id = payload[-1]["properties"]["$session_id"]

        response = self.send(payload)

        self.assertEqual(response.status_code, 200, response.content)
        recording = Recording.objects.get(session_id=session_id)
        self.assertTrue(recording.has_full_snapshot)
        stored = self.stored_events()
        self.assertEqual(len(stored), sent)
        self.assertNotIn(42, {event["type"] for event in stored})
        self.assertNotIn(b"jane.doe", json.dumps(stored).encode())
        ledger = SessionLedger.objects.get(session_id=session_id)
        self.assertEqual(ledger.events_dropped, {"type 42": 1, "source 99": 1})
        self.assertIn("2 event(s) of unknown kinds dropped", ledger.verdict())

    def test_a_retried_batch_is_not_counted_twice(self) -> None:
        payload = self.payload()
        payload[-1]["properties"]["$snapshot_data"].append(NEW_TYPE)
        self.assertEqual(self.send(payload).status_code, 200)
        self.assertEqual(self.send(payload).status_code, 200)
        ledger = SessionLedger.objects.get()
        self.assertEqual(ledger.events_dropped, {"type 42": 1})
        self.assertEqual(ledger.batches_duplicate, len(payload))

    def test_a_batch_of_only_unknown_events_is_noted_in_the_ledger(self) -> None:
        send_rrweb(self.client, self.project.token, "b1", [NEW_TYPE, NEW_SOURCE])
        ledger = SessionLedger.objects.get(session_id="s")
        self.assertEqual(ledger.events_dropped, {"type 42": 1, "source 99": 1})
        self.assertFalse(Recording.objects.exists())
        self.assertEqual(self.stored_blobs(), [])

    def test_plain_rrweb_batches_drop_unknown_events_too(self) -> None:
        events = json.loads((fixtures_dir() / "rrweb" / "browse.json").read_text())
        send_rrweb(self.client, self.project.token, "b1", [*events, NEW_SOURCE])
        self.assertEqual(len(self.stored_events()), len(events))
        ledger = SessionLedger.objects.get(session_id="s")
        self.assertEqual(ledger.events_dropped, {"source 99": 1})

    def test_the_ledger_list_shows_and_filters_sessions_with_dropped_events(
        self,
    ) -> None:
        send_rrweb(self.client, self.project.token, "b1", [NEW_TYPE], session_id="new")
        self.assertEqual(self.request.send(self.client).status_code, 200)  # clean
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_sessionledger_changelist")
        response = self.client.get(url, {"dropped": "yes"})
        rows = list(response.context["cl"].result_list)
        self.assertEqual([row.session_id for row in rows], ["new"])
        self.assertContains(response, "type 42 \u00d71")
        response = self.client.get(url, {"dropped": "no"})
        self.assertNotIn(
            "new", [r.session_id for r in response.context["cl"].result_list]
        )
