"""Import recordings from an export (manage.py export_recordings, or the API's)."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recordings.blobs import StorageError
from recordings.management.arguments import project_named
from recordings.models import Project
from recordings.playback import archives
from recordings.playback.transfer import ImportRefused, recording_import


class Command(BaseCommand):
    help = (
        "Import the recordings of an export folder or archive (.zip, .tar.gz): "
        "their metadata, markers, comments, tags, analytics events and person, "
        "and their events stored as this installation stores them. A recording "
        "already here (same code, or same session in the project) is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="an export folder, .zip, .tar.gz or .tgz")
        parser.add_argument(
            "--project",
            help="import into this project (code or name); default: the project "
            "of the exported code, which must exist here",
        )

    def handle(self, *args: Any, source: str, **options: Any) -> None:
        project = project_named(options["project"]) if options["project"] else None
        counts = {"imported": 0, "skipped": 0, "failed": 0}
        started = time.monotonic()
        try:
            total, documents = archives.documents_read(Path(source))
            self.stdout.write(f"{total} recording(s) to import")
            for done, document in enumerate(documents, 1):
                counts[self.import_one(document, project)] += 1
                self.progress(archives.progress_bar(done, total, started), done, total)
        except archives.ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(", ".join(f"{n} {what}" for what, n in counts.items()))
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} document(s) could not be imported")

    def import_one(self, document: archives.Document, project: Project | None) -> str:
        try:
            header, windows = archives.document_read(document.handle)
            target = project or _exported_project(header)
            recording = recording_import(
                project=target, document=header, windows=windows
            )
        except ValueError as exc:  # raised before any window is read
            return self.failed(document, f"not an export document: {exc}")
        except (ImportRefused, CommandError) as exc:
            return self.failed(document, str(exc))
        except StorageError as exc:
            return self.failed(document, f"stored, not compacted yet: {exc}")
        if recording is None:
            code = header["recording"]["code"]
            self.stdout.write(f"{document.name}: skipped, recording {code} is here")
            return "skipped"
        return "imported"

    def failed(self, document: archives.Document, why: str) -> str:
        self.stderr.write(f"{document.name}: {why}")
        return "failed"

    def progress(self, line: str, done: int, total: int) -> None:
        # On a terminal the bar redraws in place; in a log, a line per document.
        ending = "\r" if sys.stderr.isatty() and done < total else "\n"
        self.stderr.write(line, ending=ending)


def _exported_project(data: Any) -> Project:
    meta = data.get("recording") if isinstance(data, dict) else None
    code = str(meta.get("project")) if isinstance(meta, dict) else ""
    found = Project.objects.filter(code=code).first() if _is_uuid(code) else None
    if found is None:
        raise CommandError(
            f"no project {code!r} here (the exported one): create it, or name "
            "one with --project"
        )
    return found


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
