from __future__ import annotations

import doctest
from typing import Any

import privacy.rules
from privacy.models import PrivacySettings
from privacy.rules import person_excluded
from recordings.models import Recording, SessionLedger
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded

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

    def test_an_excluded_persons_recording_is_deleted_and_no_longer_taken(self) -> None:
        self.assertEqual(self.snapshots.send(self.client).status_code, 200)
        self.assertTrue(Recording.objects.exists())
        self.identify({"email_domain": "replayhub.test"})
        self.assertFalse(Recording.objects.exists())
        self.assertEqual(self.stored_blobs(), [])
        response = captured("05-s-gzip-incremental-console-network").send(self.client)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["error"], "excluded_person")
        self.assertFalse(Recording.objects.exists())
        ledger = SessionLedger.objects.get()
        self.assertEqual(ledger.refusals["excluded_person"], 1 + 2)  # purge + 2 batches

    def test_other_people_are_recorded(self) -> None:
        self.identify({"email_domain": "customer.test"})
        self.assertEqual(self.snapshots.send(self.client).status_code, 200)
        self.assertTrue(Recording.objects.exists())
