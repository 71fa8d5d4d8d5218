"""The recording list's filter: one filter-language document in the page's URL.

`?filter=<JSON>` carries the whole filter (docs/filter-language.md), so a filtered
list can be bookmarked or pasted to a colleague; the quick filters and the event
builder (static/recordings/recording_filter.js) both read and write it. A filter
that does not validate filters the list down to nothing, with its problems shown:
an unfiltered list under a filter someone believes applied would hand "select all"
and "delete everything matching" every recording instead of the few they meant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib.admin.views.main import ChangeList
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from recordings.models import (
    Event,
    Marker,
    Project,
    Recording,
    RecordingQuerySet,
    Tag,
)
from recordings.search.compiler import ORDERINGS, recordings_matching
from recordings.search.language import (
    Document,
    FilterInvalid,
    Problem,
    decode_json_document,
    parse_document,
)
from recordings.search.moments import first_moments

FILTER_VAR = "filter"

# The `signal` term's signals, as the quick filters label them.
SIGNALS = (
    ("console_errors", "Console errors"),
    ("network_5xx", "Network 5xx"),
    ("network_4xx", "Network 4xx"),
    ("rage_clicks", "Rage clicks"),
    ("dead_clicks", "Dead clicks"),
    ("error_clicks", "Error clicks"),
    ("mouse_thrashes", "Mouse thrashing"),
    ("u_turns", "U-turns"),
    ("console_warnings", "Console warnings"),
    ("console_logs", "Console logs"),
    ("network_requests", "Network requests"),
    ("clicks", "Clicks"),
    ("keypresses", "Keypresses"),
    ("mouse_activity", "Mouse activity"),
    ("scrolls", "Scrolls"),
    ("pages", "Pages"),
    ("windows", "Windows"),
    ("events", "Events"),
)
ORDERS = (
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("longest", "Longest first"),
    ("most_active", "Most active first"),
    ("most_errors", "Most errors first"),
    ("most_rage_clicks", "Most rage clicks first"),
)
PLAYABILITY = (
    ("any", "Has a playback problem"),
    ("no_full_snapshot", "No full snapshot"),
    ("oversized_event", "Oversized event"),
    ("lost_data", "Data lost"),
    ("gap", "A gap with no data"),
)
# Recording columns whose values the quick filters offer, by term.
CHOICE_FIELDS = ("browser", "os", "device_type", "country")
# How many distinct values (event names, browsers...) a picker offers at most.
MAX_CHOICES = 500


@dataclass(frozen=True)
class Finding:
    """What the page's `filter` parameter asks for, once read."""

    raw: str  # as given; "" when absent
    data: Any  # the decoded JSON (None when absent or not JSON)
    document: Document | None  # None when absent or not valid
    problems: tuple[Problem, ...]  # why it is not valid

    @property
    def given(self) -> bool:
        return bool(self.raw)

    def apply(self, recordings: QuerySet[Recording], user: Any) -> QuerySet[Recording]:
        """The recordings matching the filter: all without one, none when invalid."""
        if self.problems:
            return recordings.none()
        if self.document is None:
            return recordings
        found = cast(RecordingQuerySet, recordings)
        return recordings_matching(found, self.document, user=user)


def finding_read(raw: str) -> Finding:
    if not raw.strip():
        return Finding("", None, None, ())
    try:
        data = decode_json_document(raw)
    except FilterInvalid as exc:  # too long, not JSON, or nested too deep
        return Finding(raw, None, None, tuple(exc.problems))
    try:
        document = parse_document(data)
    except FilterInvalid as exc:
        # The JSON is still the page script's to show, even though it is not a
        # valid filter.
        return Finding(raw, data, None, tuple(exc.problems))
    return Finding(raw, data, document, ())


def ordering_for(finding: Finding) -> tuple[str, ...] | None:
    """The list's order the document asks for (None: no valid document)."""
    return None if finding.document is None else ORDERINGS[finding.document.order]


def finding_for(request: HttpRequest) -> Finding:
    """The request's filter, read once per request."""
    if "_replayhub_finding" not in request.__dict__:
        finding = finding_read(request.GET.get(FILTER_VAR, ""))
        request.__dict__["_replayhub_finding"] = finding
    return cast(Finding, request.__dict__["_replayhub_finding"])


