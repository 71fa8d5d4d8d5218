"""Compacted windows are cut into segments a player fetches one by one, each sent
as the blob's stored bytes (issue 15)."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any, ClassVar
from unittest import mock

import orjson
from django.test import SimpleTestCase
from django.urls import reverse

from privacy import services as privacy_services
from privacy.models import PrivacySettings
from recordings import blobs
from recordings.models import Recording, WindowBlob
from recordings.playback import responses
from recordings.services.compaction import recording_compact
from recordings.services.segments import recording_segments, window_segments
from recordings.services.storage import recording_events, recording_purge
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, send_full_session_snapshots, send_rrweb
from tests.recordings.test_blobs import with_recordings_storage
from tests.s3 import create_bucket, s3_client, s3_storage

MAIN_SESSION = "01a202a4-57be-7561-8ae1-39f845ed8af5"
EMAIL_PATTERN = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
T0 = 1_790_000_000_000


def fragment_events(fragment: bytes) -> list[dict[str, Any]]:
    """The player's rule: strip one leading `[` or `,` and one trailing `]`."""
    text = fragment[1:] if fragment[:1] in (b"[", b",") else fragment
    text = text[:-1] if text.endswith(b"]") else text
    events: list[dict[str, Any]] = orjson.loads(b"[" + text + b"]")
    return events


def synthetic(count: int, step_ms: int, pad: int = 0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": 4, "data": {"href": "http://shop.test/"}, "timestamp": T0},
        {"type": 2, "data": {"node": {"id": 1}}, "timestamp": T0 + 1},
    ]
    for n in range(count):
        data = {"source": 1, "positions": [], "pad": "x" * pad}
        events.append({"type": 3, "data": data, "timestamp": T0 + 2 + n * step_ms})
    return events


class SegmentSizingTests(SimpleTestCase):
    def assert_sizing(self, events: list[dict[str, Any]]) -> list[blobs.Segment]:
        data, segments = blobs.encode_segmented(events)
        self.assertEqual(orjson.loads(gzip.decompress(data)), events)
        self.assertEqual(sum(s.events for s in segments), len(events))
        first, *later = segments
        self.assertIn(2, [e["type"] for e in events[: first.events]])
        snapshot_ms = next(e["timestamp"] for e in events if e["type"] == 2)
        if first.events > 2:
            self.assertLess(first.last_ms - snapshot_ms, blobs.FIRST_SEGMENT_MS)
            self.assertLessEqual(first.raw, blobs.FIRST_SEGMENT_BYTES + 2)
        for segment in later:
            if segment.events > 1:  # one event bigger than the bound stands alone
                self.assertLess(segment.last_ms - segment.first_ms, blobs.SEGMENT_MS)
                self.assertLessEqual(segment.raw, blobs.SEGMENT_BYTES + 2)
        return segments

    def test_it_cuts_by_time(self) -> None:
        segments = self.assert_sizing(synthetic(1_200, 1_000))  # 20 minutes
        self.assertEqual(len(segments), 5)  # 30 s, then 19½ minutes by 5 minutes

    def test_it_cuts_by_bytes(self) -> None:
        segments = self.assert_sizing(synthetic(400, 10, pad=20_000))  # 4 s, 8 MB
        self.assertGreater(len(segments), 8)

    def test_an_oversized_event_is_a_segment_of_its_own(self) -> None:
        events = synthetic(3, 1_000)
        events[3]["data"]["pad"] = "x" * (2 * blobs.SEGMENT_BYTES)
        segments = self.assert_sizing(events)
        self.assertIn(1, [s.events for s in segments])

    def test_the_first_segment_reaches_a_late_full_snapshot(self) -> None:
        events = synthetic(100, 1_000)
        snapshot = events.pop(1)
        snapshot["timestamp"] = events[60]["timestamp"]
        events.insert(61, snapshot)
        segments = self.assert_sizing(events)
        self.assertEqual(segments[0].first_ms, T0)
        self.assertGreaterEqual(segments[0].events, 62)

    def test_no_events_is_one_empty_segment(self) -> None:
        data, segments = blobs.encode_segmented([])
        self.assertEqual(gzip.decompress(data), b"[]")
        (segment,) = segments
        stored = data[segment.offset : segment.offset + segment.length]
        self.assertEqual(gzip.decompress(blobs.segment_member(stored, segment)), b"[]")


class SegmentedWindowTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        send_full_session_snapshots(self.client)
        self.recording = Recording.objects.get(session_id=MAIN_SESSION)
        self.before = recording_events(recording=self.recording)
        (self.window,) = self.recording.window_ids()
        self.url = reverse(
            "admin:recordings_recording_snapshots", args=[self.recording.code]
        )
        self.client.force_login(self.alice)

    def compact(self) -> tuple[WindowBlob, bytes]:
        recording_compact(recording=self.recording)
        index = WindowBlob.objects.get(recording=self.recording)
        return index, (self.blob_dir / index.key).read_bytes()

    def get_segment(
        self, number: int | str, gzip_ok: bool = True, **params: Any
    ) -> Any:
        query = {"window": self.window, "segment": number, **params}
        headers = {"Accept-Encoding": "gzip, br"} if gzip_ok else {}
        return self.client.get(self.url, query, headers=headers)

    def test_compaction_writes_one_gzip_stream_cut_into_indexed_segments(
        self,
    ) -> None:
        index, blob = self.compact()
        self.assertEqual(orjson.loads(gzip.decompress(blob)), self.before)
        segments = window_segments(index)
        self.assertEqual(len(segments), 2)  # 72 s: the first 30 s, then the rest
        self.assertEqual(segments[0].offset, blobs.GZIP_HEADER_BYTES)
        for previous, segment in zip(segments, segments[1:], strict=False):
            self.assertEqual(segment.offset, previous.offset + previous.length)
        last = segments[-1]
        self.assertEqual(last.offset + last.length, len(blob) - 10)  # end, trailer
        self.assertEqual(sum(s.events for s in segments), len(self.before))

    def test_each_segment_alone_is_its_time_slice_sent_as_stored(self) -> None:
        index, blob = self.compact()
        played: list[dict[str, Any]] = []
        for number, segment in enumerate(window_segments(index)):
            response = self.get_segment(number)
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response["Content-Encoding"], "gzip")
            self.assertEqual(response["Content-Type"], "application/json")
            body = response.content
            # The stored bytes themselves, in a 20-byte gzip envelope.
            stored = blob[segment.offset : segment.offset + segment.length]
            self.assertEqual(body[10:-10], stored)
            self.assertEqual(len(body), segment.length + blobs.ENVELOPE_BYTES)
            fragment = gzip.decompress(body)
            events = fragment_events(fragment)
            start = len(played)
            self.assertEqual(events, self.before[start : start + segment.events])
            self.assertEqual(events[0]["timestamp"], segment.first_ms)
            self.assertEqual(events[-1]["timestamp"], segment.last_ms)
            plain = self.get_segment(number, gzip_ok=False)
            self.assertNotIn("Content-Encoding", plain)
            self.assertEqual(plain.content, fragment)
            played += events
        self.assertEqual(played, self.before)
        first = fragment_events(gzip.decompress(self.get_segment(0).content))
        self.assertIn(2, [event["type"] for event in first])
        self.assertEqual(self.get_segment(len(played)).status_code, 404)

    def test_it_never_reads_the_whole_blob_for_a_segment(self) -> None:
        self.compact()
        with (
            mock.patch.object(blobs, "open_raw", side_effect=AssertionError),
            mock.patch.object(blobs, "read_raw", side_effect=AssertionError),
        ):
            self.assertEqual(self.get_segment(1).status_code, 200)

    def test_listing_the_segments_takes_two_queries_however_many_chunks(
        self,
    ) -> None:
        self.assertGreater(self.recording.chunks.count(), 2)
        for state in ("live", "compacted"):
            with self.subTest(state), self.assertNumQueries(2):
                recording_segments(recording=self.recording)
            self.compact()

    def test_the_timeline_lists_every_segment_with_its_url(self) -> None:
        index, _blob = self.compact()
        timeline = responses.segments_timeline(
            recording=self.recording, events_url=self.url
        )
        (window,) = timeline
        self.assertEqual(window["window_id"], self.window)
        self.assertEqual(window["first_ms"], self.before[0]["timestamp"])
        self.assertEqual(window["last_ms"], self.before[-1]["timestamp"])
        segments = window_segments(index)
        self.assertEqual(len(window["segments"]), len(segments))
        played = []
        for listed, segment in zip(window["segments"], segments, strict=True):
            self.assertEqual(listed["bytes"], segment.length + blobs.ENVELOPE_BYTES)
            response = self.client.get(
                listed["url"], headers={"Accept-Encoding": "gzip"}
            )
            self.assertEqual(len(response.content), listed["bytes"])
            self.assertIn("immutable", response["Cache-Control"])
            played += fragment_events(gzip.decompress(response.content))
        self.assertEqual(played, self.before)

    def test_only_the_current_version_is_cached_for_good(self) -> None:
        self.compact()
        (window,) = recording_segments(recording=self.recording)
        stale = self.get_segment(0, v="0123456789abcdef")
        self.assertEqual(stale["Cache-Control"], "private, no-cache")
        current = self.get_segment(0, v=window.version)
        self.assertIn("private", current["Cache-Control"])
        again = self.client.get(
            self.url,
            {"window": self.window, "segment": "0"},
            headers={"Accept-Encoding": "gzip", "If-None-Match": current["ETag"]},
        )
        self.assertEqual(again.status_code, 304)

    def exported_windows(self) -> Any:
        """The export's windows (compaction adds markers to the rest of it)."""
        exported = b"".join(responses.export_chunks(recording=self.recording, meta={}))
        return json.loads(exported)["windows"]

    def test_the_export_is_the_same_document_as_before_segments(self) -> None:
        live = self.exported_windows()
        index, _blob = self.compact()
        segmented = self.exported_windows()
        self.assertEqual(segmented, live)
        # The same window compacted as before this change: one plain gzip stream.
        (self.blob_dir / index.key).write_bytes(blobs.encode_events(self.before))
        self.assertEqual(self.exported_windows(), segmented)

    def test_the_export_reads_on_across_gzip_members(self) -> None:
        # A blob written as several gzip members (as `cat a.gz b.gz` would) is
        # still one array to every reader, the streamed export included.
        live = self.exported_windows()
        index, _blob = self.compact()
        raw = blobs.dumps(self.before)
        half = raw.index(b',{"type"', len(raw) // 2)
        members = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
        (self.blob_dir / index.key).write_bytes(members)
        self.assertEqual(self.exported_windows(), live)

    def test_a_window_compacted_before_segments_plays_as_one_segment(self) -> None:
        index, _blob = self.compact()
        old_blob = blobs.encode_events(self.before)
        (self.blob_dir / index.key).write_bytes(old_blob)
        index.delete()
        (window,) = recording_segments(recording=self.recording)
        self.assertIsNone(window.version)
        self.assertEqual([s.index for s in window.segments], [0])
        response = self.get_segment(0)
        self.assertEqual(response.content, old_blob)  # the whole blob, as stored
        self.assertEqual(response["Cache-Control"], "private, no-cache")
        self.assertEqual(orjson.loads(gzip.decompress(response.content)), self.before)
        self.assertEqual(self.get_segment(1).status_code, 404)

    def test_a_live_window_is_one_segment_of_all_its_events(self) -> None:
        (window,) = recording_segments(recording=self.recording)
        self.assertIsNone(window.version)
        (segment,) = window.segments
        self.assertEqual(segment.first_ms, self.before[0]["timestamp"])
        response = self.get_segment(0)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), self.before)
        self.assertEqual(self.get_segment(1).status_code, 404)

    def test_bad_segment_requests_are_refused(self) -> None:
        self.compact()
        self.assertEqual(self.client.get(self.url, {"segment": "0"}).status_code, 400)
        self.assertEqual(self.get_segment("x").status_code, 400)
        self.assertEqual(self.get_segment(-1).status_code, 400)
        response = self.client.get(self.url, {"window": "nope", "segment": "0"})
        self.assertEqual(response.status_code, 404)

    def test_outsiders_get_no_segment(self) -> None:
        self.compact()
        self.client.force_login(self.charlie)
        self.assertIn(self.get_segment(0).status_code, (302, 403, 404))

    def test_redaction_rewrites_the_segments_with_the_blob(self) -> None:
        old, _blob = self.compact()
        PrivacySettings.objects.update_or_create(
            project=self.project, defaults={"scrub_patterns": EMAIL_PATTERN}
        )
        privacy_services.recordings_redact(project=self.project, actor=self.alice)
        index = WindowBlob.objects.get(recording=self.recording)
        self.assertNotEqual(index.key, old.key)  # a new generation
        self.assertFalse((self.blob_dir / old.key).exists())
        self.assertEqual(
            set(self.recording.chunks.values_list("compacted_into", flat=True)),
            {index.key},
        )
        after = recording_events(recording=self.recording)
        self.assertNotEqual(after, self.before)
        self.assertEqual(len(after), len(self.before))
        played: list[dict[str, Any]] = []
        for number in range(len(index.segments)):
            played += fragment_events(gzip.decompress(self.get_segment(number).content))
        self.assertEqual(played, after)

    def test_a_late_batch_recompacted_replaces_the_index(self) -> None:
        old, _blob = self.compact()
        late = [{**event, "timestamp": event["timestamp"] + 1} for event in self.before]
        send_rrweb(
            self.client,
            FIXTURE_TOKEN,
            "late",
            late[-3:],
            session_id=MAIN_SESSION,
            window_id=self.window,
        )
        recording_compact(recording=self.recording)
        (index,) = WindowBlob.objects.filter(recording=self.recording)
        self.assertNotEqual(index.key, old.key)

    def test_deleting_the_recording_deletes_its_index(self) -> None:
        self.compact()
        recording_purge(recording=self.recording)
        self.assertFalse(WindowBlob.objects.exists())


