"""Compact idle recordings now, without Celery: the twin of the beat sweeper."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.timezone import now

from recordings.models import Recording
from recordings.services.compaction import recording_compact, recordings_to_compact


class Command(BaseCommand):
    help = "Merge the loose chunks of idle recordings into one blob per window."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle-minutes",
            type=int,
            default=settings.REPLAYHUB_COMPACT_IDLE_MINUTES,
            help="only recordings with no batch for this long (default: %(default)s)",
        )

    def handle(self, *args: Any, idle_minutes: int, **options: Any) -> None:
        ids = recordings_to_compact(now=now(), idle_minutes=idle_minutes)
        self.stdout.write(f"{len(ids)} recording(s) to compact")
        for done, recording in enumerate(Recording.objects.filter(pk__in=ids), 1):
            windows = recording_compact(recording=recording)
            self.stdout.write(
                f"[{done}/{len(ids)}] {recording.code}: {windows} window(s)"
            )
