from __future__ import annotations

import doctest
from typing import Any

import privacy.rules
from privacy.models import PrivacySettings
from privacy.rules import person_excluded
from recordings.models import Recording, SessionLedger
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded, send_rrweb

RULES = [{"property": "email_domain", "value": "replayhub.test"}]


def test_the_doctests_hold() -> None:
    assert doctest.testmod(privacy.rules).failed == 0


def test_values_compare_as_strings_and_missing_properties_never_match() -> None:
    assert person_excluded(
        {"employee_id": 42}, [{"property": "employee_id", "value": "42"}]
    )
    assert not person_excluded({}, RULES)
    assert not person_excluded({"email_domain": "example.com"}, RULES)
    assert not person_excluded(
        {"email_domain": "replayhub.test"}, [{"value": "x"}, "junk"]
    )


class ExcludedPersonTests(ReplayTestCase):
    """ "Do not record when person property P equals V", e.g. internal users."""

    def setUp(self) -> None:
        super().setUp()
        self.project.token = FIXTURE_TOKEN
        self.project.save()
        PrivacySettings.objects.create(project=self.project, excluded_people=RULES)
        self.snapshots = captured("04-s-gzip-fullsnapshot")
        self.distinct_id = decoded("04-s-gzip-fullsnapshot")[0]["properties"][
            "distinct_id"
        ]

    def identify(self, properties: dict[str, Any]) -> None:
        event = {
            "event": "$set",
            "uuid": f"set-{len(properties)}-{sorted(properties)}",
            "timestamp": "2026-11-22T09:44:30Z",
            "properties": {"distinct_id": self.distinct_id, "$set": properties},
        }
        body = {"api_key": FIXTURE_TOKEN, "batch": [event]}
        response = self.client.post(
            "/i/v0/e/", data=body, content_type="application/json"
        )
        self.assertEqual(response.status_code, 200)

    def test_a_session_under_the_rule_is_not_taken_nor_kept_when_it_ends(
        self,
    ) -> None:
        # The rule was there before the session: identify() comes after the first
        # batches, which are discarded when the session ends (compaction).
        self.assertEqual(self.snapshots.send(self.client).status_code, 200)
        self.identify({"email_domain": "replayhub.test"})
        response = captured("05-s-gzip-incremental-console-network").send(self.client)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["error"], "excluded_person")
        recording_compact(recording=Recording.objects.get())
        self.assertFalse(Recording.objects.exists())
        self.assertEqual(self.stored_blobs(), [])
        ledger = SessionLedger.objects.get()
        self.assertEqual(ledger.refusals["excluded_person"], 2 + 1)  # batches, discard

    def test_other_people_are_recorded(self) -> None:
        self.identify({"email_domain": "customer.test"})
        self.assertEqual(self.snapshots.send(self.client).status_code, 200)
        self.assertTrue(Recording.objects.exists())


def page(href: str, ts: int) -> list[dict[str, Any]]:
    document = {"type": 0, "childNodes": [], "id": 1}
    return [
        {
            "type": 4,
            "timestamp": ts,
            "data": {"href": href, "width": 800, "height": 600},
        },
        {
            "type": 2,
            "timestamp": ts + 1,
            "data": {"node": document, "initialOffset": {"left": 0, "top": 0}},
        },
    ]


def click(ts: int) -> dict[str, Any]:
    return {
        "type": 3,
        "timestamp": ts,
        "data": {"source": 2, "type": 2, "id": 1, "x": 1, "y": 1},
    }


class UrlBlocklistTests(ReplayTestCase):
    T0 = 1_790_000_000_000

    def setUp(self) -> None:
        super().setUp()
        PrivacySettings.objects.create(project=self.project, url_blocklist="/checkout")

    def send(self, batch_id: str, events: list[dict[str, Any]]) -> None:
        send_rrweb(self.client, self.project.token, batch_id, events)

    def test_pages_on_a_blocklisted_url_are_not_kept_across_batches(self) -> None:
        t = self.T0
        self.send("1", [*page("https://shop.test/home", t), click(t + 10)])
        self.send(
            "2", [*page("https://shop.test/checkout?step=2", t + 100), click(t + 110)]
        )
        self.send("3", [click(t + 120)])  # still on the checkout page
        self.send("4", [*page("https://shop.test/thanks", t + 200), click(t + 210)])
        recording = Recording.objects.get()
        stored = recording_events(recording=recording)
        hrefs = [e["data"]["href"] for e in stored if e["type"] == 4]
        self.assertEqual(hrefs, ["https://shop.test/home", "https://shop.test/thanks"])
        self.assertEqual(
            [e["timestamp"] for e in stored],
            [t, t + 1, t + 10, t + 200, t + 201, t + 210],
        )
        self.assertEqual(recording.click_count, 2)
        self.assertNotIn("checkout", str(stored))
