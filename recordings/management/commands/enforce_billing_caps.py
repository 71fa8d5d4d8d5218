"""Check the monthly caps now, without Celery: the twin of the beat job."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils.timezone import now

from recordings.services.usage import projects_cap_check


class Command(BaseCommand):
    help = (
        "Stop capture for projects at their monthly minutes cap and resume it for "
        "those under it again (a raised cap, a new month); print each decision."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        checks = projects_cap_check(now=now())
        for check in checks:
            self.stdout.write(check.describe())
        changed = sum(check.changed for check in checks)
        self.stdout.write(f"{len(checks)} project(s) checked, {changed} changed")