class FilteredChangeList(ChangeList):
    """Django's change list, narrowed by the filter document as well.

    `filter` is not a field lookup, so it is kept out of the admin's own filter
    parameters; Django's counts, pages, "select all N" and actions all read
    `get_queryset`, which applies the document.
    """

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.finding = finding_for(request)
        super().__init__(request, *args, **kwargs)

    def get_filters_params(self, params: Any = None) -> Any:
        lookups = super().get_filters_params(params)
        lookups.pop(FILTER_VAR, None)
        return lookups

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        if not self.finding.given:
            return queryset
        self.has_active_filters = True
        self.clear_all_filters_qs = _without_filter(self.clear_all_filters_qs)
        matched = self.finding.apply(queryset, request.user)
        # The order Django chose: a clicked column's, else the document's (the
        # admin's get_ordering); `matching` orders by the document's alone.
        return matched.order_by(*queryset.query.order_by)

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Each row opens the player at the moment the filter matched.
        self.moments = first_moments(self.finding.document, list(self.result_list))


def _without_filter(query_string: str) -> str:
    pairs = parse_qsl(query_string.lstrip("?"), keep_blank_values=True)
    return "?" + urlencode([(k, v) for k, v in pairs if k != FILTER_VAR])


T = TypeVar("T")


def _cached(
    what: str, projects: QuerySet[Project] | None, compute: Callable[[], T]
) -> T:
    """`compute()`, reused a while per set of projects (None: every project)."""
    seconds = settings.REPLAYHUB_FILTER_CHOICES_CACHE_SECONDS
    if not seconds:
        return compute()
    ids = None if projects is None else sorted(projects.values_list("pk", flat=True))
    scope = "all" if ids is None else ",".join(map(str, ids))
    digest = hashlib.sha256(scope.encode()).hexdigest()[:32]
    key = f"replayhub:filter-choices:{what}:{digest}"
    return cast(T, cache.get_or_set(key, compute, seconds))


def recording_choices(
    recordings: QuerySet[Recording], projects: QuerySet[Project] | None
) -> dict[str, list[str]]:
    """Per quick-filter column, the values present in these recordings."""

    def distinct(field: str) -> list[str]:
        values = recordings.exclude(**{field: ""}).order_by(field)
        return list(values.values_list(field, flat=True).distinct()[:MAX_CHOICES])

    cached = _cached(
        "recordings", projects, lambda: {f: distinct(f) for f in CHOICE_FIELDS}
    )
    return {**cached, "tag": tag_names(projects)}


def tag_names(projects: QuerySet[Project] | None) -> list[str]:
    """The tag vocabulary of these projects (None: every project). Not cached: a
    tag just made is offered at once, and the table is small."""
    tags = (
        Tag.objects.all()
        if projects is None
        else Tag.objects.filter(project__in=projects)
    )
    names = tags.order_by("name").values_list("name", flat=True).distinct()
    return list(names[:MAX_CHOICES])


def event_names(projects: QuerySet[Project] | None) -> list[str]:
    """The event names seen in these projects (None: in every project)."""
    events = Event.objects.all()
    if projects is not None:
        events = events.filter(project__in=projects)

    def distinct() -> list[str]:
        names = events.order_by("name").values_list("name", flat=True).distinct()
        return list(names[:MAX_CHOICES])

    return _cached("events", projects, distinct)


def event_property_keys(projects: QuerySet[Project] | None, name: str) -> list[str]:
    """Property keys of the latest events called `name`: suggestions, not a list
    of every key ever sent."""
    events = Event.objects.filter(name=name)
    if projects is not None:
        events = events.filter(project__in=projects)
    keys: set[str] = set()
    for properties in events.order_by("-timestamp").values_list(
        "properties", flat=True
    )[:50]:
        if isinstance(properties, dict):
            keys.update(k for k in properties if not k.startswith("$"))
    return sorted(keys)[:MAX_CHOICES]


def filter_ui_data(finding: Finding, choices: dict[str, list[str]]) -> dict[str, Any]:
    """What the filter's script needs, written into the page as JSON."""
    return {
        "param": FILTER_VAR,
        "raw": finding.raw,
        "document": finding.data if isinstance(finding.data, dict) else None,
        "valid": not finding.problems,
        "choices": choices,
        "signals": SIGNALS,
        "orders": ORDERS,
        "playability": PLAYABILITY,
        "marker_kinds": Marker.Kind.choices,
        "event_names_url": reverse("admin:recordings_recording_event_names"),
    }


