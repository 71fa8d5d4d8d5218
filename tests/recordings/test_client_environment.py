"""Capture keeps what a request says of the browser, never its address: the
User-Agent (plain rrweb sends no browser properties) and the country."""

from __future__ import annotations

import json
import tempfile
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from recordings.capture.endpoints import USER_AGENT_MAX
from recordings.models import Recording
from recordings.services.compaction import recording_compact
from tests.base import ReplayTestCase
from tests.capture import session_events

FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
)
ADDRESS = "203.0.113.7"


class ClientEnvironmentTests(ReplayTestCase):
    def send(self, session: str = "s", **headers: str) -> Recording:
        body = {
            "token": self.project.token,
            "session_id": session,
            "batch_id": f"{session}-1",
            "events": session_events("main.0"),
        }
        response = self.client.post(
            "/api/v1/ingest/rrweb/",
            json.dumps(body),
            content_type="application/json",
            headers=headers,
            REMOTE_ADDR=ADDRESS,
        )
        self.assertEqual(response.status_code, 200, response.content)
        return Recording.objects.get(session_id=session)

    def test_a_plain_rrweb_recording_gets_its_browser_from_the_user_agent(
        self,
    ) -> None:
        recording = self.send(**{"User-Agent": FIREFOX_ON_WINDOWS})
        self.assertEqual(recording.user_agent, FIREFOX_ON_WINDOWS)
        recording_compact(recording=recording)
        recording.refresh_from_db()
        self.assertEqual(recording.browser, "Firefox")
        self.assertTrue(recording.browser_version.startswith("133"))
        self.assertEqual(recording.os, "Windows")
        self.assertEqual(recording.device_type, "Desktop")
        self.assertTrue(recording.viewport_width)  # from the page's Meta event

    def test_no_country_without_a_header_or_database(self) -> None:
        self.assertEqual(self.send(**{"CF-IPCountry": "DE"}).country, "")

    @override_settings(REPLAYHUB_COUNTRY_HEADER="CF-IPCountry")
    def test_the_trusted_proxy_header_names_the_country(self) -> None:
        self.assertEqual(self.send("a", **{"CF-IPCountry": "de"}).country, "DE")
        self.assertEqual(self.send("b", **{"CF-IPCountry": "XX"}).country, "")
        self.assertEqual(self.send("c", **{"CF-IPCountry": "Germany"}).country, "")
        self.assertEqual(self.send("d").country, "")

    def test_the_ip_database_names_the_country_and_the_address_is_not_kept(
        self,
    ) -> None:
        database = Path(self.enterContext(tempfile.TemporaryDirectory())) / "c.mmdb"
        writer = MMDBWriter(ip_version=4, database_type="GeoLite2-Country")
        writer.insert_network(
            IPSet(["203.0.113.0/24"]), {"country": {"iso_code": "NL"}}
        )
        writer.to_db_file(str(database))
        with override_settings(REPLAYHUB_GEOIP_DATABASE=str(database)):
            recording = self.send()
        self.assertEqual(recording.country, "NL")
        dump = StringIO()
        call_command("dumpdata", "recordings", stdout=dump)
        self.assertNotIn(ADDRESS, dump.getvalue())

    def test_an_unreadable_database_costs_no_batch(self) -> None:
        with (
            override_settings(REPLAYHUB_GEOIP_DATABASE="/nonexistent/country.mmdb"),
            self.assertLogs("recordings.capture.geo", "ERROR"),
        ):
            self.assertEqual(self.send().country, "")

    def test_a_user_agent_too_long_or_holding_a_nul_costs_no_batch(self) -> None:
        column = Recording._meta.get_field("user_agent")
        self.assertEqual(column.max_length, USER_AGENT_MAX)
        long = self.send("long", **{"User-Agent": "x" * (USER_AGENT_MAX + 100)})
        self.assertEqual(long.user_agent, "x" * USER_AGENT_MAX)
        nul = self.send("nul", **{"User-Agent": "Mozilla/5.0 \x00 evil"})
        self.assertEqual(nul.user_agent, "Mozilla/5.0 \ufffd evil")
