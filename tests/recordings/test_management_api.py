"""The management API: scoped lists, snapshot data, export, delete, API keys, schema."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.timezone import now

from privacy.models import PrivacyAuditEntry
from recordings.access import Role
from recordings.models import ApiKey, Recording
from recordings.services.api_keys import api_key_create, api_key_revoke, api_keys_narrow
from recordings.services.projects import role_grant
from recordings.services.storage import recording_events, recordings_hold
from tests.access import make_tenant
from tests.base import ReplayTestCase


class TenantsTestCase(ReplayTestCase):
    """alice's project (bob her viewer) and charlie's, each with a recording."""

    project_name = "zqalpha project"

    def setUp(self) -> None:
        super().setUp()
        self.own = make_tenant(self.client, "zqalpha", self.project)
        charlies = self.make_charlies_project("zqomega project")
        self.other = make_tenant(self.client, "zqomega", charlies)


class ManagementApiTests(TenantsTestCase):
    def key_for(self, user: User, access_: str = "read", **fields: Any) -> str:
        key = ApiKey(user=user, name="ci", access=access_, **fields)
        return api_key_create(key=key, projects=[self.own.project])

    def get(self, url: str, secret: str) -> Any:
        return self.client.get(url, headers={"Authorization": f"Bearer {secret}"})

    def test_it_lists_only_projects_the_key_user_has_a_role_on(self) -> None:
        response = self.get("/api/v1/projects/", self.key_for(self.bob))
        self.assertEqual(response.status_code, 200)
        rows = response.json()["results"]
        self.assertEqual([r["name"] for r in rows], ["zqalpha project"])
        self.assertEqual(rows[0]["role"], "viewer")
        self.assertEqual(rows[0]["recording_count"], 1)

    def test_it_lists_recordings_with_filters(self) -> None:
        secret = self.key_for(self.bob)
        rows = self.get("/api/v1/recordings/", secret).json()["results"]
        self.assertEqual([r["session_id"] for r in rows], ["zqalpha-session"])
        self.assertEqual(rows[0]["project"], str(self.own.project.code))
        self.assertEqual(rows[0]["problems"], [])
        self.assertTrue(rows[0]["player_url"].endswith("/play/"))
        filtered = self.get("/api/v1/recordings/?distinct_id=nobody", secret).json()
        self.assertEqual(filtered["results"], [])
        other = f"/api/v1/recordings/?project={self.other.project.code}"
        self.assertEqual(self.get(other, secret).json()["results"], [])

    def test_snapshots_are_the_stored_events(self) -> None:
        recording = self.own.recording
        url = f"/api/v1/recordings/{recording.code}/snapshots/"
        response = self.get(url, self.key_for(self.bob))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), recording_events(recording=recording))

    def test_export_is_a_download_of_metadata_and_every_window(self) -> None:
        recording = self.own.recording
        url = f"/api/v1/recordings/{recording.code}/export/"
        response = self.get(url, self.key_for(self.bob))
        self.assertEqual(response.status_code, 200)
        self.assertIn("attachment;", response["Content-Disposition"])
        doc = json.loads(response.getvalue())
        self.assertEqual(doc["recording"]["session_id"], "zqalpha-session")
        self.assertEqual(
            doc["windows"]["zqalpha-window"],
            recording_events(recording=recording),
        )
        self.assertEqual((doc["format"], doc["version"]), ("replayhub-recording", 1))
        self.assertEqual(len(doc["markers"]), recording.markers.count())
        self.assertEqual(
            [e["name"] for e in doc["events"]], ["zqalpha-event"]
        )  # the session's analytics events
        self.assertEqual(doc["person"]["distinct_id"], "zqalpha-person")

    def test_an_export_of_a_held_recording_by_key_is_audited(self) -> None:
        recording = self.own.recording
        recordings_hold(recordings=[recording], hold=True, actor=None)
        url = f"/api/v1/recordings/{recording.code}/export/"
        self.get(url, self.key_for(self.bob)).getvalue()
        entry = PrivacyAuditEntry.objects.filter(
            changes__has_key="legal_hold_export"
        ).get()
        self.assertEqual((entry.actor, entry.actor_name), (self.bob, "bob"))
        self.assertEqual(entry.changes["recordings"], [None, [str(recording.code)]])

    def test_another_projects_recording_is_404_not_403(self) -> None:
        url = f"/api/v1/recordings/{self.other.recording.code}/"
        response = self.get(url, self.key_for(self.bob))
        self.assertEqual(response.status_code, 404)

    def test_a_viewer_cannot_delete_and_an_admin_key_can(self) -> None:
        url = f"/api/v1/recordings/{self.own.recording.code}/"
        bob_write = self.key_for(self.bob, "write")
        response = self.client.delete(
            url, headers={"Authorization": f"Bearer {bob_write}"}
        )
        self.assertEqual(response.status_code, 403)
        read_only = self.key_for(self.alice)  # the project's admin, read-only key
        response = self.client.delete(
            url, headers={"Authorization": f"Bearer {read_only}"}
        )
        self.assertEqual(response.status_code, 403)
        self.assertTrue(Recording.objects.filter(pk=self.own.recording.pk).exists())
        stored_before = len(self.stored_data())
        write = self.key_for(self.alice, "write")
        response = self.client.delete(url, headers={"Authorization": f"Bearer {write}"})
        self.assertEqual(response.status_code, 204)
        self.assertFalse(Recording.objects.filter(pk=self.own.recording.pk).exists())
        self.assertLess(len(self.stored_data()), stored_before)

    def test_a_revoked_or_expired_or_unknown_key_gets_401(self) -> None:
        secret = self.key_for(self.bob)
        key = ApiKey.objects.get(user=self.bob)
        api_key_revoke(key=key)
        response = self.get("/api/v1/projects/", secret)
        self.assertEqual(response.status_code, 401)
        self.assertIn("revoked", response.json()["detail"])
        expired = self.key_for(self.bob, expires=now() - dt.timedelta(seconds=1))
        self.assertEqual(self.get("/api/v1/projects/", expired).status_code, 401)
        self.assertEqual(self.get("/api/v1/projects/", "rhk_nope").status_code, 401)
        response = self.client.get("/api/v1/projects/")
        self.assertEqual(response.status_code, 401)
        self.assertIn("Bearer", response["WWW-Authenticate"])

    def test_a_key_reaches_only_its_projects_even_for_a_superuser(self) -> None:
        root = self.make_root()
        secret = self.key_for(root)
        rows = self.get("/api/v1/recordings/", secret).json()["results"]
        self.assertEqual([r["session_id"] for r in rows], ["zqalpha-session"])

    def test_a_key_cannot_be_made_for_a_project_its_user_cannot_see(self) -> None:
        key = ApiKey(user=self.bob, name="sneaky")
        with self.assertRaises(PermissionDenied):
            api_key_create(key=key, projects=[self.other.project])
        self.assertFalse(ApiKey.objects.filter(name="sneaky").exists())

    def test_losing_the_role_takes_the_keys_reach_away(self) -> None:
        secret = self.key_for(self.bob)
        role_grant(project=self.other.project, principal=self.bob, role=Role.VIEWER)
        role_grant(project=self.own.project, principal=self.bob, role=None)
        self.assertEqual(self.get("/api/v1/recordings/", secret).json()["results"], [])
        # With no role left anywhere the key is refused outright.
        role_grant(project=self.other.project, principal=self.bob, role=None)
        self.assertEqual(self.get("/api/v1/recordings/", secret).status_code, 401)

    def test_only_a_hash_of_the_key_is_stored(self) -> None:
        secret = self.key_for(self.bob)
        key = ApiKey.objects.get(user=self.bob)
        self.assertNotIn(secret, json.dumps(list(ApiKey.objects.values()), default=str))
        self.assertTrue(secret.startswith(key.prefix))
        self.get("/api/v1/projects/", secret)
        key.refresh_from_db()
        self.assertIsNotNone(key.last_used)

    def test_the_schema_documents_the_api_and_its_authentication(self) -> None:
        response = self.client.get("/api/v1/schema/?format=json")
        self.assertEqual(response.status_code, 200)
        schema = json.loads(response.content)
        self.assertEqual(
            schema["components"]["securitySchemes"]["apiKey"]["scheme"], "bearer"
        )
        self.assertIn("/api/v1/recordings/{code}/export/", schema["paths"])
        self.assertNotIn("/s/", schema["paths"])
        docs = self.client.get("/api/v1/docs/")
        self.assertEqual(docs.status_code, 200)
        self.assertIn(b"swagger-ui", docs.content)

    def test_a_capture_token_reads_nothing(self) -> None:
        token = self.own.project.token
        code = self.own.recording.code
        for url in (
            "/api/v1/projects/",
            "/api/v1/recordings/",
            f"/api/v1/recordings/{code}/snapshots/",
            f"/api/v1/recordings/{code}/export/",
        ):
            for response in (
                self.get(url, token),
                self.client.get(f"{url}?token={token}"),
                self.client.get(url, headers={"X-API-Key": token}),
            ):
                self.assertEqual(response.status_code, 401, url)
                self.assertNotIn(b"zqalpha", response.content)


class ApiKeyScopeTests(TenantsTestCase):
    """A key reaches its projects only while its user does; a lost one stays lost."""

    def setUp(self) -> None:
        super().setUp()
        # bob watches charlie's project too, and holds a key for both.
        role_grant(project=self.other.project, principal=self.bob, role=Role.VIEWER)
        key = ApiKey(user=self.bob, name="ci")
        projects = [self.own.project, self.other.project]
        self.secret = api_key_create(key=key, projects=projects)
        self.key = key

    def listed(self) -> list[str]:
        headers = {"Authorization": f"Bearer {self.secret}"}
        response = self.client.get("/api/v1/projects/", headers=headers)
        return [row["name"] for row in response.json()["results"]]

    def scope(self) -> list[str]:
        return sorted(p.name for p in self.key.projects.all())

    def test_a_removed_role_leaves_the_key_and_does_not_come_back(self) -> None:
        role_grant(project=self.own.project, principal=self.bob, role=None)
        self.assertEqual(self.listed(), ["zqomega project"])
        self.assertEqual(self.scope(), ["zqomega project"])
        role_grant(project=self.own.project, principal=self.bob, role=Role.ADMIN)
        self.assertEqual(self.listed(), ["zqomega project"])
        recording = f"/api/v1/recordings/{self.own.recording.code}/"
        headers = {"Authorization": f"Bearer {self.secret}"}
        self.assertEqual(self.client.get(recording, headers=headers).status_code, 404)

    def test_a_downgrade_keeps_the_project_in_the_key(self) -> None:
        role_grant(project=self.own.project, principal=self.bob, role=Role.ADMIN)
        role_grant(project=self.own.project, principal=self.bob, role=Role.EDITOR)
        self.assertEqual(self.scope(), ["zqalpha project", "zqomega project"])

    def test_a_group_losing_its_role_narrows_its_members_keys(self) -> None:
        group = Group.objects.create(name="support")
        self.charlie.groups.add(group)
        role_grant(project=self.own.project, principal=group, role=Role.VIEWER)
        key = ApiKey(user=self.charlie, name="charlie's")
        api_key_create(key=key, projects=[self.own.project])
        role_grant(project=self.own.project, principal=group, role=None)
        self.assertFalse(key.projects.exists())
        self.assertEqual(self.scope(), ["zqalpha project", "zqomega project"])

    def test_leaving_a_group_in_the_user_admin_narrows_the_keys(self) -> None:
        root = self.make_root()
        group = Group.objects.create(name="support")
        role_grant(project=self.own.project, principal=group, role=Role.VIEWER)
        role_grant(project=self.own.project, principal=self.bob, role=None)
        self.bob.groups.add(group)
        key = ApiKey(user=self.bob, name="via group")
        api_key_create(key=key, projects=[self.own.project])
        self.client.force_login(root)
        joined = self.bob.date_joined
        response = self.client.post(
            reverse("admin:auth_user_change", args=[self.bob.pk]),
            {
                "username": "bob",
                "is_active": "on",
                "date_joined_0": f"{joined:%Y-%m-%d}",
                "date_joined_1": f"{joined:%H:%M:%S}",
            },  # no groups: bob leaves "support"
        )
        self.assertEqual(response.status_code, 302)
        self.assertFalse(key.projects.exists())

    def test_the_key_list_names_only_projects_the_key_still_reaches(self) -> None:
        role_grant(project=self.own.project, principal=self.bob, role=None)
        self.client.force_login(self.bob)
        page = self.client.get(reverse("admin:recordings_apikey_changelist"))
        self.assertContains(page, "zqomega project")
        self.assertNotContains(page, "zqalpha")
        change = reverse("admin:recordings_apikey_change", args=[self.key.pk])
        self.assertNotContains(self.client.get(change), "zqalpha")

    def test_a_suspension_keeps_the_scope_for_when_the_person_comes_back(self) -> None:
        self.bob.is_active = False
        self.bob.save()
        self.assertEqual(api_keys_narrow(user=self.bob), 0)
        self.bob.is_active = True
        self.bob.save()
        self.assertEqual(self.listed(), ["zqalpha project", "zqomega project"])