@dataclass(frozen=True)
class ProjectShare:
    """One project's part of the recordings a deletion would touch."""

    name: str
    matched: int
    held: int


def project_shares(recordings: QuerySet[Recording]) -> list[ProjectShare]:
    rows = (
        recordings.order_by()
        .values("project__name")
        .annotate(matched=Count("pk"), held=Count("pk", filter=Q(legal_hold=True)))
        .order_by("project__name")
    )
    return [ProjectShare(r["project__name"], r["matched"], r["held"]) for r in rows]


def query_string(request: HttpRequest, *, drop: tuple[str, ...] = ("p",)) -> str:
    """The request's query string without `drop` ("" or "?…")."""
    pairs = [(k, v) for k, v in request.GET.items() if k not in drop]
    return f"?{urlencode(pairs)}" if pairs else ""


# The list's query parameters before the filter language (its yes/no list filters
# and date drill-down), as terms: bookmarks made then still open the same list.
_LEGACY_SIGNALS = {
    "errors": "console_errors",
    "rage": "rage_clicks",
    "dead": "dead_clicks",
    "error_clicks": "error_clicks",
    "net5xx": "network_5xx",
}
_LEGACY_VALUES = {"browser__exact": "browser", "device_type__exact": "device_type"}
_LEGACY_DATE = ("started_at__year", "started_at__month", "started_at__day")
LEGACY_PARAMS = (
    *_LEGACY_SIGNALS,
    *_LEGACY_VALUES,
    "lost",
    "has_full_snapshot__exact",
    "legal_hold__exact",
    *_LEGACY_DATE,
)


def _legacy_term(name: str, value: str) -> dict[str, Any]:
    yes = value in ("yes", "1", "True")
    if name in _LEGACY_SIGNALS:
        bound = {"gte": 1} if yes else {"lte": 0}
        return {"term": "signal", "signal": _LEGACY_SIGNALS[name], **bound}
    if name in _LEGACY_VALUES:
        return {"term": _LEGACY_VALUES[name], "in": [value]}
    if name == "legal_hold__exact":
        return {"term": "legal_hold", "value": yes}
    problem = {"lost": "lost_data", "has_full_snapshot__exact": "no_full_snapshot"}
    term = {"term": "playability", "problem": problem[name]}
    # A full snapshot is the absence of the problem; lost data its presence.
    return term if yes == (name == "lost") else {"not": term}


def _legacy_dates(params: dict[str, str]) -> dict[str, Any] | None:
    parts = [params.get(name, "") for name in _LEGACY_DATE]
    numbers = [int(p) for p in parts if p.isdigit()]
    if not numbers:
        return None
    year, month, day = (*numbers, 1, 1)[:3]
    start = dt.date(year, month, day)
    if len(numbers) >= 3:
        end = start + dt.timedelta(days=1)
    elif len(numbers) == 2:
        end = (start + dt.timedelta(days=32)).replace(day=1)
    else:
        end = start.replace(year=year + 1)
    return {"term": "started", "from": start.isoformat(), "to": end.isoformat()}


def legacy_filter(params: dict[str, str]) -> dict[str, Any] | None:
    """The document an old list URL asked for; None when it used no old parameter."""
    if not any(name in params for name in LEGACY_PARAMS):
        return None
    terms = [
        _legacy_term(name, value)
        for name, value in params.items()
        if name in LEGACY_PARAMS and name not in _LEGACY_DATE
    ]
    try:
        dates = _legacy_dates(params)
    except ValueError:  # no such day
        dates = None
    if dates:
        terms.insert(0, dates)
    return {"version": 1, "where": {"all": terms}}


def legacy_redirect(request: HttpRequest) -> str | None:
    """Where an old list URL's filter now lives (`?filter=`), if it is one."""
    if request.method != "GET" or FILTER_VAR in request.GET:
        return None
    document = legacy_filter(request.GET.dict())
    if document is None:
        return None
    kept = [(k, v) for k, v in request.GET.items() if k not in LEGACY_PARAMS]
    return "?" + urlencode([*kept, (FILTER_VAR, json.dumps(document))])
