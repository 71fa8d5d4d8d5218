"""Who may use ReplayHub at all: one rule, by role, for the admin and the API alike.

An active user gets in (admin login, API session, API key) while they are a
superuser or hold a role on some project; staff status decides nothing; a superuser
suspends a person by unticking "active", which ends every way in at once.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from recordings import access
from recordings.access import Role
from recordings.models import ApiKey, Recording
from recordings.services.api_keys import api_key_create
from recordings.services.projects import role_grant
from tests.access import make_tenant
from tests.base import ReplayTestCase

ADMIN_INDEX = reverse("admin:index")
LOGIN = reverse("admin:login")


class SignInTestCase(ReplayTestCase):
    """alice administers the own project; she was never given staff status.

    The other tenant is nobody's: charlie, with no role anywhere, is who the
    product keeps out.
    """

    project_name = "zqalpha project"

    def setUp(self) -> None:
        super().setUp()
        self.own = make_tenant(self.client, "zqalpha", self.project)
        self.other = make_tenant(self.client, "zqomega")
        self.client.logout()

    def give_staff_status(self, user: User) -> None:
        user.is_staff = True
        user.save()

    def key_for(self, user: User) -> str:
        key = ApiKey(user=user, name="ci", access=ApiKey.Access.WRITE)
        return api_key_create(key=key, projects=[self.own.project])

    def admin_lets_in(self, user: User) -> bool:
        self.client.force_login(user)
        response = self.client.get(ADMIN_INDEX)
        self.client.logout()
        self.assertIn(response.status_code, (200, 302))
        return response.status_code == 200

    def api_session_lets_in(self, user: User) -> bool:
        self.client.force_login(user)
        response = self.client.get("/api/v1/projects/")
        self.client.logout()
        self.assertIn(response.status_code, (200, 401, 403))
        return response.status_code == 200

    def api_key_lets_in(self, secret: str) -> bool:
        headers = {"Authorization": f"Bearer {secret}"}
        response = self.client.get("/api/v1/projects/", headers=headers)
        self.assertIn(response.status_code, (200, 401))
        return response.status_code == 200

    def delete_with_key(self, secret: str) -> int:
        url = f"/api/v1/recordings/{self.own.recording.code}/"
        headers = {"Authorization": f"Bearer {secret}"}
        return int(self.client.delete(url, headers=headers).status_code)

    def login_form(self, username: str, password: str = "pw") -> Any:
        data = {"username": username, "password": password, "next": ADMIN_INDEX}
        return self.client.post(LOGIN, data)


class SignInTests(SignInTestCase):
    def test_it_lets_a_role_holder_in_without_staff_status(self) -> None:
        self.alice.refresh_from_db()
        self.assertIs(self.alice.is_staff, False)  # the role did not touch it
        response = self.login_form("alice")
        self.assertRedirects(response, ADMIN_INDEX)
        self.assertEqual(self.client.get(ADMIN_INDEX).status_code, 200)
        self.assertTrue(self.api_session_lets_in(self.alice))
        self.assertTrue(self.api_key_lets_in(self.key_for(self.alice)))

    def test_it_lets_a_group_member_in_without_staff_status(self) -> None:
        group = Group.objects.create(name="support")
        role_grant(project=self.own.project, principal=group, role=Role.VIEWER)
        self.assertFalse(self.admin_lets_in(self.charlie))
        self.charlie.groups.add(group)
        self.assertTrue(self.admin_lets_in(self.charlie))
        self.assertTrue(self.api_session_lets_in(self.charlie))

    def test_it_keeps_out_a_staff_user_with_no_role(self) -> None:
        self.give_staff_status(self.charlie)  # and no role
        self.assertContains(self.login_form("charlie"), "a role on a project")
        self.assertFalse(self.admin_lets_in(self.charlie))
        self.assertFalse(self.api_session_lets_in(self.charlie))

    def test_the_login_form_says_the_same_whatever_keeps_someone_out(self) -> None:
        self.give_staff_status(self.charlie)  # and no role
        self.alice.is_active = False
        self.alice.save()
        answers = {
            who: re.sub(
                r'name="csrfmiddlewaretoken" value="[^"]+"',
                "",
                self.login_form(who).content.decode().replace(who, "WHO"),
            )
            for who in ("charlie", "alice", "nobody")
        }
        self.assertEqual(answers["charlie"], answers["nobody"])
        self.assertEqual(answers["alice"], answers["nobody"])

    def test_losing_the_last_role_ends_the_session_and_the_keys(self) -> None:
        secret = self.key_for(self.alice)
        self.assertTrue(self.api_key_lets_in(secret))
        role_grant(project=self.own.project, principal=self.alice, role=None)
        self.assertFalse(self.admin_lets_in(self.alice))
        self.assertFalse(self.api_session_lets_in(self.alice))
        self.assertFalse(self.api_key_lets_in(secret))
        self.assertEqual(self.delete_with_key(secret), 401)
        self.assertTrue(Recording.objects.filter(pk=self.own.recording.pk).exists())

    def test_staff_status_decides_nothing_in_the_admin_or_the_api(self) -> None:
        secret = self.key_for(self.alice)
        for is_staff in (True, False):
            self.alice.is_staff = is_staff
            self.alice.save()
            with self.subTest(is_staff=is_staff):
                self.assertTrue(self.admin_lets_in(self.alice))
                self.assertTrue(self.api_session_lets_in(self.alice))
                self.assertTrue(self.api_key_lets_in(secret))

    def test_the_admin_and_the_api_agree_on_everyone(self) -> None:
        self.give_staff_status(self.charlie)  # and no role
        # bob, with staff status, was alice's admin until she took his role away.
        self.give_staff_status(self.bob)
        role_grant(project=self.own.project, principal=self.bob, role=Role.ADMIN)
        former_key = self.key_for(self.bob)
        role_grant(project=self.own.project, principal=self.bob, role=None)
        root = self.make_root()
        root.is_staff = False
        root.save()
        for user, lets_in in [
            (self.alice, True),
            (root, True),
            (self.charlie, False),
            (self.bob, False),
        ]:
            with self.subTest(user=user.username):
                self.assertIs(self.admin_lets_in(user), lets_in)
                self.assertIs(self.api_session_lets_in(user), lets_in)
        self.assertFalse(self.api_key_lets_in(former_key))

    def test_someone_allowed_to_create_projects_gets_in_before_having_one(self) -> None:
        self.assertFalse(self.admin_lets_in(self.charlie))
        perm = Permission.objects.get(codename="add_project")
        self.charlie.user_permissions.add(perm)
        self.assertTrue(self.admin_lets_in(self.charlie))


class SuspensionTests(SignInTestCase):
    def test_suspending_a_person_ends_every_way_in(self) -> None:
        root = self.make_root()
        secret = self.key_for(self.alice)
        session = self.client_class()
        session.force_login(self.alice)
        self.assertEqual(session.get(ADMIN_INDEX).status_code, 200)

        self.client.force_login(root)
        change = reverse("admin:auth_user_change", args=[self.alice.pk])
        joined = self.alice.date_joined
        data = {
            "username": "alice",
            "email": self.alice.email,
            "date_joined_0": f"{joined:%Y-%m-%d}",
            "date_joined_1": f"{joined:%H:%M:%S}",
        }  # "is_active" left out: the box unticked
        self.assertRedirects(
            self.client.post(change, data), reverse("admin:auth_user_changelist")
        )
        self.alice.refresh_from_db()
        self.assertFalse(self.alice.is_active)

        self.assertRedirects(session.get(ADMIN_INDEX), f"{LOGIN}?next={ADMIN_INDEX}")
        self.assertEqual(session.get("/api/v1/projects/").status_code, 401)
        self.assertEqual(self.delete_with_key(secret), 401)
        self.assertTrue(Recording.objects.filter(pk=self.own.recording.pk).exists())

    def test_only_superusers_see_people_and_the_form_offers_no_staff_switch(
        self,
    ) -> None:
        root = self.make_root()
        # Even given Django's model-wide "change user" permission, a project admin
        # cannot reach the switch that lets people in.
        self.alice.user_permissions.add(Permission.objects.get(codename="change_user"))
        self.client.force_login(self.alice)
        change = reverse("admin:auth_user_change", args=[self.charlie.pk])
        self.assertEqual(self.client.get(change).status_code, 403)
        self.client.force_login(root)
        form = self.client.get(change).context["adminform"].form
        self.assertIn("is_active", form.fields)
        self.assertNotIn("is_staff", form.fields)

    def test_a_role_elsewhere_does_not_reopen_access_for_a_suspended_person(
        self,
    ) -> None:
        # charlie runs the other project and was suspended by a superuser.
        charlie = self.charlie
        role_grant(project=self.other.project, principal=charlie, role=Role.ADMIN)
        charlie.is_active = False
        charlie.save()
        self.client.force_login(self.alice)
        members = reverse(
            "admin:recordings_project_members", args=[self.own.project.pk]
        )
        self.client.post(members, {"kind": "user", "name": "charlie", "role": "viewer"})
        charlie.refresh_from_db()
        self.assertFalse(charlie.is_active)
        self.assertIsNone(access.role_of(charlie, self.own.project))
        self.assertFalse(self.admin_lets_in(charlie))
        self.assertFalse(access.may_use_replayhub(charlie))


class UpgradeTests(SignInTestCase):
    """Migration 0013: nobody kept out by staff status gets in through the upgrade."""

    def test_it_suspends_members_whom_staff_status_kept_out(self) -> None:
        migration = importlib.import_module(
            "recordings.migrations.0013_suspend_unstaffed_members"
        )
        self.give_staff_status(self.bob)  # alice's viewer
        group = Group.objects.create(name="support")
        role_grant(project=self.own.project, principal=group, role=Role.VIEWER)
        # Kept: a role held only through a group, and a second role-less person
        # besides charlie, as before the personas.
        in_group = User.objects.create_user("in-group")
        in_group.groups.add(group)
        User.objects.create_user("nobody")  # no role: kept out either way, untouched
        root = self.make_root()
        root.is_staff = False
        root.save()

        migration.suspend_unstaffed_members(apps, None)

        active = dict(User.objects.values_list("username", "is_active"))
        self.assertEqual(
            {name: active[name] for name in ("alice", "in-group", "bob")},
            {"alice": False, "in-group": False, "bob": True},
        )
        self.assertTrue(active["nobody"] and active["root"] and active["charlie"])
