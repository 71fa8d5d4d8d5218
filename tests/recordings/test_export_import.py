"""manage.py export_recordings and import_recordings: a round trip through an
empty installation keeps every window's events and the metadata identical."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import zipfile
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

from django.core.management import CommandError, call_command
from django.db import connection

from privacy.models import PrivacyAuditEntry
from recordings.models import (
    Comment,
    Event,
    Marker,
    Person,
    Project,
    Recording,
    Tag,
)
from recordings.playback import archives, responses
from recordings.playback.transfer import EVENT_FIELDS, MARKER_FIELDS, PERSON_FIELDS
from recordings.services.compaction import recording_compact
from recordings.services.curation import recordings_tag, tag_get_or_create
from recordings.services.storage import (
    recording_events,
    recording_purge,
    recordings_hold,
)
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, full_session, send_rrweb, session_events

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
CAPTURE_PATHS = ("/s/", "/e/", "/i/v0/e/")
# Not the recording's to carry: its row id and project (another installation's).
NOT_COMPARED = ("id", "project")


def state(recording: Recording) -> dict[str, Any]:
    """Everything an export promises to carry of a recording, comparable."""
    fields = {
        f.name: getattr(recording, f.name)
        for f in Recording._meta.concrete_fields
        if f.name not in NOT_COMPARED
    }
    windows = {
        window: recording_events(recording=recording, window_id=window)
        for window in recording.window_ids()
    }
    events = Event.objects.filter(
        project=recording.project, session_id=recording.session_id
    )
    return {
        "fields": fields,
        "window_order": list(windows),
        "windows": windows,
        "markers": list(recording.markers.in_time_order().values(*MARKER_FIELDS)),
        "comments": list(
            recording.comments.values("text", "offset_ms", "author__username")
        ),
        "tags": list(recording.taggings.values_list("tag__name", "tag__colour")),
        "events": list(events.order_by("uuid").values(*EVENT_FIELDS)),
        "person": list(
            Person.objects.filter(
                project=recording.project, distinct_id=recording.distinct_id
            ).values(*PERSON_FIELDS)
        ),
    }


class ExportImportTests(ReplayTestCase):
    """The real posthog-js session (snapshots and analytics events) and a plain
    rrweb session of two windows, compacted, commented, tagged, one on hold."""

    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        for request in full_session():
            if request.method == "POST" and request.path in CAPTURE_PATHS:
                response = request.send(self.client)
                self.assertEqual(response.status_code, 200, response.content)
        events = session_events("idle-rotation.0")
        half = len(events) // 2
        send_rrweb(self.client, FIXTURE_TOKEN, "t1", events[:half], "two", "tab-1")
        send_rrweb(self.client, FIXTURE_TOKEN, "t2", events[half:], "two", "tab-2")
        for recording in Recording.objects.all():
            recording_compact(recording=recording)
        self.main = Recording.objects.get(session_id=MAIN_SESSION)
        self.two = Recording.objects.get(session_id="two")
        Comment.objects.create(
            recording=self.main, author=self.alice, text="look here", offset_ms=1200
        )
        tag = tag_get_or_create(project=self.project, name="checkout")
        recordings_tag(recordings=[self.main], tag=tag, user=self.alice)
        recordings_hold(recordings=[self.two], hold=True, actor=self.alice)
        self.out = self.blob_dir.parent / f"{self.blob_dir.name}-export"

    def assert_same(self, after: dict[str, Any], before: dict[str, Any]) -> None:
        self.assertEqual(sorted(after), sorted(before))
        for code, was in before.items():
            for part, value in was.items():
                with self.subTest(code=code, part=part):
                    self.assertEqual(after[code][part], value)

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            str(r.code): state(r)
            for r in Recording.objects.select_related("project").order_by("code")
        }

    def export(self, *args: str) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        call_command("export_recordings", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def import_(self, *args: str) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        call_command("import_recordings", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def empty_installation(self) -> None:
        """Every recording, blob, event, person and tag of the project gone."""
        for recording in Recording.objects.all():
            recordings_hold(recordings=[recording], hold=False, actor=None)
            recording_purge(recording=recording)
        Event.objects.all().delete()
        Person.objects.all().delete()
        Tag.objects.all().delete()
        self.assertEqual(self.stored_blobs(), [])

    def test_it_round_trips_through_a_folder_into_an_empty_installation(self) -> None:
        before = self.states()
        self.assertEqual(len(before[str(self.two.code)]["window_order"]), 2)
        self.assertTrue(before[str(self.main.code)]["markers"])
        self.assertTrue(before[str(self.main.code)]["events"])
        self.assertTrue(before[str(self.main.code)]["person"])
        out, err = self.export("--out", str(self.out))
        self.assertIn("exported 2 recording(s)", out)
        self.assertIn("2/2", err)  # the progress bar
        manifest = json.loads((self.out / "manifest.json").read_text())
        self.assertEqual(
            sorted(row["file"] for row in manifest["recordings"]),
            sorted(f"{code}.json" for code in before),
        )
        self.empty_installation()

        out, err = self.import_(str(self.out))
        self.assertIn("2 imported, 0 skipped, 0 failed", out)
        self.assert_same(self.states(), before)
        for recording in Recording.objects.all():
            # Stored as compaction stores it: one window blob per window.
            self.assertTrue(recording.compacted)
            self.assertTrue(all(c.compacted_into for c in recording.chunks.all()))

    def test_it_round_trips_through_archives_into_another_project(self) -> None:
        before = self.states()
        for name in ("export.zip", "export.tar.gz"):
            with self.subTest(archive=name):
                archive = self.out / name
                self.out.mkdir(exist_ok=True)
                self.export("--archive", str(archive))
                self.empty_installation()
                Project.objects.filter(name="Restored").delete()
                restored = Project.objects.create(name="Restored")
                self.import_(str(archive), "--project", str(restored.code))
                after = self.states()
                self.assert_same(after, before)
                self.assertEqual(
                    set(Recording.objects.values_list("project", flat=True)),
                    {restored.pk},
                )

    def test_a_second_import_skips_what_is_there(self) -> None:
        self.export("--out", str(self.out))
        before = self.states()
        out, _err = self.import_(str(self.out))
        self.assertIn("0 imported, 2 skipped, 0 failed", out)
        self.assert_same(self.states(), before)
        self.assertEqual(
            Marker.objects.count(), sum(len(s["markers"]) for s in before.values())
        )

    def test_it_selects_by_project_code_and_filter_together(self) -> None:
        other = self.make_project("Other")
        self.export("--project", str(other.code), "--out", str(self.out / "none"))
        self.assertEqual(self.exported(self.out / "none"), set())
        self.export("--code", str(self.two.code), "--out", str(self.out / "one"))
        self.assertEqual(self.exported(self.out / "one"), {str(self.two.code)})
        errors = json.dumps(
            {
                "version": 1,
                "where": {"term": "signal", "signal": "console_errors", "gte": 1},
            }
        )
        self.export("--filter", errors, "--out", str(self.out / "errors"))
        expected = {
            str(r.code) for r in Recording.objects.filter(console_error_count__gte=1)
        }
        self.assertTrue(expected)
        self.assertEqual(self.exported(self.out / "errors"), expected)
        # ANDed: the filter and a code the filter does not find.
        self.export(
            "--filter",
            errors,
            "--code",
            str(self.two.code),
            "--project",
            self.project.name,
            "--out",
            str(self.out / "and"),
        )
        self.assertEqual(
            self.exported(self.out / "and"), expected & {str(self.two.code)}
        )

    def exported(self, folder: Path) -> set[str]:
        manifest = json.loads((folder / "manifest.json").read_text())
        return {row["code"] for row in manifest["recordings"]}

    def test_a_bad_filter_is_a_command_error_naming_the_problem(self) -> None:
        bad = json.dumps({"version": 1, "where": {"term": "no_such_term"}})
        with self.assertRaisesMessage(CommandError, "the filter is not valid: /where"):
            self.export("--filter", bad, "--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "the filter is not valid"):
            self.export("--filter", "{not json", "--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "no project 'Nope'"):
            self.export("--project", "Nope", "--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "a .zip, .tar.gz or .tgz"):
            self.export("--archive", str(self.out / "x.rar"))
        with self.assertRaisesMessage(CommandError, "not both"):
            self.export("--filter", "{}", "--filter-file", "f", "--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "cannot read the filter file"):
            self.export("--filter-file", str(self.out / "none"), "--out", str(self.out))
        absent = "6f1c2d9e-0000-4000-8000-000000000000"
        with self.assertRaisesMessage(CommandError, f"no recording {absent}"):
            self.export("--code", absent, "--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "'x' is not a recording code"):
            self.export("--code", "x", "--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "no project 'Nope'"):
            self.import_(str(self.out), "--project", "Nope")

    def test_a_filter_file_selects_as_the_filter_does(self) -> None:
        where = {"term": "session_id", "in": ["two"]}
        path = self.blob_dir.parent / f"{self.blob_dir.name}-filter.json"
        path.write_text(json.dumps({"version": 1, "where": where}))
        self.addCleanup(path.unlink)
        self.export("--filter-file", str(path), "--out", str(self.out))
        self.assertEqual(self.exported(self.out), {str(self.two.code)})

    def test_without_project_the_exported_project_must_exist(self) -> None:
        self.export("--out", str(self.out))
        self.empty_installation()
        Project.objects.filter(pk=self.project.pk).delete()
        err = StringIO()
        with self.assertRaisesMessage(CommandError, "2 document(s) could not"):
            call_command(
                "import_recordings", str(self.out), stdout=StringIO(), stderr=err
            )
        self.assertIn(f"no project '{self.project.code}' here", err.getvalue())

    def test_an_unreadable_blob_is_reported_and_the_exit_is_not_zero(self) -> None:
        for key in {c.compacted_into for c in self.two.chunks.all()}:
            (self.blob_dir / key).unlink()
        err = StringIO()
        with self.assertRaisesMessage(CommandError, "1 recording(s) could not be"):
            call_command(
                "export_recordings",
                "--out",
                str(self.out),
                stdout=StringIO(),
                stderr=err,
            )
        self.assertIn(f"{self.two.code}: blob ", err.getvalue())
        self.assertIn("is missing", err.getvalue())
        # The other one is whole; no half document of the failed one is left.
        self.assertEqual(self.exported(self.out), {str(self.main.code)})
        self.assertFalse((self.out / f"{self.two.code}.json").exists())
        manifest = json.loads((self.out / "manifest.json").read_text())
        self.assertEqual(
            [row["code"] for row in manifest["failed"]], [str(self.two.code)]
        )

    def test_exporting_held_recordings_is_audited(self) -> None:
        PrivacyAuditEntry.objects.all().delete()
        self.export("--out", str(self.out))
        (entry,) = PrivacyAuditEntry.objects.all()
        self.assertEqual(entry.project, self.project)
        self.assertEqual(entry.actor_name, "manage.py export_recordings")
        self.assertEqual(entry.changes["recordings"], [None, [str(self.two.code)]])
        self.assertEqual(entry.changes["legal_hold_export"][1]["format"], "json")

    def test_import_errors_are_messages_not_tracebacks(self) -> None:
        self.export("--out", str(self.out))
        with self.assertRaisesMessage(CommandError, "not a folder, .zip"):
            self.import_(str(self.out / "missing.zip"))
        main = self.out / f"{self.main.code}.json"
        document = json.loads(main.read_text())
        self.empty_installation()
        cases = {
            "format": ({**document, "format": "other"}, "its format is 'other'"),
            "version": ({**document, "version": 9}, "export version 9"),
            "column": (
                {**document, "recording": {**document["recording"], "started_at": "x"}},
                "started_at",
            ),
            "window": ({**document, "windows": {"w": [1, 2]}}, "not a list of rrweb"),
        }
        for what, (changed, message) in cases.items():
            with self.subTest(what):
                folder = self.out / what
                folder.mkdir()
                (folder / "doc.json").write_text(json.dumps(changed))
                err = StringIO()
                with self.assertRaisesMessage(CommandError, "1 document(s) could"):
                    call_command(
                        "import_recordings",
                        str(folder),
                        "--project",
                        str(self.project.code),
                        stdout=StringIO(),
                        stderr=err,
                    )
                self.assertIn(message, err.getvalue())
                self.assertFalse(Recording.objects.exists())

    def test_a_damaged_archive_member_is_refused(self) -> None:
        archive = self.out / "export.zip"
        self.out.mkdir()
        self.export("--archive", str(archive))
        damaged = self.out / "damaged.zip"
        with zipfile.ZipFile(archive) as source, zipfile.ZipFile(damaged, "w") as to:
            for name in source.namelist():
                data = source.read(name)
                to.writestr(name, data if name == "manifest.json" else data + b" ")
        with self.assertRaisesMessage(CommandError, "checksum is not the manifest"):
            self.import_(str(damaged))

    def test_the_tar_archive_holds_the_documents_and_the_manifest(self) -> None:
        archive = self.out / "export.tgz"
        self.out.mkdir()
        self.export("--archive", str(archive))
        with tarfile.open(archive) as tar:
            names = sorted(tar.getnames())
        codes = sorted(f"{r.code}.json" for r in Recording.objects.all())
        self.assertEqual(names, sorted([*codes, "manifest.json"]))


class PlainReaderTests(ReplayTestCase):
    """docs/storage-format.md's reader: SQL, gzip and JSON, no ReplayHub code."""

    def setUp(self) -> None:
        super().setUp()
        self.make_project("Shop", token=FIXTURE_TOKEN)
        events = session_events("idle-rotation.0")
        send_rrweb(self.client, FIXTURE_TOKEN, "t1", events[:100], "two", "tab-1")
        send_rrweb(self.client, FIXTURE_TOKEN, "t2", events[100:], "two", "tab-2")
        recording_compact(recording=Recording.objects.get())

    def read_plainly(self, code: str) -> dict[str, list[Any]]:
        windows: dict[str, list[Any]] = {}
        seen = set()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM recordings_recording WHERE code = %s",
                [code.replace("-", "")],
            )
            (rec_id,) = cursor.fetchone()
            cursor.execute(
                "SELECT window_id, compacted_into, blob_key, data FROM "
                "recordings_snapshotchunk WHERE recording_id = %s "
                "ORDER BY first_timestamp, created",
                [rec_id],
            )
            rows = cursor.fetchall()
        for window, compacted, blob, data in rows:
            key = compacted or blob
            if key and key in seen:
                continue
            seen.add(key)
            raw = (self.blob_dir / key).read_bytes() if key else bytes(data)
            windows.setdefault(window, []).extend(json.loads(gzip.decompress(raw)))
        for events in windows.values():
            events.sort(key=lambda event: event["timestamp"])
        return windows

    def test_the_documented_reader_gets_every_window(self) -> None:
        events = session_events("idle-rotation.1")
        send_rrweb(self.client, FIXTURE_TOKEN, "l1", events[:40], "live", "w")
        send_rrweb(self.client, FIXTURE_TOKEN, "l2", events[40:], "live", "w")
        for recording in Recording.objects.all():  # compacted ones and a live one
            expected = {
                window: recording_events(recording=recording, window_id=window)
                for window in recording.window_ids()
            }
            self.assertEqual(self.read_plainly(str(recording.code)), expected)

    def test_the_documented_segment_reader_gets_each_slice(self) -> None:
        doc = (
            Path(__file__).resolve().parents[2] / "docs/storage-format.md"
        ).read_text()
        found = re.search(r"```python\n(import json, zlib\n.*?)```", doc, re.S)
        assert found, "the segment reader is not in docs/storage-format.md"
        namespace: dict[str, Any] = {}
        exec(found[1], namespace)  # noqa: S102 - the documentation's own example
        recording = Recording.objects.get()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT window_id, key, segments FROM recordings_windowblob "
                "WHERE recording_id = %s",
                [recording.pk],
            )
            rows = cursor.fetchall()
        self.assertEqual(len(rows), 2)
        for window, key, segments in rows:
            blob = (self.blob_dir / key).read_bytes()
            entries = json.loads(segments) if isinstance(segments, str) else segments
            events = [
                event
                for entry in entries
                for event in namespace["segment_events"](blob, entry)
            ]
            expected = recording_events(recording=recording, window_id=window)
            self.assertEqual(events, expected)


