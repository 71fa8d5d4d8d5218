from __future__ import annotations

import base64
import json
from typing import Any

from recordings.ingest.images import PLACEHOLDER_IMAGE
from recordings.models import Recording
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase

T0 = 1_790_000_000_000


def gallery_events(image_bytes: int) -> list[dict[str, Any]]:
    """A page whose only content is an inline PNG of about `image_bytes`."""
    png = (
        "data:image/png;base64,"
        + base64.b64encode(b"\x89PNG" + b"\x07" * image_bytes).decode()
    )
    img = {
        "type": 2,
        "tagName": "img",
        "attributes": {"src": png, "alt": "cat"},
        "childNodes": [],
        "id": 5,
    }
    body = {
        "type": 2,
        "tagName": "body",
        "attributes": {},
        "childNodes": [img],
        "id": 4,
    }
    html = {
        "type": 2,
        "tagName": "html",
        "attributes": {},
        "childNodes": [body],
        "id": 3,
    }
    document = {"type": 0, "childNodes": [html], "id": 1}
    return [
        {
            "type": 4,
            "timestamp": T0,
            "data": {"href": "https://shop.test/gallery", "width": 800, "height": 600},
        },
        {
            "type": 2,
            "timestamp": T0 + 1,
            "data": {"node": document, "initialOffset": {"left": 0, "top": 0}},
        },
    ]


class LargePayloadTests(ReplayTestCase):
    def post(self, events: list[dict[str, Any]], session_id: str) -> Any:
        body = {"token": self.project.token, "session_id": session_id, "events": events}
        return self.client.post(
            "/api/v1/ingest/rrweb/",
            data=json.dumps(body),
            content_type="application/json",
        )

    def stored_image(self, session_id: str) -> str:
        recording = Recording.objects.get(session_id=session_id)
        (_, snapshot) = recording_events(recording=recording)
        src: str = snapshot["data"]["node"]["childNodes"][0]["childNodes"][0][
            "childNodes"
        ][0]["attributes"]["src"]
        return src

    def test_a_payload_over_5_mb_keeps_its_page_but_not_its_inline_images(self) -> None:
        response = self.post(gallery_events(6 * 1024 * 1024), "big")
        self.assertEqual(response.status_code, 200, response.content[:300])
        self.assertEqual(self.stored_image("big"), PLACEHOLDER_IMAGE)
        recording = Recording.objects.get(session_id="big")
        self.assertTrue(recording.has_full_snapshot)
        self.assertLess(recording.size_bytes, 100_000)

    def test_a_smaller_payload_is_stored_as_sent(self) -> None:
        events = gallery_events(200 * 1024)
        self.assertEqual(self.post(events, "small").status_code, 200)
        original = events[1]["data"]["node"]["childNodes"][0]["childNodes"][0][
            "childNodes"
        ][0]["attributes"]["src"]
        self.assertEqual(self.stored_image("small"), original)

    def test_an_oversized_event_is_stored_and_flagged(self) -> None:
        events = gallery_events(1024)
        text = {"type": 3, "textContent": "x" * (6 * 1024 * 1024), "id": 6}
        events[1]["data"]["node"]["childNodes"][0]["childNodes"][0][
            "childNodes"
        ].append(text)
        self.assertEqual(self.post(events, "huge-dom").status_code, 200)
        recording = Recording.objects.get(session_id="huge-dom")
        self.assertGreater(recording.largest_event_bytes, 6 * 1024 * 1024)
        self.assertEqual(recording.problems(), ["oversized events: one is 6 MiB"])

    def test_ordinary_recordings_are_not_flagged(self) -> None:
        self.assertEqual(self.post(gallery_events(1024), "fine").status_code, 200)
        self.assertEqual(Recording.objects.get(session_id="fine").problems(), [])
