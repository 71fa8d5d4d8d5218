from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import TestCase, override_settings

from recordings.models import Project


class BootstrapTests(TestCase):
    def run_bootstrap(self, data_dir: Path) -> str:
        out = StringIO()
        with override_settings(DATA_DIR=data_dir):
            call_command("bootstrap", stdout=out)
        return out.getvalue()

    def test_it_creates_an_admin_with_a_generated_password(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            output = self.run_bootstrap(Path(tmp))
            match = re.search(r"Login:\s+admin / (\S+)", output)
            assert match, output
            password = match.group(1)
            self.assertGreaterEqual(len(password), 12)
            self.assertTrue(User.objects.get(username="admin").check_password(password))
            self.assertIn("/admin/", output)
            self.assertIn("/demo/", output)
            demo = Project.objects.get()
            self.assertEqual((demo.name, demo.is_demo), ("Demo", True))
            # A second start repeats the credential instead of changing it.
            again = self.run_bootstrap(Path(tmp))
            self.assertIn(f"admin / {password}", again)
            self.assertEqual(Project.objects.count(), 1)

    def test_two_installs_get_different_passwords(self) -> None:
        import tempfile

        passwords = []
        for _ in range(2):
            User.objects.filter(username="admin").delete()
            with tempfile.TemporaryDirectory() as tmp:
                output = self.run_bootstrap(Path(tmp))
            passwords.append(re.search(r"admin / (\S+)", output).group(1))  # type: ignore[union-attr]
        self.assertNotEqual(passwords[0], passwords[1])

    def test_it_does_not_print_a_password_that_was_changed(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            first = self.run_bootstrap(Path(tmp))
            old = re.search(r"admin / (\S+)", first).group(1)  # type: ignore[union-attr]
            user = User.objects.get(username="admin")
            user.set_password("something-else")
            user.save()
            output = self.run_bootstrap(Path(tmp))
        self.assertNotIn(old, output)
        self.assertIn("changepassword admin", output)

    def test_it_marks_no_existing_project_as_the_demo(self) -> None:
        import tempfile

        Project.objects.create(name="Demo")  # a tenant that happens to be so named
        with tempfile.TemporaryDirectory() as tmp:
            output = self.run_bootstrap(Path(tmp))
        self.assertFalse(Project.objects.filter(is_demo=True).exists())
        self.assertIn("tick “Demo project”", output)

    @override_settings(REPLAYHUB_DEMO_PAGE=False)
    def test_it_says_when_the_demo_page_is_off(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            output = self.run_bootstrap(Path(tmp))
        self.assertIn("Demo page: off (REPLAYHUB_DEMO_PAGE=true", output)
