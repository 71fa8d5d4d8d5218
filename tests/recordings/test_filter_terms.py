"""The filter language against a small hand-made set of recordings with known
answers: each term, the negations, the groups, the "within N s" edges, the orders.

Runs on whichever database the suite runs on (CI: SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from recordings.ingest.flags import feature_flags_of
from recordings.models import Event, Marker, Person, Project, Recording
from recordings.models.recording import GAP_WARNING_MS, OVERSIZED_EVENT_BYTES
from recordings.search.compiler import recordings_matching
from recordings.search.language import parse_document
from tests.base import ReplayTestCase

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=1)
S = dt.timedelta(seconds=1)
MS = dt.timedelta(milliseconds=1)


class FilterCase(ReplayTestCase):
    def rec(
        self, name: str, project: Project | None = None, **fields: Any
    ) -> Recording:
        started = fields.pop("started_at", T0)
        fields.setdefault("distinct_id", f"user-{name}")
        return Recording.objects.create(
            project=project or self.project,
            session_id=name,
            started_at=started,
            ended_at=started + dt.timedelta(milliseconds=fields.get("duration_ms", 0)),
            **fields,
        )

    def event(
        self, recording: Recording, name: str, at: dt.datetime, **properties: Any
    ) -> Event:
        return Event.objects.create(
            project=recording.project,
            uuid=f"{recording.session_id}-{name}-{at.timestamp()}",
            name=name,
            distinct_id=recording.distinct_id,
            session_id=recording.session_id,
            timestamp=at,
            properties=properties,
        )

    def marker(
        self, recording: Recording, kind: str, at: dt.datetime, **details: Any
    ) -> Marker:
        return Marker.objects.create(
            recording=recording,
            kind=kind,
            timestamp=at,
            offset_ms=int((at - recording.started_at) / MS),
            details=details,
        )

    def page(self, recording: Recording, at: dt.datetime, url: str) -> None:
        """A page the signals found: in the recording's `urls`, and a marker."""
        recording.refresh_from_db()
        stamp = int(at.timestamp() * 1000)
        recording.urls = [*recording.urls, {"url": url, "timestamp_ms": stamp}]
        recording.save(update_fields=["urls"])
        self.marker(recording, Marker.Kind.PAGE, at, url=url)

    def found(self, where: dict[str, Any] | None, order: str = "newest") -> list[str]:
        body: dict[str, Any] = {"version": 1, "order": order}
        if where is not None:
            body["where"] = where
        document = parse_document(body)
        scoped = Recording.objects.for_project(self.project)
        found = recordings_matching(scoped, document, now=NOW)
        return list(found.values_list("session_id", flat=True))

    def assertFinds(self, where: dict[str, Any], expected: set[str]) -> None:
        self.assertEqual(set(self.found(where)), expected, where)


