"""The player's timeline document and the offline HTML export (no browser)."""

from __future__ import annotations

import doctest
import json
import re
from typing import Any

from django.urls import reverse

from recordings import access
from recordings.models import Comment, Event, Marker, Person, Project, Recording
from recordings.playback import offline, timeline
from recordings.playback.offline import offline_html
from recordings.playback.timeline import gaps, recording_timeline
from recordings.services.compaction import recording_compact
from recordings.services.projects import role_grant
from recordings.services.segments import recording_segments
from recordings.services.storage import recording_events
from tests.access import rrweb_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, send_rrweb

SHIFT_MS = 30_000  # the second tab starts this long after the first


def shifted(events: list[dict[str, Any]], by: int) -> list[dict[str, Any]]:
    return [{**event, "timestamp": event["timestamp"] + by} for event in events]


class TwoTabs(ReplayTestCase):
    """A session in two tabs: the signup flow, then the same flow in tab b."""

    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)
        self.events = rrweb_events("signup")
        send_rrweb(self.client, FIXTURE_TOKEN, "a1", self.events, "sess", "tab-a")
        later = shifted(self.events, SHIFT_MS)
        send_rrweb(self.client, FIXTURE_TOKEN, "b1", later, "sess", "tab-b")
        self.recording = Recording.objects.get(session_id="sess")
        self.recording.distinct_id = "ada@example.org"
        self.recording.save()
        self.t0 = self.events[0]["timestamp"]


class TimelineTests(TwoTabs):
    def timeline(self) -> dict[str, Any]:
        return recording_timeline(
            recording=self.recording, segment_url=lambda w: f"/events/{w}"
        )

    def test_it_puts_every_window_on_one_timeline(self) -> None:
        found = self.timeline()
        self.assertEqual(found["recording"]["started_ms"], self.t0)
        last = self.events[-1]["timestamp"] + SHIFT_MS
        self.assertEqual(found["recording"]["ended_ms"], last)
        self.assertEqual(found["recording"]["duration_ms"], last - self.t0)
        windows = found["windows"]
        self.assertEqual([w["id"] for w in windows], ["tab-a", "tab-b"])
        self.assertEqual([w["number"] for w in windows], [1, 2])
        self.assertEqual(windows[1]["first_ms"], self.t0 + SHIFT_MS)
        (segment,) = windows[1]["segments"]
        self.assertEqual(segment["url"], "/events/tab-b")
        self.assertGreater(segment["bytes"], 0)

    def test_it_shades_the_stretch_with_no_data(self) -> None:
        inactive = self.timeline()["inactive"]
        end_of_a = self.events[-1]["timestamp"]
        self.assertEqual(inactive, [[end_of_a, self.t0 + SHIFT_MS]])

    def test_it_lists_markers_comments_events_person_environment(self) -> None:
        at = self.recording.started_at
        Marker.objects.create(
            recording=self.recording,
            kind=Marker.Kind.RAGE_CLICK,
            timestamp=at,
            offset_ms=0,
            window_id="tab-a",
            label="5 clicks on button#wish",
        )
        Comment.objects.create(
            recording=self.recording, author=self.bob, text="here", offset_ms=4000
        )
        Event.objects.create(
            project=self.project,
            uuid="e1",
            name="$pageview",
            session_id="sess",
            timestamp=at,
            properties={"$window_id": "tab-b", "$current_url": "http://shop.test/"},
        )
        Person.objects.create(
            project=self.project,
            distinct_id="ada@example.org",
            properties={"email": "ada@example.org", "plan": "growth"},
        )
        found = self.timeline()
        (marker,) = found["markers"]
        self.assertEqual(marker["at_ms"], self.t0)
        self.assertEqual(marker["kind"], "rage_click")
        self.assertEqual(marker["window_id"], "tab-a")
        self.assertEqual(
            found["comments"],
            [
                {
                    "at_ms": self.t0 + 4000,
                    "text": "here",
                    "author": "bob",
                    "window_id": "",
                }
            ],
        )
        self.assertEqual(
            found["events"],
            [
                {
                    "at_ms": self.t0,
                    "name": "$pageview",
                    "window_id": "tab-b",
                    "url": "http://shop.test/",
                }
            ],
        )
        person = found["person"]
        self.assertEqual(person["distinct_id"], "ada@example.org")
        self.assertEqual(person["properties"]["plan"], "growth")
        self.assertIn("distinct_id", person["recordings_url"])
        self.assertIn("sdk", found["environment"])

    def test_the_person_link_lists_their_recordings(self) -> None:
        self.client.force_login(self.alice)
        url = self.timeline()["person"]["recordings_url"]
        page = self.client.get(url)
        self.assertEqual(page.status_code, 200)
        self.assertContains(page, "sess")

    def test_gaps_merge_overlapping_spans(self) -> None:
        self.assertEqual(gaps([], 0, 10, 5), [[0, 10]])
        self.assertEqual(gaps([(0, 4), (2, 9)], 0, 10, 5), [])
        self.assertEqual(gaps([(0, 1), (20, 21)], 0, 21, 5), [[1, 20]])


