"""One request inflates to at most REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES in all:
the gzip body and the posthog `cv` fields inside it draw on one budget."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from recordings.ingest.parse import (
    Budget,
    IngestError,
    PayloadTooLarge,
    decode_body,
    parse_snapshot_request,
)
from recordings.models import Project, Recording
from tests.base import ReplayTestCase

MIB = 1 << 20
TOKEN = "phc_budget_test"


def packed_full_snapshot(text_bytes: int) -> dict[str, Any]:
    """A FullSnapshot compressed as posthog-js does: `data` gzipped, one char a byte."""
    data = {"node": {"type": 3, "textContent": "a" * text_bytes, "id": 1}}
    packed = gzip.compress(orjson.dumps(data), mtime=0).decode("latin-1")
    return {"type": 2, "data": packed, "timestamp": 1_795_340_661_622, "cv": "2024-10"}


def body(filler_bytes: int, inflated_bytes: int) -> bytes:
    """A gzip /s/ body that is `filler_bytes` of JSON itself (a property posthog
    would not send, padding) and carries a cv field inflating to `inflated_bytes`."""
    item = {
        "uuid": "01a202a4-67a2-7176-8e04-a651b43fda95",
        "event": "$snapshot",
        "properties": {
            "$session_id": "s-1",
            "$window_id": "w-1",
            "token": TOKEN,
            "$padding": "b" * filler_bytes,
            "$snapshot_data": [packed_full_snapshot(inflated_bytes)],
        },
    }
    return gzip.compress(orjson.dumps([item]), mtime=0)


def test_body_and_cv_fields_share_one_budget() -> None:
    raw = body(3 * MIB, 3 * MIB)  # each part alone fits in 4 MiB, together not
    assert decode_body(raw, max_decompressed=4 * MIB)  # the body alone fits
    budget = Budget(4 * MIB)
    payload = decode_body(raw, max_decompressed=budget)
    try:
        parse_snapshot_request(payload, max_decompressed=budget)
    except IngestError as exc:
        assert isinstance(exc, PayloadTooLarge)
    else:
        raise AssertionError("3 + 3 MiB inflated within a 4 MiB budget")
    # Each call on its own limit, as before: 3 MiB fits in 4 MiB.
    assert parse_snapshot_request(payload, max_decompressed=4 * MIB)


class CaptureBudgetTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        Project.objects.create(name="Shop", token=TOKEN)

    def post(self, raw: bytes) -> Any:
        return self.client.post("/s/", data=raw, content_type="text/plain")

    def test_a_request_over_the_budget_in_all_is_refused(self) -> None:
        with self.settings(REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES=4 * MIB):
            response = self.post(body(3 * MIB, 3 * MIB))
        self.assertEqual(response.status_code, 413, response.content)
        self.assertEqual(response.json()["error"], "decompressed_too_large")
        self.assertFalse(Recording.objects.exists())

    def test_a_request_within_the_budget_in_all_is_stored(self) -> None:
        with self.settings(REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES=4 * MIB):
            response = self.post(body(1 * MIB, 2 * MIB))
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(Recording.objects.count(), 1)
