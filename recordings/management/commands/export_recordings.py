"""Export recordings as self-describing JSON documents, to a folder or an archive."""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from recordings.blobs import StorageError
from recordings.management.arguments import project_named
from recordings.models import Recording, RecordingQuerySet
from recordings.playback import archives, responses
from recordings.playback.transfer import recordings_export_audit
from recordings.search.compiler import recordings_matching
from recordings.search.language import FilterInvalid, parse_json_document
from recordings.serializers import RecordingExportSerializer

VIA = "manage.py export_recordings"


class Command(BaseCommand):
    help = (
        "Export recordings (metadata, markers, analytics events, every window's "
        "events) as one JSON document each, with a manifest, to a folder or a "
        ".zip / .tar.gz archive. Selections combine (all must match); none "
        "exports every recording. docs/storage-format.md describes the files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--project",
            action="append",
            default=[],
            help="a project's code (or name); repeatable",
        )
        parser.add_argument(
            "--code", action="append", default=[], help="a recording's code; repeatable"
        )
        parser.add_argument(
            "--filter", help="a filter document as JSON (docs/filter-language.md)"
        )
        parser.add_argument("--filter-file", help="a file holding a filter document")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--out", help="a folder: <code>.json files, manifest.json")
        where.add_argument("--archive", help="a .zip, .tar.gz or .tgz file")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = list(self.selected(options).values_list("pk", flat=True))
        folder = Path(options["out"]) if options["out"] else None
        archive = Path(options["archive"]) if options["archive"] else None
        try:
            target = archives.export_target(folder=folder, archive=archive)
        except (archives.ArchiveError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(ids)} recording(s) to export")
        entries, failed = self.export_all(ids, target)
        target.close(_manifest(entries, failed))
        # Recordings on legal hold are evidence: their export is audited.
        exported = Recording.objects.filter(code__in=[e.code for e in entries])
        recordings_export_audit(
            recordings=exported.select_related("project"),
            actor=None,
            file_format="json",
            via=VIA,
        )
        size = sum(entry.bytes for entry in entries)
        self.stdout.write(
            f"exported {len(entries)} recording(s), {size} bytes, to "
            f"{target.destination}; {len(failed)} failed"
        )
        if failed:
            codes = ", ".join(row["code"] for row in failed)
            raise CommandError(
                f"{len(failed)} recording(s) could not be exported (their blobs "
                f"could not be read): {codes}"
            )

    def selected(self, options: dict[str, Any]) -> RecordingQuerySet:
        recordings = Recording.objects.all()
        if options["project"]:
            projects = [project_named(value) for value in options["project"]]
            recordings = recordings.filter(project__in=projects)
        if options["code"]:
            codes = [_code(value) for value in options["code"]]
            missing = set(codes) - set(
                Recording.objects.filter(code__in=codes).values_list("code", flat=True)
            )
            if missing:
                raise CommandError(f"no recording {', '.join(map(str, missing))}")
            recordings = recordings.filter(code__in=codes)
        text = _filter_text(options)
        if text is None:
            return recordings.order_by("project_id", "started_at", "pk")
        try:
            document = parse_json_document(text)
        except FilterInvalid as exc:
            problems = "; ".join(
                f"{p.pointer or '/'} {p.message}" for p in exc.problems
            )
            raise CommandError(f"the filter is not valid: {problems}") from exc
        return recordings_matching(recordings, document, user=None, now=timezone.now())

    def export_all(
        self, ids: list[int], target: archives.ExportTarget
    ) -> tuple[list[archives.ManifestEntry], list[dict[str, str]]]:
        entries: list[archives.ManifestEntry] = []
        failed: list[dict[str, str]] = []
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as scratch:
            for done, pk in enumerate(ids, 1):
                recording = Recording.objects.select_related("project").get(pk=pk)
                try:
                    entries.append(self.export_one(recording, target, Path(scratch)))
                except StorageError as exc:
                    self.stderr.write(f"{recording.code}: {exc}")
                    failed.append({"code": str(recording.code), "error": str(exc)})
                self.progress(done, len(ids), started)
        return entries, failed

    def export_one(
        self, recording: Recording, target: archives.ExportTarget, scratch: Path
    ) -> archives.ManifestEntry:
        meta = RecordingExportSerializer(recording).data
        pieces = responses.export_chunks(recording=recording, meta=meta)
        written = archives.document_write(pieces, scratch)
        name = f"{recording.code}.json"
        target.add(name, written.path)
        return archives.ManifestEntry(
            code=str(recording.code),
            project=str(recording.project.code),
            session_id=recording.session_id,
            file=name,
            bytes=written.size,
            sha256=written.sha256,
            windows=len(recording.window_ids()),
            events=recording.event_count,
            markers=recording.markers.count(),
        )

    def progress(self, done: int, total: int, started: float) -> None:
        # On a terminal the bar redraws in place; in a log, a line per recording.
        ending = "\r" if sys.stderr.isatty() and done < total else "\n"
        self.stderr.write(archives.progress_bar(done, total, started), ending=ending)


def _code(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a recording code (a UUID)") from None


def _filter_text(options: dict[str, Any]) -> str | None:
    if options["filter"] is not None and options["filter_file"] is not None:
        raise CommandError("give --filter or --filter-file, not both")
    if options["filter_file"] is None:
        text: str | None = options["filter"]
        return text
    try:
        return Path(options["filter_file"]).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read the filter file: {exc}") from exc


def _manifest(
    entries: list[archives.ManifestEntry], failed: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "format": archives.MANIFEST_FORMAT,
        "version": 1,
        "exported_at": timezone.now().isoformat(),
        "recordings": [entry.as_dict() for entry in entries],
        "failed": failed,
    }