class TimelineViewTests(TwoTabs):
    def url(self, name: str) -> str:
        return reverse(f"admin:recordings_recording_{name}", args=[self.recording.code])

    def test_it_answers_the_document_with_snapshot_urls(self) -> None:
        self.client.force_login(self.bob)
        response = self.client.get(self.url("timeline"))
        self.assertEqual(response.status_code, 200)
        windows = response.json()["windows"]
        segment = windows[0]["segments"][0]["url"]
        # Live: one segment, the whole window.
        self.assertEqual(segment, self.url("snapshots") + "?window=tab-a&segment=0")
        events = self.client.get(segment).json()
        self.assertEqual(len(events), len(self.events))

    def test_a_compacted_window_is_listed_in_its_segments(self) -> None:
        recording = Recording.objects.get(pk=self.recording.pk)
        recording_compact(recording=recording)
        self.client.force_login(self.bob)
        window = self.client.get(self.url("timeline")).json()["windows"][0]
        listed = recording_segments(recording=recording)[0].segments
        self.assertEqual(len(window["segments"]), len(listed))
        events: list[Any] = []
        for segment in window["segments"]:
            body = self.client.get(segment["url"]).content.decode().strip()
            # The player's rule (watch.js parseSegment): a fragment of one array.
            body = body[1:] if body[:1] in "[," else body
            body = body[:-1] if body.endswith("]") else body
            events += json.loads("[" + body + "]")
        stored = recording_events(recording=recording, window_id="tab-a")
        self.assertEqual(events, stored)

    def test_it_returns_404_to_outsiders(self) -> None:
        # charlie uses ReplayHub, on a project of his own: not this one.
        other = Project.objects.create(name="Charlie's shop")
        role_grant(project=other, principal=self.charlie, role=access.Role.ADMIN)
        self.client.force_login(self.charlie)
        for name in ("timeline", "offline", "play"):
            with self.subTest(name):
                response = self.client.get(self.url(name))
                self.assertIn(response.status_code, (403, 404))
                self.assertNotIn(b"signup", response.content)

    def test_the_player_page_holds_the_timeline_and_links_the_offline_file(
        self,
    ) -> None:
        self.client.force_login(self.bob)
        page = self.client.get(self.url("play"))
        self.assertContains(page, 'id="replayhub-timeline"')
        self.assertContains(page, self.url("offline"))
        self.assertContains(page, "recordings/watch.js")
        self.assertContains(page, "Keyboard shortcuts")
        self.assertNotIn("<script>", page.content.decode())

    def test_the_offline_file_downloads(self) -> None:
        self.client.force_login(self.bob)
        response = self.client.get(self.url("offline"))
        self.assertEqual(response.status_code, 200)
        self.assertIn("attachment", response["Content-Disposition"])
        body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        self.assertIn('id="replayhub-timeline"', body)

    def test_the_offline_file_is_a_503_when_storage_fails(self) -> None:
        recording_compact(recording=self.recording)
        self.take_storage_down()
        self.client.force_login(self.bob)
        response = self.client.get(self.url("offline"))
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"], "storage_unavailable")


class OfflineHtmlTests(TwoTabs):
    def html(self) -> str:
        return b"".join(offline_html(self.recording)).decode()

    def blocks(self, html: str) -> dict[str, Any]:
        found = re.findall(
            r'<script id="([^"]+)" type="application/json">(.*?)</script>', html, re.S
        )
        return {name: json.loads(text) for name, text in found}

    def test_it_inlines_the_timeline_and_every_window(self) -> None:
        Marker.objects.create(
            recording=self.recording,
            kind=Marker.Kind.DEAD_CLICK,
            timestamp=self.recording.started_at,
            offset_ms=0,
            label="dead </script><b>",
        )
        blocks = self.blocks(self.html())
        timeline = blocks["replayhub-timeline"]
        self.assertEqual(timeline["markers"][0]["label"], "dead </script><b>")
        urls = [w["segments"][0]["url"] for w in timeline["windows"]]
        self.assertEqual(urls, ["#replayhub-segment-1", "#replayhub-segment-2"])
        for number, window in enumerate(("tab-a", "tab-b"), 1):
            stored = recording_events(recording=self.recording, window_id=window)
            self.assertEqual(blocks[f"replayhub-segment-{number}"], stored)

    def test_it_loads_nothing_from_anywhere(self) -> None:
        html = self.html()
        self.assertIsNone(re.search(r"<script[^>]+src=", html))
        self.assertIsNone(re.search(r"<link[^>]+href=", html))
        style = html[html.index("<style>") : html.index("</style>")]
        self.assertIsNone(re.search(r"@import|url\((?!'data:)", style))
        self.assertIn("Replayer", html)  # rrweb, inlined
        self.assertIn("parseSegment", html)  # the player's own script, inlined

    def test_a_recorded_script_end_tag_cannot_end_the_data(self) -> None:
        evil = [
            {"type": 5, "data": {"tag": "x", "payload": "</script><script>1"}}
            | {"timestamp": self.t0 + 1}
        ]
        send_rrweb(self.client, FIXTURE_TOKEN, "a2", evil, "sess", "tab-a")
        html = self.html()
        self.assertNotIn("</script><script>1", html)
        segment = self.blocks(html)["replayhub-segment-1"]
        self.assertIn(evil[0], segment)

    def test_a_recording_without_a_person_exports(self) -> None:
        self.recording.distinct_id = ""
        self.recording.save()
        self.assertIsNone(self.blocks(self.html())["replayhub-timeline"]["person"])


def test_the_doctests_hold() -> None:
    assert doctest.testmod(timeline).failed == 0
    assert doctest.testmod(offline).failed == 0