class ColumnTermsTest(FilterCase):
    def setUp(self) -> None:
        super().setUp()
        self.rec(
            "safari-errors",
            started_at=NOW - dt.timedelta(days=2),
            duration_ms=200_000,
            active_ms=60_000,
            browser="Safari",
            os="Mac OS X",
            device_type="Desktop",
            country="FR",
            console_error_count=2,
            lib="web",
            lib_version="1.200.3",
            first_url="https://shop.test/pricing",
            has_full_snapshot=True,
        )
        self.rec(
            "chrome-mobile",
            started_at=NOW - dt.timedelta(days=10),
            duration_ms=100_000,
            active_ms=90_000,
            browser="Chrome Mobile",
            os="Android",
            device_type="Mobile",
            country="DE",
            dead_click_count=3,
            rage_click_count=1,
            lib="web",
            lib_version="1.190.0",
            first_url="https://shop.test/",
            has_full_snapshot=True,
            legal_hold=True,
        )
        self.rec(
            "broken",
            started_at=NOW - dt.timedelta(hours=1),
            duration_ms=180_000,
            browser="Firefox",
            lib="rrweb",
            has_full_snapshot=False,
            largest_event_bytes=OVERSIZED_EVENT_BYTES,
            lost_changes=2,
        )

    def test_started_absolute_and_relative(self) -> None:
        self.assertFinds(
            {"term": "started", "from": "-7d"}, {"safari-errors", "broken"}
        )
        self.assertFinds({"term": "started", "from": "-3h"}, {"broken"})
        self.assertFinds({"term": "started", "to": "-7d"}, {"chrome-mobile"})
        day = (NOW - dt.timedelta(days=2)).date().isoformat()
        self.assertFinds(
            {"term": "started", "from": day, "to": "-1d"}, {"safari-errors"}
        )
        exact = (NOW - dt.timedelta(hours=1)).isoformat()
        # `from` is inclusive, `to` exclusive.
        self.assertFinds({"term": "started", "from": exact}, {"broken"})
        self.assertFinds(
            {"term": "started", "from": "-3d", "to": exact}, {"safari-errors"}
        )

    def test_duration_and_active_time_in_seconds(self) -> None:
        self.assertFinds({"term": "duration", "gte": 180}, {"safari-errors", "broken"})
        self.assertFinds({"term": "duration", "lte": 180}, {"chrome-mobile", "broken"})
        self.assertFinds({"term": "duration", "gte": 150, "lte": 190}, {"broken"})
        self.assertFinds({"term": "active_time", "gte": 61}, {"chrome-mobile"})

    def test_values_of_a_column(self) -> None:
        self.assertFinds(
            {"term": "browser", "in": ["Safari", "Firefox"]},
            {"safari-errors", "broken"},
        )
        self.assertFinds({"term": "device_type", "in": ["Mobile"]}, {"chrome-mobile"})
        self.assertFinds({"term": "os", "in": ["Android"]}, {"chrome-mobile"})
        self.assertFinds({"term": "country", "in": ["FR", "US"]}, {"safari-errors"})
        self.assertFinds(
            {"term": "distinct_id", "in": ["user-broken", "user-nobody"]}, {"broken"}
        )
        self.assertFinds(
            {"term": "session_id", "in": ["chrome-mobile"]}, {"chrome-mobile"}
        )

    def test_signals_count_at_least(self) -> None:
        self.assertFinds(
            {"term": "signal", "signal": "console_errors", "gte": 1}, {"safari-errors"}
        )
        self.assertFinds(
            {"term": "signal", "signal": "dead_clicks", "gte": 3}, {"chrome-mobile"}
        )
        self.assertFinds({"term": "signal", "signal": "dead_clicks", "gte": 4}, set())
        self.assertFinds(
            {"term": "signal", "signal": "rage_clicks", "lte": 0},
            {"safari-errors", "broken"},
        )

    def test_sdk_and_version(self) -> None:
        self.assertFinds({"term": "sdk", "lib": "rrweb"}, {"broken"})
        self.assertFinds(
            {
                "term": "sdk",
                "lib": "web",
                "version": {"op": "starts_with", "value": "1.19"},
            },
            {"chrome-mobile"},
        )
        self.assertFinds(
            {"term": "sdk", "version": {"op": "equals", "value": "1.200.3"}},
            {"safari-errors"},
        )

    def test_playability_problems(self) -> None:
        self.assertFinds(
            {"term": "playability", "problem": "no_full_snapshot"}, {"broken"}
        )
        self.assertFinds(
            {"term": "playability", "problem": "oversized_event"}, {"broken"}
        )
        self.assertFinds({"term": "playability", "problem": "lost_data"}, {"broken"})
        self.assertFinds({"term": "playability", "problem": "any"}, {"broken"})

    def test_gap_is_what_the_recording_page_reports(self) -> None:
        live = self.rec("live-gap", max_gap_ms=GAP_WARNING_MS, has_full_snapshot=True)
        # Compacted: the window checks' gap (idle declared) overrides the live one.
        self.rec(
            "idle-not-gap",
            max_gap_ms=GAP_WARNING_MS * 2,
            window_checks={"w": {"longest_gap_ms": 1000}},
            checked_gap_ms=1000,
            has_full_snapshot=True,
        )
        checked = self.rec(
            "checked-gap",
            window_checks={"w": {"longest_gap_ms": GAP_WARNING_MS}},
            checked_gap_ms=GAP_WARNING_MS,
            has_full_snapshot=True,
        )
        self.assertFinds(
            {"term": "playability", "problem": "gap"}, {"live-gap", "checked-gap"}
        )
        for recording in Recording.objects.filter(
            session_id__in=["live-gap", "idle-not-gap", "checked-gap"]
        ):
            has_gap = any("gap" in problem for problem in recording.problems())
            self.assertEqual(has_gap, recording.pk in (live.pk, checked.pk), recording)

    def test_legal_hold(self) -> None:
        self.assertFinds({"term": "legal_hold", "value": True}, {"chrome-mobile"})
        self.assertFinds(
            {"term": "legal_hold", "value": False}, {"safari-errors", "broken"}
        )

    def test_first_url(self) -> None:
        self.assertFinds(
            {"term": "first_url", "op": "contains", "value": "PRICING"},
            {"safari-errors"},
        )
        self.assertFinds(
            {"term": "first_url", "op": "equals", "value": "https://shop.test/"},
            {"chrome-mobile"},
        )
        self.assertFinds(
            {"term": "first_url", "op": "not_contains", "value": "pricing"},
            {"chrome-mobile", "broken"},
        )

    def test_groups_and_negation(self) -> None:
        safari = {"term": "browser", "in": ["Safari"]}
        errors = {"term": "signal", "signal": "console_errors", "gte": 1}
        mobile = {"term": "device_type", "in": ["Mobile"]}
        self.assertFinds({"all": [safari, errors]}, {"safari-errors"})
        self.assertFinds({"any": [safari, mobile]}, {"safari-errors", "chrome-mobile"})
        self.assertFinds({"not": {"any": [safari, mobile]}}, {"broken"})
        self.assertFinds(
            {"all": [{"not": safari}, {"any": [mobile, errors]}]}, {"chrome-mobile"}
        )
        self.assertFinds({"all": []}, {"safari-errors", "chrome-mobile", "broken"})
        self.assertFinds({"any": []}, set())

    def test_orders(self) -> None:
        self.assertEqual(self.found(None), ["broken", "safari-errors", "chrome-mobile"])
        self.assertEqual(
            self.found(None, "oldest"), ["chrome-mobile", "safari-errors", "broken"]
        )
        self.assertEqual(
            self.found(None, "longest"), ["safari-errors", "broken", "chrome-mobile"]
        )
        self.assertEqual(self.found(None, "most_active")[0], "chrome-mobile")
        self.assertEqual(self.found(None, "most_errors")[0], "safari-errors")
        self.assertEqual(self.found(None, "most_rage_clicks")[0], "chrome-mobile")


