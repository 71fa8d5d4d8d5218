"""Erase people from a project now (GDPR Art. 17), without Celery."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy import erasure
from privacy.models import ErasureRequest
from recordings.models import Project


class Command(BaseCommand):
    help = (
        "Delete every recording (blobs included), analytics event, ledger row and "
        "person record of these distinct ids (and their anonymous ids) in one "
        "project, tombstone them so capture refuses their late batches, and print "
        "the receipt. Recordings on legal hold are kept. Try --dry-run first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="its code or name")
        parser.add_argument(
            "--distinct-id", action="append", required=True, dest="distinct_ids"
        )
        parser.add_argument("--dry-run", action="store_true", help="count only")

    def handle(
        self,
        *args: Any,
        project: str,
        distinct_ids: list[str],
        dry_run: bool,
        **options: Any,
    ) -> None:
        chosen = self._project(project)
        ids = erasure.clean_distinct_ids("\n".join(distinct_ids))
        request = erasure.erasure_request(
            project=chosen, distinct_ids=ids, actor=None, dry_run=dry_run
        )
        if request.status == ErasureRequest.Status.PENDING:
            erasure.erasure_run(request=request, final=False)
            settle = settings.REPLAYHUB_ERASURE_SETTLE_SECONDS
            if settle:
                self.stderr.write(
                    f"erased; waiting {settle} s for capture's caches to see the "
                    "tombstones, then a last pass…"
                )
                time.sleep(settle)
            erasure.erasure_run(request=request, final=True)
            request.refresh_from_db()
        verb = "would delete" if dry_run else "deleted"
        counts = ", ".join(f"{k}: {v}" for k, v in request.receipt.items())
        self.stdout.write(f"erasure #{request.pk} in {chosen}: {verb} {counts}")

    def _project(self, wanted: str) -> Project:
        for candidate in Project.objects.order_by("pk"):
            if wanted in (str(candidate.code), candidate.name):
                return candidate
        raise CommandError(f"no project with code or name {wanted!r}")
