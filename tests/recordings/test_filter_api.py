"""The filter language over the API: GET ?filter=, POST search/, POST delete/, the
400 with pointers, the schema, and random documents never answered with a 5xx."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.timezone import now
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from recordings.models import ApiKey, Event, Project, Recording
from recordings.search.language import DOCUMENT_SCHEMA, parse_document
from recordings.search.language.document import MARKER_KINDS, ORDERS, SIGNALS
from recordings.services.api_keys import api_key_create
from replayhub.celery import app
from tests.base import ReplayTestCase

SEARCH = "/api/v1/recordings/search/"
DELETE = "/api/v1/recordings/delete/"
LIST = "/api/v1/recordings/"


def where(term: dict[str, Any], order: str = "newest") -> dict[str, Any]:
    return {"version": 1, "where": term, "order": order}


class FilterApiCase(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        start = now() - dt.timedelta(hours=1)
        for k, (name, browser) in enumerate(
            (("safari-1", "Safari"), ("chrome-1", "Chrome"), ("safari-2", "Safari"))
        ):
            Recording.objects.create(
                project=self.project,
                session_id=name,
                browser=browser,
                started_at=start + dt.timedelta(minutes=k),
                ended_at=start + dt.timedelta(minutes=k + 1),
                duration_ms=(k + 1) * 60_000,
            )
        charlies = self.make_charlies_project("Charlie's shop")
        Recording.objects.create(
            project=charlies,
            session_id="charlie-safari",
            browser="Safari",
            started_at=start,
            ended_at=start,
        )

    def key_for(self, user: User, access_: str = "read", *projects: Project) -> str:
        key = ApiKey(user=user, name="ci", access=access_)
        return api_key_create(key=key, projects=list(projects) or [self.project])

    def search(self, body: Any, user: User | None = None) -> Any:
        self.client.force_login(user or self.alice)
        return self.client.post(SEARCH, body, content_type="application/json")

    def sessions(self, response: Any) -> list[str]:
        self.assertEqual(response.status_code, 200, response.content)
        return [row["session_id"] for row in response.json()["results"]]


class SearchTests(FilterApiCase):
    def test_get_and_post_find_the_same_recordings_in_order(self) -> None:
        document = where({"term": "browser", "in": ["Safari"]}, order="longest")
        self.client.force_login(self.alice)
        got = self.client.get(LIST, {"filter": json.dumps(document)})
        self.assertEqual(self.sessions(got), ["safari-2", "safari-1"])
        self.assertEqual(self.sessions(self.search(document)), ["safari-2", "safari-1"])

    def test_it_paginates(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            f"{SEARCH}?limit=1&offset=1",
            {"version": 1},
            content_type="application/json",
        )
        self.assertEqual(response.json()["count"], 3)
        self.assertEqual(self.sessions(response), ["chrome-1"])

    def test_the_other_parameters_still_apply(self) -> None:
        self.client.force_login(self.alice)
        document = json.dumps(where({"term": "browser", "in": ["Safari"]}))
        response = self.client.get(
            LIST, {"filter": document, "min_duration_ms": "120000"}
        )
        self.assertEqual(self.sessions(response), ["safari-2"])

    def test_no_one_finds_another_projects_recordings(self) -> None:
        safari = where({"term": "browser", "in": ["Safari"]})
        self.assertNotIn("charlie-safari", self.sessions(self.search(safari)))
        self.assertEqual(
            self.sessions(self.search(safari, self.charlie)), ["charlie-safari"]
        )
        # An event of charlie's session id does not make alice's recording match.
        Event.objects.create(
            project=Project.objects.get(name="Charlie's shop"),
            uuid="e1",
            name="payment_failed",
            session_id="safari-1",
            timestamp=now(),
        )
        did = where({"term": "event", "name": "payment_failed"})
        self.assertEqual(self.sessions(self.search(did)), [])

    def test_a_read_only_key_may_search(self) -> None:
        secret = self.key_for(self.bob)
        response = self.client.post(
            SEARCH,
            where({"term": "browser", "in": ["Chrome"]}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        self.assertEqual(self.sessions(response), ["chrome-1"])


class InvalidFilterTests(FilterApiCase):
    def assertProblem(self, response: Any, pointer: str) -> None:
        self.assertEqual(response.status_code, 400, response.content)
        body = response.json()
        self.assertEqual(body["error"], "invalid_filter")
        pointers = [problem["pointer"] for problem in body["problems"]]
        self.assertIn(pointer, pointers)
        self.assertTrue(all(problem["message"] for problem in body["problems"]))

    def test_a_bad_term_is_pointed_at(self) -> None:
        bad = {
            "version": 1,
            "where": {
                "all": [
                    {"term": "browser", "in": ["Safari"]},
                    {"term": "duration", "gte": "long"},
                ]
            },
        }
        self.assertProblem(self.search(bad), "/where/all/1/gte")

    def test_every_problem_is_listed(self) -> None:
        bad = {
            "version": 2,
            "where": {
                "any": [{"term": "nope"}, {"term": "signal", "signal": "x", "gte": 1}]
            },
            "order": "best",
        }
        response = self.search(bad)
        for pointer in (
            "/version",
            "/where/any/0/term",
            "/where/any/1/signal",
            "/order",
        ):
            self.assertProblem(response, pointer)

    def test_not_json_in_the_url(self) -> None:
        self.client.force_login(self.alice)
        self.assertProblem(self.client.get(LIST, {"filter": "{version: 1"}), "")

    def test_too_complex_is_refused_with_a_400(self) -> None:
        terms = [{"term": "browser", "in": [f"b{k}"]} for k in range(51)]
        self.assertProblem(
            self.search({"version": 1, "where": {"any": terms}}), "/where"
        )
        deep: dict[str, Any] = {"term": "browser", "in": ["x"]}
        for _ in range(7):
            deep = {"not": deep}
        response = self.search({"version": 1, "where": deep})
        self.assertEqual(response.status_code, 400)
        events = [{"term": "event", "name": f"e{k}"} for k in range(11)]
        self.assertProblem(
            self.search({"version": 1, "where": {"all": events}}), "/where"
        )

    def test_an_unknown_term_lists_the_known_ones(self) -> None:
        response = self.search(where({"term": "tags", "in": ["x"]}))
        self.assertProblem(response, "/where/term")
        self.assertIn("in_playlist", response.json()["problems"][0]["message"])


class DeleteByFilterTests(FilterApiCase):
    def delete(self, body: dict[str, Any], user: User | None = None) -> Any:
        self.client.force_login(user or self.alice)
        response = self.client.post(DELETE, body, content_type="application/json")
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def test_dry_run_is_the_default_and_counts(self) -> None:
        Recording.objects.filter(session_id="safari-1").update(legal_hold=True)
        safari = where({"term": "browser", "in": ["Safari"]})
        report = self.delete({"filter": safari})
        self.assertRegex(report.pop("fingerprint"), r"^1-1-[0-9a-f]{16}$")
        self.assertEqual(
            report,
            {
                "matched": 2,
                "deleted": 0,
                "held": 1,
                "failed": 0,
                "gone": 0,
                "dry_run": True,
                "queued": False,
            },
        )
        self.assertEqual(Recording.objects.filter(browser="Safari").count(), 3)

    def test_it_deletes_and_keeps_legal_holds(self) -> None:
        Recording.objects.filter(session_id="safari-1").update(legal_hold=True)
        safari = where({"term": "browser", "in": ["Safari"]})
        report = self.delete({"filter": safari, "dry_run": False})
        self.assertEqual((report["deleted"], report["held"]), (1, 1))
        left = Recording.objects.filter(browser="Safari").values_list(
            "session_id", flat=True
        )
        self.assertEqual(sorted(left), ["charlie-safari", "safari-1"])

    def test_a_viewer_deletes_nothing(self) -> None:
        report = self.delete({"filter": {"version": 1}, "dry_run": False}, self.bob)
        self.assertEqual((report["matched"], report["deleted"]), (0, 0))
        self.assertEqual(Recording.objects.count(), 4)

    def test_a_read_only_key_may_not_delete(self) -> None:
        secret = self.key_for(self.alice)
        response = self.client.post(
            DELETE,
            {"filter": {"version": 1}, "dry_run": False},
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(Recording.objects.count(), 4)

    @override_settings(REPLAYHUB_PURGE_SYNC_MAX=1)
    def test_a_large_set_is_deleted_by_a_task(self) -> None:
        app.conf.task_always_eager = True
        self.addCleanup(setattr, app.conf, "task_always_eager", False)
        with self.captureOnCommitCallbacks(execute=True):
            report = self.delete({"filter": {"version": 1}, "dry_run": False})
        self.assertEqual(
            (report["queued"], report["matched"], report["deleted"]), (True, 3, 0)
        )
        self.assertEqual(
            list(Recording.objects.values_list("session_id", flat=True)),
            ["charlie-safari"],
        )

    def test_a_bad_filter_is_a_400(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            DELETE,
            {"filter": {"version": 1, "where": 3}},
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["problems"][0]["pointer"], "/where")
        self.assertEqual(Recording.objects.count(), 4)


class SchemaTests(ReplayTestCase):
    def test_the_document_schema_is_published(self) -> None:
        self.client.force_login(self.alice)
        schema = self.client.get(
            reverse("recordings:api-schema"), {"format": "json"}
        ).json()
        components = schema["components"]["schemas"]
        self.assertEqual(
            components["RecordingFilter"]["properties"]["order"]["enum"], list(ORDERS)
        )
        search = schema["paths"]["/api/v1/recordings/search/"]["post"]
        body = search["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(body, {"$ref": "#/components/schemas/RecordingFilter"})
        self.assertIn("invalid_filter", json.dumps(search["responses"]["400"]))

    def test_the_json_schema_accepts_what_the_parser_accepts(self) -> None:
        import jsonschema

        validator = jsonschema.Draft202012Validator(DOCUMENT_SCHEMA)
        for document in EXAMPLES:
            parse_document(document)
            self.assertEqual(list(validator.iter_errors(document)), [], document)


EXAMPLES: list[dict[str, Any]] = [
    where(
        {
            "all": [
                {"term": "signal", "signal": "rage_clicks", "gte": 1},
                {"term": "url", "op": "contains", "value": "/pricing"},
            ]
        }
    ),
    where(
        {
            "all": [
                {"term": "browser", "in": ["Safari"]},
                {"term": "signal", "signal": "console_errors", "gte": 1},
            ]
        }
    ),
    where(
        {
            "all": [
                {"term": "person_first_seen", "from": "-7d"},
                {"term": "duration", "gte": 180},
            ]
        }
    ),
    where(
        {
            "all": [
                {"term": "event", "name": "payment_failed"},
                {"term": "person", "key": "plan", "op": "equals", "value": "growth"},
            ]
        }
    ),
    where(
        {
            "all": [
                {
                    "term": "event",
                    "name": "llm_call_completed",
                    "where": [
                        {"key": "model", "op": "equals", "value": "claude-3-5-sonnet"}
                    ],
                    "followed_by": {"within": 30, "target": {"error": True}},
                },
                {"not": {"term": "event", "name": "feedback_positive_clicked"}},
            ]
        }
    ),
    where(
        {
            "all": [
                {"term": "event", "name": "checkout_started"},
                {"not": {"term": "event", "name": "checkout_completed"}},
            ]
        }
    ),
    where({"term": "feature_flag", "flag": "new_checkout_flow", "value": True}),
    where({"term": "distinct_id", "in": ["u1", "u2"]}),
    where(
        {"term": "sdk", "lib": "web", "version": {"op": "starts_with", "value": "1."}}
    ),
]


# --- random documents ---------------------------------------------------------------

_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=12,
)
_number = st.integers(min_value=0, max_value=10_000)
_when = st.sampled_from(
    ["-30m", "-24h", "-7d", "-2w", "2026-12-01", "2026-12-01T00:00:00Z"]
)
_scalar = st.one_of(_text, st.integers(-1000, 1000), st.booleans())
_condition = st.one_of(
    st.fixed_dictionaries(
        {
            "key": _text,
            "op": st.sampled_from(["equals", "not_equals", "contains", "not_contains"]),
            "value": _scalar,
        }
    ),
    st.fixed_dictionaries(
        {
            "key": _text,
            "op": st.sampled_from(["gt", "gte", "lt", "lte"]),
            "value": st.integers(-1000, 1000),
        }
    ),
    st.fixed_dictionaries(
        {"key": _text, "op": st.sampled_from(["is_set", "is_not_set"])}
    ),
)
_target = st.one_of(
    st.fixed_dictionaries(
        {"event": _text}, optional={"where": st.lists(_condition, max_size=2)}
    ),
    st.just({"error": True}),
    st.builds(lambda kind: {"marker": kind}, st.sampled_from(MARKER_KINDS)),
)
_event = st.fixed_dictionaries(
    {"term": st.just("event"), "name": _text},
    optional={
        "where": st.lists(_condition, max_size=2),
        "followed_by": st.fixed_dictionaries(
            {"within": st.integers(1, 3600), "target": _target},
            optional={"absent": st.booleans()},
        ),
    },
)
_terms = st.one_of(
    st.fixed_dictionaries(
        {"term": st.just("started"), "from": _when}, optional={"to": _when}
    ),
    st.builds(
        lambda t, lo: {"term": t, "gte": lo},
        st.sampled_from(["duration", "active_time"]),
        _number,
    ),
    st.builds(
        lambda t, v: {"term": t, "in": v},
        st.sampled_from(
            ["browser", "os", "device_type", "country", "distinct_id", "session_id"]
        ),
        st.lists(_text, min_size=1, max_size=3),
    ),
    st.builds(
        lambda s, n: {"term": "signal", "signal": s, "gte": n},
        st.sampled_from(list(SIGNALS)),
        _number,
    ),
    st.builds(lambda c: {"term": "person", **c}, _condition),
    st.fixed_dictionaries({"term": st.just("person_first_seen"), "from": _when}),
    _event,
    st.fixed_dictionaries(
        {"term": st.just("feature_flag"), "flag": _text}, optional={"value": _scalar}
    ),
    st.builds(
        lambda t, op, v: {"term": t, "op": op, "value": v},
        st.sampled_from(["url", "first_url"]),
        st.sampled_from(
            ["equals", "not_equals", "contains", "not_contains", "starts_with"]
        ),
        _text,
    ),
    st.builds(
        lambda p: {"term": "playability", "problem": p},
        st.sampled_from(
            ["no_full_snapshot", "oversized_event", "lost_data", "gap", "any"]
        ),
    ),
    st.builds(lambda v: {"term": "legal_hold", "value": v}, st.booleans()),
)
_nodes = st.recursive(
    _terms,
    lambda inner: st.one_of(
        st.builds(lambda n: {"all": n}, st.lists(inner, max_size=3)),
        st.builds(lambda n: {"any": n}, st.lists(inner, max_size=3)),
        st.builds(lambda n: {"not": n}, inner),
    ),
    max_leaves=6,
)
_documents = st.fixed_dictionaries(
    {"version": st.just(1), "where": _nodes},
    optional={"order": st.sampled_from(ORDERS)},
)
_json = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)
    ),
    max_leaves=8,
)


class RandomDocumentTests(HypothesisTestCase):
    """Random valid documents run (200, never a 5xx); random invalid ones are a 400
    whose problems each carry a pointer."""

    user: User

    @classmethod
    def setUpTestData(cls) -> None:
        cls.user = User.objects.create_superuser("root", "root@example.org", "pw")
        project = Project.objects.create(name="shop")
        start = now()
        Recording.objects.create(
            project=project, session_id="s", started_at=start, ended_at=start
        )
        Event.objects.create(
            project=project,
            uuid="u",
            name="x",
            session_id="s",
            timestamp=start,
            properties={"a": 1},
        )

    def setUp(self) -> None:
        super().setUp()
        self.client = Client()
        self.client.force_login(self.user)

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(_documents)
    def test_valid_documents_run(self, document: dict[str, Any]) -> None:
        try:
            parse_document(document)
        except Exception as exc:  # a limit (subqueries, terms) is a fair refusal
            response = self.client.post(
                SEARCH, document, content_type="application/json"
            )
            self.assertEqual(response.status_code, 400, (document, exc))
            return
        response = self.client.post(SEARCH, document, content_type="application/json")
        self.assertEqual(response.status_code, 200, (document, response.content[:500]))

    @settings(
        max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(st.one_of(_json, st.builds(lambda w: {"version": 1, "where": w}, _json)))
    def test_invalid_documents_are_a_400_with_pointers(self, data: Any) -> None:
        response = self.client.post(
            SEARCH, json.dumps(data), content_type="application/json"
        )
        if response.status_code == 200:
            parse_document(data)  # it really was valid (e.g. {"version": 1})
            return
        self.assertEqual(response.status_code, 400, (data, response.content[:300]))
        problems = response.json()["problems"]
        self.assertTrue(problems)
        for problem in problems:
            self.assertTrue(
                problem["pointer"] == "" or problem["pointer"].startswith("/")
            )
            self.assertTrue(problem["message"])
