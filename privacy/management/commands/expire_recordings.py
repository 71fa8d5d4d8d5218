"""Apply retention now, without Celery: the twin of the beat job."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.timezone import now

from privacy import retention
from recordings.models import Project


class Command(BaseCommand):
    help = (
        "Delete every project's recordings (blobs included), analytics events and "
        "ingest-ledger rows older than its retention period, except recordings on "
        "legal hold. --dry-run reports what would go and deletes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count, do not delete"
        )
        parser.add_argument(
            "--project", help="only this project (its public code or name)"
        )

    def handle(
        self, *args: Any, dry_run: bool, project: str | None, **options: Any
    ) -> None:
        projects = self._projects(project)
        verb = "would delete" if dry_run else "deleted"
        for chosen in projects:
            expiry = retention.project_expire(
                project=chosen, now=now(), dry_run=dry_run, progress=self._progress
            )
            self.stdout.write(
                f"{chosen}: {verb} {expiry.recordings} recording(s) "
                f"({expiry.bytes:,} bytes), {expiry.events} event(s), "
                f"{expiry.ledger_rows} ledger row(s) older than "
                f"{expiry.cutoff:%Y-%m-%d %H:%M} UTC; {expiry.held} kept on legal hold"
            )

    def _projects(self, wanted: str | None) -> list[Project]:
        projects = Project.objects.order_by("pk")
        if wanted is None:
            return list(projects)
        found = [p for p in projects if wanted in (str(p.code), p.name)]
        if not found:
            raise CommandError(f"no project with code or name {wanted!r}")
        return found

    def _progress(self, project: Project, expiry: retention.Expiry) -> None:
        self.stderr.write(f"{project}: {expiry.recordings} recording(s) so far…")