class PersonTermsTest(FilterCase):
    def setUp(self) -> None:
        super().setUp()
        for name, properties, first_seen in (
            ("growth", {"plan": "growth", "seats": 12, "email": "a@Example.org"}, 2),
            ("free", {"plan": "free", "seats": 1}, 30),
            ("bare", {}, 3),
        ):
            self.rec(name)
            person = Person.objects.create(
                project=self.project, distinct_id=f"user-{name}", properties=properties
            )
            Person.objects.filter(pk=person.pk).update(
                created=NOW - dt.timedelta(days=first_seen)
            )
        self.rec("nobody")  # no person row at all
        # The same distinct id in another project must not count for this one.
        other = self.make_project("Other shop")
        Person.objects.create(
            project=other, distinct_id="user-nobody", properties={"plan": "growth"}
        )

    def person(self, op: str, value: Any = None, key: str = "plan") -> dict[str, Any]:
        term = {"term": "person", "key": key, "op": op}
        return term if value is None else {**term, "value": value}

    def test_text_operators(self) -> None:
        self.assertFinds(self.person("equals", "growth"), {"growth"})
        # "is not" counts people without the property, and recordings without a person.
        self.assertFinds(
            self.person("not_equals", "growth"), {"free", "bare", "nobody"}
        )
        self.assertFinds(self.person("contains", "example", "email"), {"growth"})
        self.assertFinds(self.person("not_contains", "row"), {"free", "bare", "nobody"})

    def test_numbers_and_presence(self) -> None:
        self.assertFinds(self.person("gt", 1, "seats"), {"growth"})
        self.assertFinds(self.person("lte", 1, "seats"), {"free"})
        self.assertFinds(self.person("is_set"), {"growth", "free"})
        self.assertFinds(self.person("is_not_set"), {"bare"})

    def test_first_seen(self) -> None:
        self.assertFinds(
            {"term": "person_first_seen", "from": "-7d"}, {"growth", "bare"}
        )
        self.assertFinds({"term": "person_first_seen", "to": "-7d"}, {"free"})

    def test_new_users_with_long_sessions(self) -> None:
        Recording.objects.filter(session_id="bare").update(duration_ms=200_000)
        self.assertFinds(
            {
                "all": [
                    {"term": "person_first_seen", "from": "-7d"},
                    {"term": "duration", "gte": 180},
                ]
            },
            {"bare"},
        )


