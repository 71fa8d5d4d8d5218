"""The admin's sign-in locks out a username and a client address after
REPLAYHUB_LOGIN_FAILURE_LIMIT wrong passwords (django-axes), until the cool-off
passes or an administrator unlocks them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import time_machine
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils.timezone import now

from recordings.models import ApiKey
from recordings.services.api_keys import api_key_create
from tests.base import ReplayTestCase

if TYPE_CHECKING:  # the test client's response type exists only in the stubs
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

LOGIN = reverse("admin:login")
ADMIN_INDEX = reverse("admin:index")
LIMIT = 5  # REPLAYHUB_LOGIN_FAILURE_LIMIT's default


# Each sign-in hashes a password: a fast hasher keeps these 80 sign-ins quick.
@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class LoginLockoutTests(ReplayTestCase):
    def sign_in(
        self, username: str, password: str, ip: str = "203.0.113.7"
    ) -> TestResponse:
        data = {"username": username, "password": password, "next": ADMIN_INDEX}
        return self.client.post(LOGIN, data, REMOTE_ADDR=ip)

    def fail_sign_in(self, username: str, times: int, ip: str = "203.0.113.7") -> None:
        for _ in range(times):
            self.sign_in(username, "wrong", ip)

    def assert_signed_in(self, response: TestResponse) -> None:
        self.assertEqual(response.status_code, 302, response.content[:300])
        self.assertEqual(response["Location"], ADMIN_INDEX)
        self.client.logout()

    def assert_locked_out(self, response: TestResponse) -> None:
        self.assertEqual(response.status_code, 429)
        page = response.content.decode()
        self.assertIn("sign-in is locked", page)
        self.assertIn("30 minutes", page)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_it_lets_in_after_fewer_failures_than_the_limit(self) -> None:
        self.fail_sign_in("alice", LIMIT - 1)
        self.assert_signed_in(self.sign_in("alice", "pw"))

    def test_it_refuses_the_right_password_after_the_limit(self) -> None:
        self.fail_sign_in("alice", LIMIT)
        self.assert_locked_out(self.sign_in("alice", "pw"))

    def test_it_locks_the_username_from_any_address(self) -> None:
        for n in range(LIMIT):
            self.sign_in("alice", "wrong", ip=f"198.51.100.{n + 1}")
        self.assert_locked_out(self.sign_in("alice", "pw", ip="192.0.2.99"))
        # Others are not locked out by alice's lockout.
        self.assert_signed_in(self.sign_in("bob", "pw", ip="192.0.2.99"))

    def test_it_locks_the_address_for_every_username(self) -> None:
        self.fail_sign_in("alice", LIMIT)
        self.assert_locked_out(self.sign_in("bob", "pw"))
        # bob elsewhere still gets in: the address is locked, not bob.
        self.assert_signed_in(self.sign_in("bob", "pw", ip="192.0.2.99"))

    def test_it_spreads_guesses_over_usernames_and_still_locks(self) -> None:
        for name in ("alice", "bob", "charlie", "nobody", "admin"):
            self.sign_in(name, "wrong")
        self.assert_locked_out(self.sign_in("charlie", "pw"))

    @override_settings(REPLAYHUB_TRUST_X_FORWARDED_FOR=True)
    def test_behind_a_trusted_proxy_it_counts_the_forwarded_address(self) -> None:
        proxy = "10.0.0.1"
        for _ in range(LIMIT):
            self.client.post(
                LOGIN,
                {"username": "alice", "password": "wrong"},
                REMOTE_ADDR=proxy,
                HTTP_X_FORWARDED_FOR="203.0.113.7",
            )
        # Another visitor through the same proxy is not locked out with them.
        response = self.client.post(
            LOGIN,
            {"username": "bob", "password": "pw", "next": ADMIN_INDEX},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR="198.51.100.4",
        )
        self.assert_signed_in(response)

    def test_the_lockout_ends_after_the_cool_off(self) -> None:
        self.fail_sign_in("alice", LIMIT)
        with time_machine.travel(now() + dt.timedelta(minutes=31)):
            self.assert_signed_in(self.sign_in("alice", "pw"))

    def test_reset_username_unlocks_the_person(self) -> None:
        self.fail_sign_in("alice", LIMIT)
        call_command("axes_reset_username", "alice", verbosity=0)
        self.assert_signed_in(self.sign_in("alice", "pw"))

    def test_reset_ip_unlocks_the_address(self) -> None:
        for name in ("nobody", "admin", "root", "test", "guest"):
            self.sign_in(name, "wrong")
        self.assert_locked_out(self.sign_in("alice", "pw"))
        call_command("axes_reset_ip", "203.0.113.7", verbosity=0)
        self.assert_signed_in(self.sign_in("alice", "pw"))

    def test_a_superuser_unlocks_in_the_admin(self) -> None:
        self.fail_sign_in("alice", LIMIT)
        root = self.make_root()
        self.client.force_login(root)
        changelist = reverse("admin:axes_accessattempt_changelist")
        page = self.client.get(changelist).content.decode()
        self.assertIn("Locked Out", page)
        self.assertIn("203.0.113.7", page)
        # alice, a project admin but no superuser, does not see the page.
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get(changelist).status_code, 403)
        self.client.force_login(root)
        ids = list(AccessAttempt.objects.values_list("pk", flat=True))
        data = {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
        self.client.post(changelist, data)
        self.client.logout()
        self.assert_signed_in(self.sign_in("alice", "pw"))

    def test_api_keys_and_signed_in_sessions_are_not_affected(self) -> None:
        key = ApiKey(user=self.alice, name="ci", access=ApiKey.Access.READ)
        secret = api_key_create(key=key, projects=[self.project])
        self.fail_sign_in("alice", LIMIT)
        headers = {"Authorization": f"Bearer {secret}"}
        response = self.client.get(
            "/api/v1/projects/", headers=headers, REMOTE_ADDR="203.0.113.7"
        )
        self.assertEqual(response.status_code, 200)
        self.client.force_login(self.alice)
        response = self.client.get("/api/v1/projects/", REMOTE_ADDR="203.0.113.7")
        self.assertEqual(response.status_code, 200)

    def test_a_refused_role_is_no_failure(self) -> None:
        # charlie's password is right but he holds no role: the form refuses him
        # without counting a wrong password.
        for _ in range(LIMIT + 1):
            self.assertEqual(self.sign_in("charlie", "pw").status_code, 200)
        self.assert_signed_in(self.sign_in("alice", "pw"))
