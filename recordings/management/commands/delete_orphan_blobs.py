"""Delete orphan blobs now, without Celery: the twin of the beat sweeper."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.timezone import now

from recordings.services.storage import orphan_blobs_delete


class Command(BaseCommand):
    help = (
        "Delete recording blobs that no chunk points at (left by a crash between "
        "a blob write and its commit) and that are older than a grace period."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=settings.REPLAYHUB_ORPHAN_BLOB_GRACE_MINUTES,
            help="keep orphans younger than this: their commit may be under way "
            "(default: %(default)s)",
        )

    def handle(self, *args: Any, grace_minutes: int, **options: Any) -> None:
        before = now() - dt.timedelta(minutes=grace_minutes)
        deleted = orphan_blobs_delete(written_before=before)
        self.stdout.write(f"{deleted} orphan blob(s) deleted")