class DocumentReadTests(ReplayTestCase):
    """archives.document_read: the document a value at a time, windows last."""

    def setUp(self) -> None:
        super().setUp()
        self.make_project("Shop", token=FIXTURE_TOKEN)
        events = session_events("main.0")[:300]
        send_rrweb(self.client, FIXTURE_TOKEN, "a", events[:150], "s", "w-1")
        send_rrweb(self.client, FIXTURE_TOKEN, "b", events[150:], "s", "w-2")
        recording = Recording.objects.get()
        meta = {"code": str(recording.code), "note": "ünïcode ✓", "n": 12345}
        self.data = b"".join(responses.export_chunks(recording=recording, meta=meta))

    def read(self, data: bytes) -> tuple[dict[str, Any], list[Any]]:
        header, windows = archives.document_read(io.BytesIO(data))
        return header, list(windows or [])

    def test_it_reads_what_json_reads_whatever_the_read_size(self) -> None:
        whole = json.loads(self.data)
        expected = list(whole.pop("windows").items())
        # Reads of a few bytes cut numbers, strings and UTF-8 characters in two.
        for size in (1, 7, 64, 1024 * 1024):
            with (
                self.subTest(size=size),
                mock.patch.object(archives, "_READ_BYTES", size),
            ):
                header, windows = self.read(b" \n" + self.data + b"\n")
                self.assertEqual(header, whole)
                self.assertEqual(windows, expected)

    def test_what_is_not_an_export_document_is_a_value_error(self) -> None:
        cases = {
            b"[1, 2]": "expected '{'",
            self.data[:-2]: "ends early",
            self.data[:-40]: "",  # cut inside an event: json's own message
            self.data + b"{}": "more follows",
            self.data[:-1] + b', "late": 1}': "`late` comes after `windows`",
            b'{"recording": nope}': "Expecting value",
        }
        for data, message in cases.items():
            with self.subTest(message), self.assertRaisesMessage(ValueError, message):
                self.read(data)
