from __future__ import annotations

import json
from typing import Any

from recordings.models import Recording, SnapshotChunk
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.fixtures import fixtures_dir


def rrweb_session(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        (fixtures_dir() / "rrweb" / f"{name}.json").read_text()
    )
    return events


class RrwebIngestTests(ReplayTestCase):
    url = "/api/v1/ingest/rrweb/"

    def post(self, body: dict[str, Any], query: str = "") -> Any:
        return self.client.post(
            self.url + query, data=json.dumps(body), content_type="application/json"
        )

    def test_it_stores_a_plain_rrweb_session_in_batches(self) -> None:
        events = rrweb_session("browse")
        for start in range(0, len(events), 40):
            body = {
                "token": self.project.token,
                "session_id": "browse-1",
                "window_id": "w1",
                "distinct_id": "jane",
                "batch_id": f"b{start}",
                "events": events[start : start + 40],
            }
            response = self.post(body)
            self.assertEqual(response.status_code, 200, response.content)
        recording = Recording.objects.get(session_id="browse-1")
        self.assertEqual(recording.distinct_id, "jane")
        self.assertEqual(recording.lib, "rrweb")
        self.assertEqual(recording.event_count, len(events))
        played = recording_events(recording=recording)
        self.assertEqual(
            sorted(e["timestamp"] for e in played),
            sorted(e["timestamp"] for e in events),
        )
        clicks = [
            e
            for e in events
            if e["type"] == 3 and e["data"]["source"] == 2 and e["data"]["type"] == 2
        ]
        self.assertEqual(recording.click_count, len(clicks))

    def test_the_token_may_come_in_the_query_string(self) -> None:
        body = {"session_id": "s1", "events": rrweb_session("signup")}
        response = self.post(body, query=f"?token={self.project.token}")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(Recording.objects.get(session_id="s1").has_full_snapshot)

    def test_a_resent_batch_without_batch_id_is_stored_once(self) -> None:
        body = {
            "token": self.project.token,
            "session_id": "s2",
            "events": rrweb_session("signup"),
        }
        self.post(body)
        self.post(body)
        self.assertEqual(SnapshotChunk.objects.count(), 1)
        self.assertEqual(len(self.stored_data()), 1)

    def test_it_rejects_a_batch_without_events(self) -> None:
        response = self.post(
            {"token": self.project.token, "session_id": "s3", "events": []}
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"], "not_a_batch")
        self.assertEqual(Recording.objects.count(), 0)


def deep_full_snapshot(depth: int, timestamp: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": 3, "textContent": "deep", "id": depth + 10}
    for level in range(depth):
        node = {
            "type": 2,
            "tagName": "div",
            "attributes": {},
            "childNodes": [node],
            "id": level + 10,
        }
    document = {"type": 0, "childNodes": [node], "id": 1}
    return {
        "type": 2,
        "timestamp": timestamp,
        "data": {"node": document, "initialOffset": {"left": 0, "top": 0}},
    }


class DeepDomTests(ReplayTestCase):
    def test_a_very_deep_page_is_stored_and_plays(self) -> None:
        # 200 nested divs: over 400 JSON levels, beyond orjson's 254 for writing.
        events = [
            {
                "type": 4,
                "timestamp": 1_790_000_000_000,
                "data": {"href": "https://x.test/", "width": 800, "height": 600},
            },
            deep_full_snapshot(200, 1_790_000_000_001),
        ]
        body = {"token": self.project.token, "session_id": "deep", "events": events}
        response = self.client.post(
            "/api/v1/ingest/rrweb/",
            data=json.dumps(body),
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 200, response.content)
        recording = Recording.objects.get(session_id="deep")
        self.assertEqual(recording_events(recording=recording), events)
