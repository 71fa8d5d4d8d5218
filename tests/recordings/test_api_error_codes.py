"""Every error of the management API carries a machine-readable code, in its schema."""

from __future__ import annotations

import json
from typing import Any

from recordings.access import Role
from recordings.models import ApiKey, Recording
from recordings.services.api_keys import api_key_create
from recordings.services.projects import role_grant
from tests.access import make_tenant
from tests.base import ReplayTestCase


class ApiErrorCodeTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.own = make_tenant(self.client, "zqalpha")
        self.other = make_tenant(self.client, "zqomega")
        role_grant(project=self.own.project, principal=self.alice, role=Role.ADMIN)

    def send(self, method: str, url: str, access_: str = "write") -> Any:
        key = ApiKey(user=self.alice, name="ci", access=access_)
        secret = api_key_create(key=key, projects=[self.own.project])
        headers = {"Authorization": f"Bearer {secret}"}
        return self.client.generic(method, url, headers=headers)

    def assertError(self, response: Any, status: int, code: str) -> None:
        self.assertEqual(response.status_code, status, response.content)
        self.assertEqual(response.json()["error"], code)
        self.assertTrue(response.json()["detail"])

    def test_it_answers_409_legal_hold_for_a_held_recording(self) -> None:
        recording = self.own.recording
        Recording.objects.filter(pk=recording.pk).update(legal_hold=True)
        response = self.send("DELETE", f"/api/v1/recordings/{recording.code}/")
        self.assertError(response, 409, "legal_hold")
        self.assertIn("legal hold", response.json()["detail"])
        self.assertTrue(Recording.objects.filter(pk=recording.pk).exists())

    def test_it_gives_every_other_error_a_code_too(self) -> None:
        own = f"/api/v1/recordings/{self.own.recording.code}/"
        other = f"/api/v1/recordings/{self.other.recording.code}/"
        self.assertError(self.client.get(own), 401, "not_authenticated")
        bad_key = self.client.get(own, headers={"Authorization": "Bearer rhk_x"})
        self.assertError(bad_key, 401, "authentication_failed")
        self.assertError(self.send("DELETE", own, "read"), 403, "permission_denied")
        self.assertError(self.send("GET", other), 404, "not_found")
        response = self.send("GET", "/api/v1/recordings/?started_after=yesterday")
        self.assertError(response, 400, "invalid")
        self.assertIn("started_after", response.json()["detail"])

    def test_the_schema_lists_each_operations_error_codes(self) -> None:
        schema = json.loads(self.client.get("/api/v1/schema/?format=json").content)
        delete = schema["paths"]["/api/v1/recordings/{code}/"]["delete"]
        self.assertEqual(self.codes(delete, "409"), ["legal_hold"])
        self.assertEqual(self.codes(delete, "404"), ["not_found"])
        self.assertIn("not_authenticated", self.codes(delete, "401"))
        export = schema["paths"]["/api/v1/recordings/{code}/export/"]["get"]
        self.assertEqual(self.codes(export, "503"), ["storage_unavailable"])
        listing = schema["paths"]["/api/v1/recordings/"]["get"]
        self.assertEqual(self.codes(listing, "400"), ["invalid", "invalid_filter"])
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                with self.subTest(path=path, method=method):
                    errors = [s for s in operation["responses"] if s >= "400"]
                    self.assertIn("401", errors)
                    for status in errors:
                        self.assertTrue(self.codes(operation, status))

    def codes(self, operation: dict[str, Any], status: str) -> list[str]:
        content = operation["responses"][status]["content"]["application/json"]
        codes: list[str] = content["schema"]["properties"]["error"]["enum"]
        return codes
