"""Property: whatever a client sends, capture answers 200 or a 4xx JSON error."""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from recordings.models import Project
from tests.capture import FIXTURE_TOKEN

REFUSALS = {400, 401, 403, 413}
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
rrweb_events = st.fixed_dictionaries(
    {
        "type": st.integers(-1, 10) | json_values,
        "timestamp": st.integers(0, 2**53) | st.floats() | json_values,
    },
    optional={
        "data": st.fixed_dictionaries(
            {},
            optional={
                "source": st.integers(-1, 20),
                "type": st.integers(-1, 12),
                "href": json_values,
                "node": json_values,
                "level": json_values,
                "plugin": st.sampled_from(["rrweb/console@1", "x"]),
            },
        )
        | json_values,
        "cv": st.sampled_from(["2024-10", "1999"]),
    },
)
snapshots = st.lists(
    st.fixed_dictionaries(
        {
            "event": st.sampled_from(["$snapshot", "$pageview"]) | json_values,
            "uuid": st.uuids().map(str) | json_values,
            "properties": st.fixed_dictionaries(
                {
                    "$session_id": st.text(min_size=1, max_size=30) | json_values,
                    "$snapshot_data": st.lists(rrweb_events, max_size=6) | json_values,
                    "token": st.just(FIXTURE_TOKEN) | json_values,
                },
                optional={"$window_id": json_values, "distinct_id": json_values},
            )
            | json_values,
        }
    ),
    max_size=3,
)


class CaptureFuzzTests(TestCase):
    def setUp(self) -> None:
        Project.objects.get_or_create(token=FIXTURE_TOKEN, defaults={"name": "Shop"})

    def assert_answered(self, response: Any) -> None:
        self.assertTrue(
            response.status_code == 200 or response.status_code in REFUSALS,
            (response.status_code, response.content[:300]),
        )
        if response.status_code != 200:
            self.assertIn("error", response.json())

    @FUZZ
    @given(
        body=st.binary(max_size=2000),
        content_type=st.sampled_from(
            ["text/plain", "application/json", "application/x-www-form-urlencoded"]
        ),
    )
    def test_arbitrary_bytes(self, body: bytes, content_type: str) -> None:
        self.assert_answered(
            self.client.post("/s/", data=body, content_type=content_type)
        )

    @FUZZ
    @given(payload=snapshots, compress=st.booleans())
    def test_near_valid_snapshot_batches(self, payload: Any, compress: bool) -> None:
        body = json.dumps(payload).encode()
        body = gzip.compress(body) if compress else body
        self.assert_answered(
            self.client.post("/s/", data=body, content_type="text/plain")
        )

    @FUZZ
    @given(
        payload=st.fixed_dictionaries(
            {
                "token": st.just(FIXTURE_TOKEN) | json_values,
                "session_id": json_values | st.text(min_size=1),
                "events": st.lists(rrweb_events, max_size=6) | json_values,
            },
            optional={"batch_id": json_values, "window_id": json_values},
        )
        | json_values
    )
    def test_plain_rrweb_batches(self, payload: Any) -> None:
        response = self.client.post(
            "/api/v1/ingest/rrweb/",
            data=json.dumps(payload),
            content_type="application/json",
        )
        self.assert_answered(response)

    @FUZZ
    @given(
        payload=st.fixed_dictionaries(
            {
                "api_key": st.just(FIXTURE_TOKEN) | json_values,
                "batch": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["event", "uuid", "timestamp", "properties", "$set"]
                        ),
                        json_values,
                    ),
                    max_size=4,
                )
                | json_values,
            }
        )
        | json_values
    )
    def test_analytics_events(self, payload: Any) -> None:
        response = self.client.post(
            "/i/v0/e/", data=json.dumps(payload), content_type="application/json"
        )
        self.assert_answered(response)