class EventTermsTest(FilterCase):
    def setUp(self) -> None:
        super().setUp()
        self.checkout = self.rec("checkout")
        self.abandoned = self.rec("abandoned")
        self.quiet = self.rec("quiet")
        self.event(self.checkout, "checkout_started", T0 + S)
        self.event(self.checkout, "checkout_completed", T0 + 5 * S)
        self.event(self.abandoned, "checkout_started", T0 + S, cart=3)
        for k in range(3):
            self.event(
                self.abandoned, "$pageview", T0 + k * S, **{"$current_url": f"/p{k}"}
            )
        # An event of another project's session with the same id must not count.
        other = self.make_project("Other shop")
        self.event(self.rec("quiet", project=other), "checkout_started", T0)

    def did(self, name: str, **more: Any) -> dict[str, Any]:
        return {"term": "event", "name": name, **more}

    def test_performed_and_not(self) -> None:
        self.assertFinds(self.did("checkout_started"), {"checkout", "abandoned"})
        self.assertFinds(
            {
                "all": [
                    self.did("checkout_started"),
                    {"not": self.did("checkout_completed")},
                ]
            },
            {"abandoned"},
        )
        self.assertFinds({"not": self.did("checkout_started")}, {"quiet"})

    def test_property_conditions(self) -> None:
        where = [{"key": "cart", "op": "gte", "value": 3}]
        self.assertFinds(self.did("checkout_started", where=where), {"abandoned"})
        where = [{"key": "cart", "op": "is_not_set"}]
        self.assertFinds(self.did("checkout_started", where=where), {"checkout"})
        where = [{"key": "$current_url", "op": "equals", "value": "/p2"}]
        self.assertFinds(self.did("$pageview", where=where), {"abandoned"})

    def test_count(self) -> None:
        self.assertFinds(self.did("$pageview", count={"gte": 3}), {"abandoned"})
        self.assertFinds(self.did("$pageview", count={"gte": 4}), set())
        everyone = {"checkout", "abandoned", "quiet"}
        self.assertFinds(self.did("$pageview", count={"gte": 0}), everyone)
        self.assertFinds(self.did("$pageview", count={"lte": 0}), {"checkout", "quiet"})
        self.assertFinds(self.did("$pageview", count={"lte": 2}), {"checkout", "quiet"})