class S3SegmentTests(ReplayTestCase):
    bucket: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.bucket = create_bucket()

    def setUp(self) -> None:
        super().setUp()
        self.location = f"segments-{uuid.uuid4().hex[:8]}"
        self.enterContext(
            with_recordings_storage(s3_storage(self.bucket, location=self.location))
        )
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)

    def test_segments_are_ranged_reads_of_the_stored_object(self) -> None:
        send_full_session_snapshots(self.client)
        recording = Recording.objects.get(session_id=MAIN_SESSION)
        before = recording_events(recording=recording)
        recording_compact(recording=recording)
        index = WindowBlob.objects.get(recording=recording)
        key = f"{self.location}/{index.key}"
        stored = s3_client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        self.assertEqual(orjson.loads(gzip.decompress(stored)), before)
        url = reverse("admin:recordings_recording_snapshots", args=[recording.code])
        self.client.force_login(self.alice)
        played: list[dict[str, Any]] = []
        # No whole-object download: S3Storage's open() would do one.
        with mock.patch(
            "storages.backends.s3.S3Storage._open", side_effect=AssertionError
        ):
            for number, segment in enumerate(window_segments(index)):
                response = self.client.get(
                    url,
                    {"window": index.window_id, "segment": str(number)},
                    headers={"Accept-Encoding": "gzip"},
                )
                self.assertEqual(response.status_code, 200)
                end = segment.offset + segment.length
                self.assertEqual(response.content[10:-10], stored[segment.offset : end])
                played += fragment_events(gzip.decompress(response.content))
        self.assertEqual(played, before)
