from __future__ import annotations

from typing import Any

from recordings.models import Event, Person, Project
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded, full_session

EVENT_CAPTURES = [
    "09a-i-v0-e-exception",
    "09b-i-v0-e-rageclick-batch",
    "09c-i-v0-e-dead-click",
    "09d-i-v0-e-custom-event-beacon",
]


class EventCaptureTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)

    def test_it_stores_analytics_events_linked_to_their_session(self) -> None:
        for name in EVENT_CAPTURES:
            with self.subTest(name):
                response = captured(name).send(self.client)
                self.assertEqual(response.status_code, 200, response.content)
                for item in decoded(name)["batch"]:
                    event = Event.objects.get(uuid=item["uuid"])
                    self.assertEqual(event.name, item["event"])
                    self.assertEqual(event.project, self.project)
                    self.assertEqual(
                        event.session_id, item["properties"].get("$session_id", "")
                    )

    def test_it_stores_a_resent_request_once(self) -> None:
        request = captured("09b-i-v0-e-rageclick-batch")
        request.send(self.client)
        count = Event.objects.count()
        self.assertEqual(request.send(self.client).status_code, 200)
        self.assertEqual(Event.objects.count(), count)
        self.assertEqual(count, len(decoded("09b-i-v0-e-rageclick-batch")["batch"]))

    def test_it_rejects_an_unknown_api_key(self) -> None:
        Project.objects.all().delete()
        response = captured("09a-i-v0-e-exception").send(self.client)
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"], "invalid_token")
        self.assertEqual(Event.objects.count(), 0)


class PersonTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)

    def post_events(self, *events: dict[str, Any]) -> Any:
        body = {"api_key": FIXTURE_TOKEN, "batch": list(events)}
        return self.client.post("/i/v0/e/", data=body, content_type="application/json")

    def test_identify_from_the_real_session_creates_the_person(self) -> None:
        for request in full_session():
            if request.path in ("/e/", "/i/v0/e/"):
                self.assertEqual(request.send(self.client).status_code, 200)
        person = Person.objects.get(distinct_id="user-3b59bff5")
        self.assertEqual(person.properties["plan"], "pro")  # identify()'s $set
        # posthog-js's $set_once carries the first-touch properties.
        self.assertEqual(person.properties["$initial_referrer"], "$direct")
        self.assertEqual(
            person.anon_distinct_ids, ["01a202a4-578f-79d0-b21d-ba4c310931ee"]
        )

    def test_set_overwrites_and_set_once_does_not(self) -> None:
        first = {
            "event": "$set",
            "uuid": "e1",
            "timestamp": "2026-11-22T10:00:00Z",
            "properties": {
                "distinct_id": "jane",
                "$set": {"plan": "free"},
                "$set_once": {"signup": "2026-01"},
            },
        }
        second = {
            "event": "$set",
            "uuid": "e2",
            "timestamp": "2026-11-22T10:01:00Z",
            "properties": {
                "distinct_id": "jane",
                "$set": {"plan": "pro"},
                "$set_once": {"signup": "2026-09"},
            },
        }
        self.assertEqual(self.post_events(first, second).status_code, 200)
        person = Person.objects.get(distinct_id="jane")
        self.assertEqual(person.properties, {"plan": "pro", "signup": "2026-01"})
        self.assertEqual(self.post_events(first, second).status_code, 200)  # a retry
        self.assertEqual(
            Person.objects.get(distinct_id="jane").properties["plan"], "pro"
        )
