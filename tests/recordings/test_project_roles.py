"""Roles per project: granted in the admin to users and groups, and what they open."""

from __future__ import annotations

import re

from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse

from recordings import access
from recordings.access import Role
from recordings.models import ApiKey, Project
from recordings.services.projects import role_grant
from tests.access import make_tenant
from tests.base import ReplayTestCase


class ProjectRoleTests(ReplayTestCase):
    """alice administers the own tenant, bob views it, charlie has no role at all.

    The other tenant is nobody's here: charlie must reach no project for the tests
    of what alone opens one (a group, a model-wide permission).
    """

    project_name = "zqalpha project"

    def setUp(self) -> None:
        super().setUp()
        self.own = make_tenant(self.client, "zqalpha", self.project)
        self.other = make_tenant(self.client, "zqomega")

    def test_a_role_grants_exactly_its_permissions_and_can_be_changed(self) -> None:
        project = self.own.project
        role_grant(project=project, principal=self.bob, role=Role.ADMIN)
        self.assertEqual(access.role_of(self.bob, project), Role.ADMIN)
        self.assertTrue(access.can(self.bob, access.MANAGE_PRIVACY, project))
        role_grant(project=project, principal=self.bob, role=Role.VIEWER)
        self.assertEqual(access.role_of(self.bob, project), Role.VIEWER)
        self.assertFalse(access.can(self.bob, access.MANAGE_PRIVACY, project))
        self.assertFalse(access.can(self.bob, access.CURATE, project))
        self.assertTrue(access.can(self.bob, access.VIEW_RECORDINGS, project))
        self.assertFalse(
            access.can(self.bob, access.VIEW_RECORDINGS, self.other.project)
        )
        role_grant(project=project, principal=self.bob, role=None)
        self.assertIsNone(access.role_of(self.bob, project))
        self.assertFalse(access.projects_for(self.bob, access.VIEW_PROJECT).exists())

    def test_a_group_role_reaches_its_members(self) -> None:
        group = Group.objects.create(name="support")
        self.charlie.groups.add(group)
        role_grant(project=self.own.project, principal=group, role=Role.EDITOR)
        self.assertTrue(access.can(self.charlie, access.CURATE, self.own.project))
        self.assertEqual(
            list(access.projects_for(self.charlie, access.VIEW_RECORDINGS)),
            [self.own.project],
        )

    def test_a_model_wide_permission_does_not_open_every_project(self) -> None:
        perm = Permission.objects.get(codename="view_recordings")
        self.charlie.user_permissions.add(perm)
        charlie = User.objects.get(pk=self.charlie.pk)  # drop the permission cache
        self.assertTrue(charlie.has_perm("recordings.view_recordings"))
        self.assertFalse(access.can(charlie, access.VIEW_RECORDINGS, self.own.project))
        self.assertFalse(access.projects_for(charlie, access.VIEW_RECORDINGS).exists())

    def test_an_inactive_member_reaches_nothing(self) -> None:
        self.assertTrue(access.can(self.alice, access.VIEW_PROJECT, self.own.project))
        self.alice.is_active = False
        self.alice.save()
        self.assertFalse(access.projects_for(self.alice, access.VIEW_PROJECT).exists())
        self.assertFalse(access.can(self.alice, access.VIEW_PROJECT, self.own.project))

    def test_a_project_admin_gives_roles_in_the_admin(self) -> None:
        # alice also administers a team project where charlie and "support" are.
        team = Project.objects.create(name="zqteam project")
        group = Group.objects.create(name="support")
        role_grant(project=team, principal=self.alice, role=Role.ADMIN)
        role_grant(project=team, principal=self.charlie, role=Role.VIEWER)
        role_grant(project=team, principal=group, role=Role.VIEWER)
        self.client.force_login(self.alice)
        url = reverse("admin:recordings_project_members", args=[self.own.project.pk])
        response = self.client.post(
            url, {"kind": "user", "name": "charlie", "role": "editor"}
        )
        self.assertEqual(response.status_code, 302)
        self.charlie.refresh_from_db()
        self.assertEqual(access.role_of(self.charlie, self.own.project), Role.EDITOR)
        history = reverse(
            "admin:recordings_project_history", args=[self.own.project.pk]
        )
        self.assertContains(self.client.get(history), "Gave charlie the editor role.")
        # The role is what lets charlie sign in; no user flag was touched.
        self.assertFalse(self.charlie.is_staff)
        self.assertTrue(access.may_use_replayhub(self.charlie))
        page = self.client.get(url).content.decode()
        self.assertIn("charlie", page)
        self.assertIn("Editor", page)
        self.client.post(url, {"kind": "group", "name": "support", "role": "viewer"})
        self.assertEqual(access.role_of(group, self.own.project), Role.VIEWER)
        self.client.post(url, {"kind": "user", "name": "charlie", "role": ""})
        self.assertIsNone(access.role_of(self.charlie, self.own.project))
        response = self.client.post(
            url, {"kind": "user", "name": "nobody", "role": "viewer"}
        )
        self.assertContains(response, "There is no user called")

    def test_an_editor_cannot_give_roles(self) -> None:
        role_grant(project=self.own.project, principal=self.bob, role=Role.EDITOR)
        self.client.force_login(self.bob)
        url = reverse("admin:recordings_project_members", args=[self.own.project.pk])
        response = self.client.post(
            url, {"kind": "user", "name": "bob", "role": "admin"}
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(access.role_of(self.bob, self.own.project), Role.EDITOR)

    def test_a_user_with_the_add_permission_creates_and_administers_a_project(
        self,
    ) -> None:
        perm = Permission.objects.get(codename="add_project")
        self.charlie.user_permissions.add(perm)
        self.client.force_login(self.charlie)
        response = self.client.post(
            reverse("admin:recordings_project_add"),
            {
                "name": "Charlie's app",
                "recording_enabled": "on",
                "ingest_rate_limit": "",
            },
        )
        self.assertEqual(response.status_code, 302)
        project = Project.objects.get(name="Charlie's app")
        self.assertEqual(access.role_of(self.charlie, project), Role.ADMIN)

    def test_the_recording_list_and_its_project_filter_show_only_own_projects(
        self,
    ) -> None:
        self.client.force_login(self.bob)
        response = self.client.get(reverse("admin:recordings_recording_changelist"))
        self.assertEqual(
            [r.session_id for r in response.context["cl"].result_list],
            ["zqalpha-session"],
        )
        self.assertNotContains(response, "zqomega")

    def test_the_privacy_add_form_offers_only_projects_the_user_administers(
        self,
    ) -> None:
        viewer_of = Project.objects.create(name="zqviewed project")
        role_grant(project=viewer_of, principal=self.alice, role=Role.VIEWER)
        self.client.force_login(self.alice)
        response = self.client.get(reverse("admin:privacy_privacysettings_add"))
        choices = list(response.context["adminform"].form.fields["project"].queryset)
        self.assertEqual(choices, [self.own.project])

    def test_the_admin_enforces_csrf(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        url = reverse("admin:recordings_project_change", args=[self.own.project.pk])
        response = client.post(url, {"name": "csrf-less", "recording_enabled": "on"})
        self.assertEqual(response.status_code, 403)
        self.own.project.refresh_from_db()
        self.assertEqual(self.own.project.name, "zqalpha project")

    def test_a_user_makes_a_key_in_the_admin_and_sees_its_secret_once(self) -> None:
        self.client.force_login(self.bob)
        response = self.client.post(
            reverse("admin:recordings_apikey_add"),
            {"name": "ci", "projects": [self.own.project.pk], "access": "read"},
            follow=True,
        )
        key = ApiKey.objects.get(user=self.bob)
        message = next(str(m) for m in response.context["messages"])
        secret = message.split("Your new API key is ")[1].split(" ")[0]
        api = self.client_class()
        listed = api.get(
            "/api/v1/recordings/", headers={"Authorization": f"Bearer {secret}"}
        )
        self.assertEqual(listed.status_code, 200)
        self.assertNotContains(
            self.client.get(reverse("admin:recordings_apikey_changelist")), secret
        )
        self.client.post(
            reverse("admin:recordings_apikey_changelist"),
            {"action": "revoke_selected", "_selected_action": [key.pk]},
        )
        key.refresh_from_db()
        self.assertIsNotNone(key.revoked)
        revoked = api.get(
            "/api/v1/recordings/", headers={"Authorization": f"Bearer {secret}"}
        )
        self.assertEqual(revoked.status_code, 401)

    def test_a_key_for_a_project_the_user_cannot_see_is_refused_in_the_admin(
        self,
    ) -> None:
        self.client.force_login(self.bob)
        response = self.client.post(
            reverse("admin:recordings_apikey_add"),
            {"name": "ci", "projects": [self.other.project.pk], "access": "read"},
        )
        self.assertEqual(response.status_code, 200)  # the form again, with an error
        self.assertFalse(ApiKey.objects.exists())

    def test_deleting_a_project_deletes_its_blobs(self) -> None:
        root = self.make_root()
        self.client.force_login(root)
        before = len(self.stored_data())
        url = reverse("admin:recordings_project_delete", args=[self.own.project.pk])
        response = self.client.post(url, {"post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertFalse(Project.objects.filter(pk=self.own.project.pk).exists())
        self.assertLess(len(self.stored_data()), before)
        self.assertTrue(Project.objects.filter(pk=self.other.project.pk).exists())


class MemberNamesTests(ReplayTestCase):
    """The members form does not tell a project admin who exists elsewhere."""

    project_name = "zqalpha project"

    def setUp(self) -> None:
        super().setUp()
        self.own = make_tenant(self.client, "zqalpha", self.project)
        # The other tenant is charlie's own project, with a team of his.
        charlies = self.make_charlies_project("zqomega project")
        self.other = make_tenant(self.client, "zqomega", charlies)
        # Someone on no project at all (charlie now runs one).
        User.objects.create_user("loner")
        omega = Group.objects.create(name="omega-team")
        role_grant(project=self.other.project, principal=omega, role=Role.VIEWER)
        Group.objects.create(name="roleless-group")
        self.url = reverse(
            "admin:recordings_project_members", args=[self.own.project.pk]
        )

    def answer(self, kind: str, name: str) -> tuple[int, str]:
        response = self.client.post(
            self.url, {"kind": kind, "name": name, "role": "admin"}
        )
        body = response.content.decode().replace(name, "NAME")
        body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
        return response.status_code, body

    def test_naming_someone_of_another_tenant_answers_as_naming_nobody(self) -> None:
        self.make_root()  # a superuser with no role is no member either
        self.client.force_login(self.alice)
        for kind, names in [
            ("user", ["charlie", "loner", "root"]),
            ("group", ["omega-team", "roleless-group"]),
        ]:
            nobody = self.answer(kind, "no-such-name")
            self.assertEqual(nobody[0], 200)
            for name in names:
                with self.subTest(kind=kind, name=name):
                    self.assertEqual(self.answer(kind, name), nobody)
        members = {str(m.principal) for m in access.project_members(self.own.project)}
        self.assertEqual(members, {"alice", "bob"})

    def test_a_superuser_names_anyone(self) -> None:
        root = self.make_root()
        self.client.force_login(root)
        self.assertEqual(self.answer("user", "charlie")[0], 302)
        self.assertEqual(self.answer("group", "roleless-group")[0], 302)
        self.assertEqual(access.role_of(self.charlie, self.own.project), Role.ADMIN)