class FollowedByTest(FilterCase):
    """ "Did llm_call_completed (model = claude-3-5-sonnet) and an error followed
    within 30 s", at the edges: exactly 30 s, 30 s + 1 ms, before rather than after."""

    def setUp(self) -> None:
        super().setUp()
        claude = {"model": "claude-3-5-sonnet"}
        self.cases = {
            "exactly": (30 * S, "$exception"),
            "one-ms-late": (30 * S + MS, "$exception"),
            "before": (-S, "$exception"),
        }
        for name, (offset, error) in self.cases.items():
            recording = self.rec(name)
            self.event(recording, "llm_call_completed", T0 + 60 * S, **claude)
            self.event(recording, error, T0 + 60 * S + offset)
        other_model = self.rec("other-model")
        self.event(other_model, "llm_call_completed", T0, model="gpt-4o")
        self.event(other_model, "$exception", T0 + S)
        by_marker = self.rec("console-marker")
        self.event(by_marker, "llm_call_completed", T0, **claude)
        self.marker(by_marker, Marker.Kind.CONSOLE_ERROR, T0 + 10 * S)
        rage = self.rec("rage-after")
        self.event(rage, "llm_call_completed", T0, **claude)
        self.marker(rage, Marker.Kind.RAGE_CLICK, T0 + 2 * S)
        liked = self.rec("liked")
        self.event(liked, "llm_call_completed", T0, **claude)
        self.event(liked, "$exception", T0 + S)
        self.event(liked, "feedback_positive_clicked", T0 + 3 * S)

    def llm(self, target: dict[str, Any], **followed: Any) -> dict[str, Any]:
        return {
            "term": "event",
            "name": "llm_call_completed",
            "where": [{"key": "model", "op": "equals", "value": "claude-3-5-sonnet"}],
            "followed_by": {"within": 30, "target": target, **followed},
        }

    def test_within_is_inclusive_and_after_only(self) -> None:
        self.assertFinds(
            self.llm({"error": True}), {"exactly", "console-marker", "liked"}
        )

    def test_target_event_and_marker(self) -> None:
        self.assertFinds(self.llm({"event": "$exception"}), {"exactly", "liked"})
        self.assertFinds(self.llm({"marker": "rage_click"}), {"rage-after"})
        self.assertFinds(self.llm({"marker": "console_error"}), {"console-marker"})

    def test_absent(self) -> None:
        # An llm call with no error within 30 s after it.
        self.assertFinds(
            self.llm({"error": True}, absent=True),
            {"one-ms-late", "before", "rage-after"},
        )

    def test_the_support_question(self) -> None:
        """llm call + error within 30 s, and did not click the positive feedback."""
        self.assertFinds(
            {
                "all": [
                    self.llm({"error": True}),
                    {"not": {"term": "event", "name": "feedback_positive_clicked"}},
                ]
            },
            {"exactly", "console-marker"},
        )


