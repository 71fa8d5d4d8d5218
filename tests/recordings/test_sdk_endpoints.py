from __future__ import annotations

import json
import re
from typing import Any
from unittest import mock

from recordings.capture import sdk_config, sdk_views
from recordings.models import Project
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured


class RemoteConfigTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = Project.objects.create(name="Shop", token=FIXTURE_TOKEN)

    def config_from_script(self, script: str) -> Any:
        match = re.search(r"_POSTHOG_REMOTE_CONFIG\[(\".*?\")\]=(\{.*\});", script)
        assert match, script
        self.assertEqual(json.loads(match.group(1)), FIXTURE_TOKEN)
        return json.loads(match.group(2))

    def test_config_js_registers_a_config_that_turns_recording_on(self) -> None:
        response = captured("01-remote-config-js").send(self.client)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/javascript")
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")
        payload = self.config_from_script(response.content.decode())
        config = payload["config"]
        self.assertEqual(payload["siteApps"], [])
        self.assertEqual(config["sessionRecording"]["endpoint"], "/s/")
        self.assertIn("gzip-js", config["supportedCompression"])
        self.assertTrue(config["sessionRecording"]["masking"]["maskAllInputs"])

    def test_config_json_is_the_fallback(self) -> None:
        response = captured("02-remote-config-json").send(self.client)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")
        self.assertEqual(response.json(), sdk_config.remote_config(self.project))

    def test_a_disabled_project_tells_the_sdk_to_stop(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(recording_enabled=False)
        response = self.client.get(f"/array/{FIXTURE_TOKEN}/config")
        self.assertIs(response.json()["sessionRecording"], False)

    def test_an_unknown_token_gets_404(self) -> None:
        self.assertEqual(self.client.get("/array/phc_nope/config.js").status_code, 404)
        self.assertEqual(self.client.get("/array/phc_nope/config").status_code, 404)

    def test_an_unknown_token_is_answered_in_the_format_asked_for(self) -> None:
        # %00: PostgreSQL refuses a NUL in a query; 65 characters: over the column;
        # The script never echoes the token: one holding */ could end the comment.
        for token in ("phc_nope", "%00", f"{FIXTURE_TOKEN}%00", "x" * 65, "*x()"):
            with self.subTest(token=token):
                self.client.raise_request_exception = False
                script = self.client.get(f"/array/{token}/config.js")
                self.assertEqual(script.status_code, 404)
                self.assertEqual(script["Content-Type"], "text/javascript")
                self.assertEqual(script.content, sdk_views.UNKNOWN_TOKEN_JS.encode())
                self.assertEqual(script["Access-Control-Allow-Origin"], "*")
                config = self.client.get(f"/array/{token}/config")
                self.assertEqual(config.status_code, 404)
                self.assertEqual(config.json()["error"], "invalid_token")
                self.assertEqual(config["Access-Control-Allow-Origin"], "*")

    def test_flags_answers_no_flags(self) -> None:
        response = captured("03-flags-gzip").send(self.client)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["flags"], {})
        self.assertIs(response.json()["errorsWhileComputingFlags"], False)


class PosthogAssetTests(ReplayTestCase):
    def test_it_serves_the_lazy_bundles_with_cors(self) -> None:
        version = sdk_config.posthog_version()
        self.assertTrue(version)
        for url in (
            f"/static/{version}/lazy-recorder.js",
            f"/static/lazy-recorder.js?v={version}",
            f"/static/{version}/dead-clicks-autocapture.js",
            f"/static/{version}/exception-autocapture.js",
            "/static/array.js",
        ):
            with self.subTest(url):
                response = self.client.get(url, headers={"Origin": "http://shop.test"})
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response["Content-Type"], "text/javascript")
                self.assertEqual(response["Access-Control-Allow-Origin"], "*")
                name = url.split("?")[0].rsplit("/", 1)[1]
                disk = (sdk_config.posthog_dist() / name).read_bytes()
                self.assertEqual(response.getvalue(), disk)

    def test_versioned_bundles_are_cached_for_good(self) -> None:
        version = sdk_config.posthog_version()
        response = self.client.get(f"/static/{version}/lazy-recorder.js")
        self.assertIn("immutable", response["Cache-Control"])

    def test_it_refuses_names_outside_the_package(self) -> None:
        for url in (
            "/static/..%2Fpackage.json",
            "/static/nope.js",
            "/static/1.0.0/..%2F..%2Fpackage.json",
            "/static/lazy-recorder.js.map%00.js",
        ):
            with self.subTest(url):
                self.assertEqual(self.client.get(url).status_code, 404)


class HealthTests(ReplayTestCase):
    def test_it_reports_database_cache_and_broker(self) -> None:
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        expected = {"status": "ok", "database": "ok", "cache": "ok", "broker": "ok"}
        self.assertEqual(response.json(), expected)

    def test_it_answers_503_when_the_broker_is_down(self) -> None:
        from kombu.connection import Connection

        from replayhub.celery import app

        dead = Connection("redis://127.0.0.1:1/0", connect_timeout=1)
        with mock.patch.object(app, "connection_for_write", return_value=dead):
            response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["broker"], "error")
        self.assertEqual(response.json()["database"], "ok")
