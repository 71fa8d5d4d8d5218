"""Prepare a fresh install: migrate, create a first admin and a demo project."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from recordings.models import Project

CREDENTIALS_FILE = "first-login.txt"


class Command(BaseCommand):
    help = (
        "Apply migrations, create the first admin user with a generated password and "
        "a demo project, and print where to log in. Safe to run on every start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        self.stdout.write("Applying database migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        # The shared cache's table when the cache is the database (no REDIS_URL).
        call_command("createcachetable", verbosity=0)
        project = self._demo_project()
        password = self._first_admin(username)
        self._print_banner(username, password, project)

    def _demo_project(self) -> Project | None:
        """The demo page's project; made, and marked as such, on a fresh install."""
        demo = Project.objects.filter(is_demo=True).first()
        if demo is not None or Project.objects.exists():
            return demo  # never marks an existing project: the page shows it to all
        self.stdout.write("Creating the project “Demo”…")
        return Project.objects.create(name="Demo", is_demo=True)

    def _first_admin(self, username: str) -> str | None:
        """The generated password while it is still the admin's, else None."""
        path = Path(settings.DATA_DIR) / CREDENTIALS_FILE
        users = get_user_model().objects
        if not users.filter(username=username).exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser(username=username, email="", password=password)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password + "\n")
            path.chmod(0o600)
            return password
        saved = path.read_text().strip() if path.exists() else ""
        user = users.get(username=username)
        return saved if saved and user.check_password(saved) else None

    def _demo_page(self, base: str, project: Project | None) -> str:
        if not settings.REPLAYHUB_DEMO_PAGE:
            return "off (REPLAYHUB_DEMO_PAGE=true turns it on)"
        if project is None:
            return f"{base}/demo/ (tick “Demo project” on a project to use it)"
        return f"{base}/demo/"

    def _print_banner(
        self, username: str, password: str | None, project: Project | None
    ) -> None:
        base = settings.REPLAYHUB_BASE_URL
        lines = [
            "",
            "ReplayHub is starting.",
            f"  Admin:     {base}/admin/",
            f"  Demo page: {self._demo_page(base, project)}",
            f"  Login:     {username} / {password}"
            if password
            else f"  Login:     {username} (password changed since first start; "
            f"reset it with: manage.py changepassword {username})",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
