"""Recompute recordings' signals and markers: all, one project's, or one recording."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recordings.blobs import StorageError
from recordings.models import Project, Recording
from recordings.services.recording_signals import recording_signals_update

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Compute the signals and markers of existing recordings again (after an "
        "upgrade that adds or changes signals). Safe to rerun."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="only this project (by name)")
        parser.add_argument("--recording", help="only this recording (by code)")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=100,
            help="recordings read per query (default: %(default)s)",
        )

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        ids = list(self.selected(options).order_by("pk").values_list("pk", flat=True))
        self.stdout.write(f"{len(ids)} recording(s) to recompute")
        started, failed = time.monotonic(), 0
        for start in range(0, len(ids), max(batch_size, 1)):
            batch = Recording.objects.filter(pk__in=ids[start : start + batch_size])
            for recording in batch.select_related("project"):
                failed += not self.recompute(recording)
            self.progress(min(start + batch_size, len(ids)), len(ids), started)
        done = len(ids) - failed
        self.stdout.write(f"recomputed {done} recording(s), {failed} failed")
        if failed:
            raise CommandError(f"{failed} recording(s) could not be read; rerun later")

    def selected(self, options: dict[str, Any]) -> Any:
        recordings = Recording.objects.all()
        if options["project"]:
            project = Project.objects.filter(name=options["project"]).first()
            if project is None:
                raise CommandError(f"no project called {options['project']!r}")
            recordings = recordings.for_project(project)
        if options["recording"]:
            recordings = recordings.filter(code=options["recording"])
        return recordings

    def recompute(self, recording: Recording) -> bool:
        try:
            recording_signals_update(recording=recording)
        except StorageError as exc:
            self.stderr.write(f"{recording.code}: {exc}")
            return False
        return True

    def progress(self, done: int, total: int, started: float) -> None:
        filled = BAR_WIDTH * done // max(total, 1)
        rate = done / max(time.monotonic() - started, 1e-9)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stdout.write(f"[{bar}] {done}/{total} ({rate:.1f} recordings/s)")
