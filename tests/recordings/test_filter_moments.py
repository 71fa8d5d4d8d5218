"""A filtered list opens each recording at the moment its filter matched."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.urls import reverse

from recordings.models import Marker, Recording
from recordings.search.language import parse_document
from recordings.search.moments import LEAD_MS, first_moments
from tests.recordings.test_admin_filters import with_filter
from tests.recordings.test_filter_terms import MS, T0, FilterCase, S

SONNET = [{"key": "model", "op": "equals", "value": "claude-3-5-sonnet"}]


def document(*terms: dict[str, Any]) -> Any:
    return parse_document({"version": 1, "where": {"all": list(terms)}})


class FirstMomentTests(FilterCase):
    def setUp(self) -> None:
        super().setUp()
        self.llm = self.rec("llm", duration_ms=600_000)
        # A Sonnet call with no error after it, then one with an error 5 s later.
        self.event(
            self.llm, "llm_call_completed", T0 + 20 * S, model="claude-3-5-sonnet"
        )
        self.event(
            self.llm, "llm_call_completed", T0 + 90 * S, model="claude-3-5-sonnet"
        )
        self.event(self.llm, "$exception", T0 + 95 * S)
        self.event(self.llm, "llm_call_completed", T0 + 10 * S, model="gpt-4o")
        self.marker(self.llm, Marker.Kind.RAGE_CLICK, T0 + 300 * S)
        self.marker(self.llm, Marker.Kind.RAGE_CLICK, T0 + 400 * S)
        self.page(self.llm, T0 + 1 * S, "https://shop.test/")
        self.page(self.llm, T0 + 250 * S, "https://shop.test/pricing")
        Recording.objects.filter(pk=self.llm.pk).update(rage_click_count=2)
        self.quiet = self.rec("quiet", duration_ms=60_000)

    def moments(self, *terms: dict[str, Any]) -> dict[str, int]:
        found = first_moments(document(*terms), list(Recording.objects.all()))
        return {
            r.session_id: found[r.pk] for r in Recording.objects.all() if r.pk in found
        }

    def test_an_event_term_points_at_its_first_matching_event(self) -> None:
        term = {"term": "event", "name": "llm_call_completed", "where": SONNET}
        self.assertEqual(self.moments(term), {"llm": 20_000 - LEAD_MS})

    def test_followed_by_points_at_the_event_that_was_followed(self) -> None:
        term = {
            "term": "event",
            "name": "llm_call_completed",
            "where": SONNET,
            "followed_by": {"within": 30, "target": {"error": True}},
        }
        self.assertEqual(self.moments(term), {"llm": 90_000 - LEAD_MS})

    def test_a_signal_points_at_its_first_marker_and_the_earliest_term_wins(
        self,
    ) -> None:
        rage = {"term": "signal", "signal": "rage_clicks", "gte": 1}
        self.assertEqual(self.moments(rage), {"llm": 300_000 - LEAD_MS})
        pricing = {"term": "url", "op": "contains", "value": "/pricing"}
        self.assertEqual(self.moments(rage, pricing), {"llm": 250_000 - LEAD_MS})

    def test_negated_and_whole_recording_terms_point_nowhere(self) -> None:
        self.assertEqual(
            self.moments(
                {"not": {"term": "event", "name": "llm_call_completed"}},
                {"term": "duration", "gte": 1},
                {"term": "url", "op": "not_contains", "value": "/pricing"},
            ),
            {},
        )
        self.assertEqual(first_moments(None, list(Recording.objects.all())), {})

    def test_a_moment_in_the_first_seconds_opens_at_the_start(self) -> None:
        self.page(self.quiet, T0 + 500 * MS, "https://shop.test/blog/")
        term = {"term": "url", "op": "starts_with", "value": "https://shop.test/blog"}
        self.assertEqual(self.moments(term), {"quiet": 0})

    def test_the_admin_list_links_each_row_at_its_moment(self) -> None:
        self.client.force_login(self.alice)
        rage = {
            "version": 1,
            "where": {"term": "signal", "signal": "rage_clicks", "gte": 1},
        }
        changelist = "admin:recordings_recording_changelist"
        response = self.client.get(with_filter(changelist, rage))
        play = reverse("admin:recordings_recording_play", args=[self.llm.code])
        self.assertEqual(self.row_link(response, play)["t"], ["298"])  # 300 s - 2 s
        # Without a filter, rows open at the start.
        self.assertNotIn("t", self.row_link(self.client.get(reverse(changelist)), play))

    def row_link(self, response: Any, play: str) -> dict[str, list[str]]:
        """The query of the list row's link to the player."""
        html = response.content.decode()
        found = re.search(f'href="{re.escape(play)}([^"]*)"', html)
        assert found, "no link to the player"
        return parse_qs(urlsplit(unescape(found.group(1))).query)
