from __future__ import annotations

from recordings.models import Event, Project
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded

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
