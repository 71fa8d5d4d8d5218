"""The demo page: records itself into the demo project, and names no other project."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import reverse

from recordings.models import Project
from tests.base import ReplayTestCase


def posthog_init(html: str) -> Any:
    match = re.search(r'id="posthog-init"[^>]*>(.*?)</script>', html)
    assert match, html
    return json.loads(match.group(1))


class DemoPageTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        # Alice's shop is a tenant; the demo project is another one, marked so.
        self.demo = Project.objects.create(name="Demo", is_demo=True)

    def test_it_loads_posthog_pointed_at_this_server(self) -> None:
        response = self.client.get("/demo/", headers={"Host": "localhost"})
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertIn('src="http://localhost/static/array.js"', html)
        self.assertEqual(
            posthog_init(html),
            {
                "token": self.demo.token,
                "api_host": "http://localhost",
                "session_recording": {},
            },
        )

    def test_it_never_names_another_project_whatever_the_token(self) -> None:
        for query in ("", f"?token={self.project.token}", "?token=nope"):
            with self.subTest(query=query):
                response = self.client.get(f"/demo/{query}")
                self.assertEqual(response.status_code, 200)
                html = response.content.decode().replace(self.project.token, "")
                self.assertNotIn("Alice", html)
                self.assertEqual(posthog_init(html)["token"], self.demo.token)

    def test_without_a_demo_project_it_shows_no_project_at_all(self) -> None:
        self.demo.delete()
        response = self.client.get("/demo/")
        self.assertEqual(response.status_code, 404)
        html = response.content.decode()
        self.assertIn("Demo project", html)  # says how to get one
        self.assertNotIn(self.project.token, html)
        self.assertNotIn("Alice", html)

    def test_a_demo_project_with_recording_off_is_not_used(self) -> None:
        self.demo.recording_enabled = False
        self.demo.save()
        self.assertEqual(self.client.get("/demo/").status_code, 404)

    @override_settings(REPLAYHUB_DEMO_PAGE=False)
    def test_it_is_not_there_when_the_setting_is_off(self) -> None:
        response = self.client.get("/demo/")
        self.assertEqual(response.status_code, 404)
        self.assertNotIn(self.demo.token, response.content.decode())


class DemoProjectFlagTests(ReplayTestCase):
    """Only superusers choose the demo project, and there is one at most."""

    def setUp(self) -> None:
        super().setUp()
        self.url = reverse("admin:recordings_project_change", args=[self.project.pk])

    def change(self, user: User, **fields: str) -> Any:
        self.client.force_login(user)
        data = {"name": self.project.name, "recording_enabled": "on", **fields}
        return self.client.post(self.url, data)

    def test_a_project_admin_cannot_make_their_project_the_demo(self) -> None:
        self.assertEqual(self.change(self.alice, is_demo="on").status_code, 302)
        self.project.refresh_from_db()
        self.assertFalse(self.project.is_demo)

    def test_a_superuser_marks_the_demo_project_and_only_one(self) -> None:
        root = self.make_root()
        self.assertEqual(self.change(root, is_demo="on").status_code, 302)
        self.project.refresh_from_db()
        self.assertTrue(self.project.is_demo)
        other = Project.objects.create(name="Other")
        self.client.force_login(root)
        response = self.client.post(
            reverse("admin:recordings_project_change", args=[other.pk]),
            {"name": "Other", "recording_enabled": "on", "is_demo": "on"},
        )
        self.assertContains(response, "Another project is the demo project already.")
        other.refresh_from_db()
        self.assertFalse(other.is_demo)