class FlagsAndUrlsTest(FilterCase):
    def setUp(self) -> None:
        super().setUp()
        on = self.rec("flag-on", first_url="https://shop.test/")
        off = self.rec("flag-off", first_url="https://shop.test/")
        variant = self.rec(
            "variant",
            first_url="https://shop.test/",
            last_url="https://shop.test/pricing?x=1",
        )
        self.event(
            on,
            "$pageview",
            T0,
            **{
                "$feature/new_checkout_flow": True,
                "$active_feature_flags": ["new_checkout_flow"],
            },
        )
        self.event(off, "$pageview", T0, **{"$feature/new_checkout_flow": False})
        self.event(variant, "$pageview", T0, **{"$feature/new_checkout_flow": "test"})
        self.event(variant, "$pageview", T0 + S, **{"$feature/quoted": 'a "b"'})
        self.page(on, T0 + S, "https://shop.test/pricing")
        self.page(off, T0 + S, "https://shop.test/checkout")
        self.page(off, T0 + 2 * S, "https://shop.test/100%_off")

    def test_flag_values(self) -> None:
        flag = {"term": "feature_flag", "flag": "new_checkout_flow"}
        self.assertFinds({**flag, "value": True}, {"flag-on"})
        self.assertFinds({**flag, "value": False}, {"flag-off"})
        self.assertFinds({**flag, "value": "test"}, {"variant"})
        self.assertFinds(flag, {"flag-on", "variant"})
        quoted = {"term": "feature_flag", "flag": "quoted"}
        self.assertFinds({**quoted, "value": 'a "b"'}, {"variant"})
        self.assertFinds({**quoted, "value": "a"}, set())

    def test_flag_values_once_folded_into_the_recording(self) -> None:
        # Signals fold the session's events into `feature_flags`; the term then
        # reads the column, and gives the same answers. "flag-off" stays pending
        # (no signals yet), so both ways are asked in one query.
        for recording in Recording.objects.exclude(session_id="flag-off"):
            events = Event.objects.filter(session_id=recording.session_id)
            flags = feature_flags_of(e.properties for e in events)
            Recording.objects.filter(pk=recording.pk).update(feature_flags=flags)
        folded = Recording.objects.get(session_id="flag-on").feature_flags
        self.assertEqual(folded, {"new_checkout_flow": {"true": True, "*": True}})
        self.test_flag_values()

    def test_a_flag_folded_only_as_false_was_not_active(self) -> None:
        for recording in Recording.objects.all():
            events = Event.objects.filter(session_id=recording.session_id)
            flags = feature_flags_of(e.properties for e in events)
            Recording.objects.filter(pk=recording.pk).update(feature_flags=flags)
        folded = Recording.objects.get(session_id="flag-off").feature_flags
        self.assertEqual(folded, {"new_checkout_flow": {"false": True}})
        flag = {"term": "feature_flag", "flag": "new_checkout_flow"}
        self.assertFinds(flag, {"flag-on", "variant"})
        self.assertFinds({**flag, "value": False}, {"flag-off"})
        self.assertFinds({"not": flag}, {"flag-off"})

    def test_a_folded_recording_is_not_read_from_its_events(self) -> None:
        # The column is the truth once set: a recording whose signals found no
        # flag is not matched by an event that arrived after them.
        Recording.objects.filter(session_id="flag-on").update(feature_flags={})
        flag = {"term": "feature_flag", "flag": "new_checkout_flow"}
        self.assertFinds({**flag, "value": True}, set())
        self.assertFinds(flag, {"variant"})

    def test_url_visited(self) -> None:
        self.assertFinds(
            {"term": "url", "op": "contains", "value": "/pricing"},
            {"flag-on", "variant"},
        )
        self.assertFinds(
            {"term": "url", "op": "starts_with", "value": "https://shop.test/check"},
            {"flag-off"},
        )
        self.assertFinds(
            {"term": "url", "op": "equals", "value": "https://shop.test/pricing"},
            {"flag-on"},
        )
        # LIKE's wildcards in the text are the text itself.
        self.assertFinds(
            {"term": "url", "op": "contains", "value": "100%_"}, {"flag-off"}
        )
        self.assertFinds({"term": "url", "op": "contains", "value": "100%%"}, set())
        self.assertFinds({"term": "url", "op": "contains", "value": "0_o"}, set())
        self.assertFinds(
            {"term": "url", "op": "contains", "value": "PRICING"},
            {"flag-on", "variant"},
        )
        # Never visited a page containing /pricing.
        self.assertFinds(
            {"term": "url", "op": "not_contains", "value": "/pricing"}, {"flag-off"}
        )

    def test_rage_clicks_on_the_pricing_page(self) -> None:
        Recording.objects.filter(session_id="flag-on").update(rage_click_count=2)
        Recording.objects.filter(session_id="flag-off").update(rage_click_count=5)
        self.assertFinds(
            {
                "all": [
                    {"term": "signal", "signal": "rage_clicks", "gte": 1},
                    {"term": "url", "op": "contains", "value": "pricing"},
                ]
            },
            {"flag-on"},
        )


class ProbeTest(FilterCase):
    """A page of a conditioned-event filter probes each recording in turn on
    PostgreSQL (OFFSET 0 fences the subquery); a count lets the planner join."""

    def sql(self, sliced: bool) -> str:
        term = {
            "term": "event",
            "name": "llm_call_completed",
            "where": [{"key": "model", "op": "equals", "value": "x"}],
        }
        document = parse_document({"version": 1, "where": term})
        found = recordings_matching(Recording.objects.all(), document, now=NOW)
        if not sliced:
            return str(found.order_by().query)
        from django.db import connection

        found = found[:50]
        compiler = found.query.get_compiler(connection=connection)
        return str(compiler.as_sql()[0])

    def test_pages_probe_and_counts_join(self) -> None:
        from django.db import connection

        page, everything = self.sql(sliced=True), self.sql(sliced=False)
        if connection.vendor == "postgresql":
            self.assertIn("OFFSET 0)", page)
        else:
            self.assertNotIn("OFFSET 0", page)
        self.assertNotIn("OFFSET 0", everything)

    def test_a_url_term_reads_the_recordings_own_pages(self) -> None:
        document = parse_document(
            {"version": 1, "where": {"term": "url", "op": "contains", "value": "x"}}
        )
        found = recordings_matching(Recording.objects.all(), document, now=NOW)
        sql = str(found.query)
        self.assertNotIn("recordings_marker", sql)
        self.rec("a", first_url="https://x.test/")
        self.assertEqual(
            self.found({"term": "url", "op": "contains", "value": "x.test"}), ["a"]
        )
