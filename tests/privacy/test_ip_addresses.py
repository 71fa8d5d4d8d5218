"""IP addresses are stored only when a project opts in, and then only the server's."""

from __future__ import annotations

import copy
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.test import Client, override_settings

from privacy.models import PrivacySettings
from recordings.models import Event, Person, Project
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, decoded, full_session

SENDER = "203.0.113.7"  # the address the request came from
CLAIMED = "198.51.100.23"  # what a client wrote into its events
PROXIED = "192.0.2.50"  # the browser behind a proxy


class IpAddressTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)
        self.browser = Client(REMOTE_ADDR=SENDER)

    def store_ips(self, on: bool) -> None:
        PrivacySettings.objects.update_or_create(
            project=self.project, defaults={"store_ip_addresses": on}
        )

    def send_session(self) -> None:
        """The real session's analytics requests, /e/ and /i/v0/e/, as sent."""
        sent = 0
        for request in full_session():
            if request.path in ("/e/", "/i/v0/e/"):
                self.assertEqual(request.send(self.browser).status_code, 200)
                sent += 1
        self.assertGreater(sent, 20)

    def send_claiming_an_ip(self, **headers: str) -> None:
        """A batch whose client put `$ip` into its events and person properties."""
        body: dict[str, Any] = copy.deepcopy(decoded("09b-i-v0-e-rageclick-batch"))
        for event in body["batch"]:
            event["uuid"] = "claim-" + event["uuid"]
            event["properties"]["$ip"] = CLAIMED
        identify = copy.deepcopy(body["batch"][0])
        identify.update(event="$identify", uuid="claim-identify")
        identify["properties"].update(
            {"distinct_id": "jane", "$anon_distinct_id": "anon"}
        )
        identify["$set"] = {"$ip": CLAIMED, "plan": "pro"}
        identify["$set_once"] = {"$ip": CLAIMED}
        body["batch"].append(identify)
        response = self.browser.post(
            "/i/v0/e/", data=body, content_type="application/json", headers=headers
        )
        self.assertEqual(response.status_code, 200)

    def database_dump(self) -> str:
        out = StringIO()
        call_command("dumpdata", stdout=out)
        return out.getvalue()

    def test_no_ip_is_stored_by_default_even_one_the_client_sent(self) -> None:
        self.send_session()
        self.send_claiming_an_ip(X_Forwarded_For=PROXIED)
        self.assertGreater(Event.objects.count(), 30)
        self.assertEqual(
            Person.objects.get(distinct_id="jane").properties["plan"], "pro"
        )
        dump = self.database_dump()
        self.assertIn("claim-identify", dump)  # the dump does hold the events
        for address in (SENDER, CLAIMED, PROXIED):
            self.assertNotIn(address, dump)

    def test_opted_in_each_event_and_the_person_get_the_senders_address(self) -> None:
        self.store_ips(True)
        self.send_session()
        self.send_claiming_an_ip()
        ips = {event.properties.get("$ip") for event in Event.objects.all()}
        self.assertEqual(ips, {SENDER})  # never what the client claimed
        person = Person.objects.get(distinct_id="jane")
        self.assertEqual(person.properties["$ip"], SENDER)
        self.assertNotIn(CLAIMED, self.database_dump())

    def test_x_forwarded_for_is_believed_only_when_a_proxy_is_trusted(self) -> None:
        self.store_ips(True)
        forwarded = f"{PROXIED}, 10.0.0.1"
        self.send_claiming_an_ip(X_Forwarded_For=forwarded)
        self.assertEqual(self.stored_ips(), {SENDER})
        Event.objects.all().delete()
        with override_settings(REPLAYHUB_TRUST_X_FORWARDED_FOR=True):
            self.send_claiming_an_ip(X_Forwarded_For=forwarded)
            self.assertEqual(self.stored_ips(), {PROXIED})
            Event.objects.all().delete()
            self.send_claiming_an_ip(X_Forwarded_For="unknown")
            self.assertEqual(self.stored_ips(), {SENDER})

    def test_a_person_loses_the_ip_when_the_project_stops_storing_them(self) -> None:
        self.store_ips(True)
        self.send_claiming_an_ip()
        self.assertEqual(Person.objects.get().properties["$ip"], SENDER)
        self.store_ips(False)
        Event.objects.all().delete()  # let the same batch in again
        self.send_claiming_an_ip()
        self.assertNotIn("$ip", Person.objects.get().properties)

    def stored_ips(self) -> set[Any]:
        return {event.properties.get("$ip") for event in Event.objects.all()}
