"""The filters bench/query/million.py measures: each a filter document
(docs/filter-language.md) and the best SQL written by hand for the same question, on
the same indexes.

The hand-written side asks exactly what the document means (the language's
definition, not a shortcut the generated data would allow): `url` is a page
change, the first or the last URL; `followed_by` an error within the time after
the event (an `$exception` event or an exception, console-error or network-error
marker); matching is case-insensitive for `contains` and `starts_with`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bench.query.data import FEEDBACK_POSITIVE, FLAG, HOST

PAGE_SIZE = 50
# What the language's orders mean, as hand-written ORDER BY clauses.
ORDERS = {
    "newest": "r.started_at DESC, r.id DESC",
    "oldest": "r.started_at ASC, r.id ASC",
    "longest": "r.duration_ms DESC, r.id DESC",
    "most_errors": "r.console_error_count DESC, r.id DESC",
}


@dataclass(frozen=True, slots=True)
class Context:
    project_id: int
    now: dt.datetime
    support_ids: list[str]


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    document: dict[str, Any]
    where: str  # hand-written, over `recordings_recording r`
    params: dict[str, Any] = field(default_factory=dict)
    order: str = "newest"
    # For the first page, when it differs: the same question, planned otherwise.
    page_where: str = ""

    def page_sql(self) -> str:
        return (
            f"SELECT r.* FROM recordings_recording r "
            f"WHERE r.project_id = %(project)s AND ({self.page_where or self.where}) "
            f"ORDER BY {ORDERS[self.order]} LIMIT {PAGE_SIZE}"
        )

    def count_sql(self) -> str:
        return (
            "SELECT count(*) FROM recordings_recording r "
            f"WHERE r.project_id = %(project)s AND ({self.where})"
        )

    def all_params(self, ctx: Context) -> dict[str, Any]:
        return {"project": ctx.project_id, **self.params}


def _doc(*terms: dict[str, Any], order: str = "newest") -> dict[str, Any]:
    document: dict[str, Any] = {"version": 1, "order": order}
    if terms:
        document["where"] = {"all": list(terms)}
    return document


def _event(name: str, extra: str = "", alias: str = "e", fence: str = "") -> str:
    """EXISTS an analytics event of the recording's session named `name`.

    `fence` " OFFSET 0" keeps PostgreSQL from turning the EXISTS into a join: a
    probe per recording, in the order of the first page, instead of a join that
    reads every such event because the JSON conditions' selectivity is a guess.
    """
    return (
        f"EXISTS (SELECT 1 FROM recordings_event {alias} "
        f"WHERE {alias}.project_id = r.project_id "
        f"AND {alias}.session_id = r.session_id AND {alias}.name = {name}{extra}"
        f"{fence})"
    )


def _llm(fence: str = "") -> str:
    """The LLM example: a Sonnet call followed within 30 s by an error, and no
    click on the positive-feedback button."""
    called = _event(
        "'llm_call_completed'",
        " AND e.properties ->> 'model' = 'claude-3-5-sonnet' AND " + _ERROR_AFTER,
        fence=fence,
    )
    feedback = _event(
        "'$autocapture'",
        " AND f.properties ->> '$event_type' = 'click' "
        "AND f.properties ->> '$el_text' = %(feedback)s",
        alias="f",
        fence=fence,
    )
    return f"{called} AND NOT {feedback}"


# A page the recording visited: its first or last URL, or one of its `urls`
# (the pages its signals found, which are also its page-change markers).
_PAGE_URL = (
    "(r.first_url ILIKE {p} OR r.last_url ILIKE {p} OR EXISTS ("
    "SELECT 1 FROM jsonb_array_elements(r.urls) u WHERE u ->> 'url' ILIKE {p}))"
)
# A probe per recording rather than a join that first reads every matching
# event, because a JSON condition's selectivity is a guess.
_FENCE = " OFFSET 0"
_PERSON = (
    "EXISTS (SELECT 1 FROM recordings_person p WHERE p.project_id = r.project_id "
    "AND p.distinct_id = r.distinct_id AND {condition})"
)
# An error after the event `e` and within %(within)s of it (inclusive): the
# language's `{"error": true}`.
_ERROR_AFTER = (
    "(EXISTS (SELECT 1 FROM recordings_event x WHERE x.project_id = e.project_id "
    "AND x.session_id = e.session_id AND x.name = '$exception' "
    "AND x.timestamp > e.timestamp AND x.timestamp <= e.timestamp + %(within)s) "
    "OR EXISTS (SELECT 1 FROM recordings_marker k WHERE k.recording_id = r.id "
    "AND k.kind IN ('exception', 'console_error', 'network_error') "
    "AND k.timestamp > e.timestamp AND k.timestamp <= e.timestamp + %(within)s))"
)


def the_examples(ctx: Context) -> list[Filter]:
    """The nine examples of issue 13."""
    week_ago = ctx.now - dt.timedelta(days=7)
    feedback = [
        {"key": "$event_type", "op": "equals", "value": "click"},
        {"key": "$el_text", "op": "equals", "value": FEEDBACK_POSITIVE},
    ]
    return [
        Filter(
            "rage clicks on the pricing page",
            _doc(
                {"term": "signal", "signal": "rage_clicks", "gte": 1},
                {"term": "url", "op": "contains", "value": "/pricing"},
            ),
            "r.rage_click_count >= 1 AND " + _PAGE_URL.format(p="%(url)s"),
            {"url": "%/pricing%"},
        ),
        Filter(
            "Safari users with console errors",
            _doc(
                {"term": "browser", "in": ["Safari", "Mobile Safari"]},
                {"term": "signal", "signal": "console_errors", "gte": 1},
            ),
            "r.browser IN ('Safari', 'Mobile Safari') AND r.console_error_count >= 1",
        ),
        Filter(
            "mobile + dead clicks",
            _doc(
                {"term": "device_type", "in": ["Mobile"]},
                {"term": "signal", "signal": "dead_clicks", "gte": 1},
            ),
            "r.device_type = 'Mobile' AND r.dead_click_count >= 1",
        ),
        Filter(
            "new users (first seen 7 d) with a session over 3 min",
            _doc(
                {"term": "person_first_seen", "from": "-7d"},
                {"term": "duration", "gte": 180},
            ),
            "r.duration_ms >= 180000 AND "
            + _PERSON.format(condition="p.created >= %(since)s"),
            {"since": week_ago},
        ),
        Filter(
            "did payment_failed, person plan = growth",
            _doc(
                {"term": "event", "name": "payment_failed"},
                {"term": "person", "key": "plan", "op": "equals", "value": "growth"},
            ),
            _event("'payment_failed'")
            + " AND "
            + _PERSON.format(condition="p.properties ->> 'plan' = 'growth'"),
        ),
        Filter(
            "llm_call_completed (sonnet), error within 30 s, no positive feedback",
            _doc(
                {
                    "term": "event",
                    "name": "llm_call_completed",
                    "where": [
                        {"key": "model", "op": "equals", "value": "claude-3-5-sonnet"}
                    ],
                    "followed_by": {"within": 30, "target": {"error": True}},
                },
                {"not": {"term": "event", "name": "$autocapture", "where": feedback}},
            ),
            _llm(),
            {"within": dt.timedelta(seconds=30), "feedback": FEEDBACK_POSITIVE},
            page_where=_llm(fence=_FENCE),
        ),
        Filter(
            "did checkout_started, not checkout_completed",
            _doc(
                {"term": "event", "name": "checkout_started"},
                {"not": {"term": "event", "name": "checkout_completed"}},
            ),
            _event("'checkout_started'")
            + " AND NOT "
            + _event("'checkout_completed'", alias="c"),
        ),
        Filter(
            f"feature flag {FLAG} = true",
            _doc({"term": "feature_flag", "flag": FLAG, "value": True}),
            # The session's flag values, folded into the recording by its signals
            # (recordings/ingest/flags.py); every recording here has them.
            f"r.feature_flags -> '{FLAG}' ? 'true'",
        ),
        Filter(
            f"{len(ctx.support_ids)} user ids from the support queue",
            _doc({"term": "distinct_id", "in": ctx.support_ids}),
            "r.distinct_id = ANY(%(ids)s)",
            {"ids": ctx.support_ids},
        ),
    ]


def quick_filters(ctx: Context) -> list[Filter]:
    """What the admin's quick filters and the list's sort buttons ask."""
    week_ago = ctx.now - dt.timedelta(days=7)
    return [
        Filter("everything, newest first", _doc(), "true"),
        Filter(
            "last 7 days, Chrome",
            _doc(
                {"term": "started", "from": "-7d"},
                {"term": "browser", "in": ["Chrome"]},
            ),
            "r.started_at >= %(since)s AND r.browser = 'Chrome'",
            {"since": week_ago},
        ),
        Filter(
            "1 to 10 minutes, longest first",
            _doc({"term": "duration", "gte": 60, "lte": 600}, order="longest"),
            "r.duration_ms >= 60000 AND r.duration_ms <= 600000",
            order="longest",
        ),
        Filter(
            "console errors >= 3 and a 5xx, most errors first",
            _doc(
                {"term": "signal", "signal": "console_errors", "gte": 3},
                {"term": "signal", "signal": "network_5xx", "gte": 1},
                order="most_errors",
            ),
            "r.console_error_count >= 3 AND r.network_5xx_count >= 1",
            order="most_errors",
        ),
        Filter(
            "frustrated (rage, dead or error clicks) in DE or FR",
            {
                "version": 1,
                "where": {
                    "all": [
                        {"term": "country", "in": ["DE", "FR"]},
                        {
                            "any": [
                                {"term": "signal", "signal": s, "gte": 1}
                                for s in ("rage_clicks", "dead_clicks", "error_clicks")
                            ]
                        },
                    ]
                },
            },
            "r.country IN ('DE', 'FR') AND (r.rage_click_count >= 1 "
            "OR r.dead_click_count >= 1 OR r.error_click_count >= 1)",
        ),
        Filter(
            "visited a URL containing /checkout",
            _doc({"term": "url", "op": "contains", "value": "/checkout"}),
            _PAGE_URL.format(p="%(url)s"),
            {"url": "%/checkout%"},
        ),
        Filter(
            "first URL starts with /blog/",
            _doc({"term": "first_url", "op": "starts_with", "value": HOST + "/blog/"}),
            "r.first_url ILIKE %(prefix)s",
            {"prefix": HOST + "/blog/%"},
        ),
        Filter(
            "posthog-js 1.44x",
            _doc(
                {
                    "term": "sdk",
                    "lib": "web",
                    "version": {"op": "starts_with", "value": "1.44"},
                }
            ),
            "r.lib = 'web' AND r.lib_version ILIKE '1.44%%'",
        ),
        Filter(
            "10 or more pageviews",
            _doc({"term": "event", "name": "$pageview", "count": {"gte": 10}}),
            "(SELECT count(*) FROM recordings_event e "
            "WHERE e.project_id = r.project_id AND e.session_id = r.session_id "
            "AND e.name = '$pageview') >= 10",
        ),
    ]


def all_filters(ctx: Context) -> list[Filter]:
    return the_examples(ctx) + quick_filters(ctx)
