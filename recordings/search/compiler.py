"""The filter language compiled into one ORM query (`recordings_matching`).

The document comes parsed and validated (recordings/search/). Each term becomes a Q
on the recording's own columns or an EXISTS subquery on its events, markers or
person; groups combine them. User text only ever reaches the database as query
parameters: JSON keys go through KeyTransform, which quotes them as parameters or
JSON paths, never as SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    Expression,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import HasKey, KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils.timezone import now as timezone_now

from recordings.ingest.flags import ACTIVE, FLAG_PREFIX, flag_value_key
from recordings.models.curation import Comment, RecordingTag, RecordingView
from recordings.models.marker import Marker
from recordings.models.people import Event, Person
from recordings.models.recording import (
    GAP_WARNING_MS,
    OVERSIZED_EVENT_BYTES,
    RecordingQuerySet,
)
from recordings.search.language.document import (
    Bounds,
    ColumnIn,
    ColumnRange,
    Commented,
    Condition,
    Document,
    ErrorTarget,
    EventTarget,
    FeatureFlag,
    FollowedBy,
    Group,
    InPlaylist,
    LegalHold,
    Node,
    Not,
    Performed,
    PersonFirstSeen,
    PersonProperty,
    Playability,
    Sdk,
    Span,
    Started,
    Tagged,
    Target,
    TextMatch,
    UrlVisited,
    Viewed,
)

AnyUser = AbstractBaseUser | AnonymousUser | None

ORDERINGS: dict[str, tuple[str, ...]] = {
    "newest": ("-started_at", "-id"),
    "oldest": ("started_at", "id"),
    "longest": ("-duration_ms", "-id"),
    "most_active": ("-active_ms", "-id"),
    "most_errors": ("-console_error_count", "-id"),
    "most_rage_clicks": ("-rage_click_count", "-id"),
}
EXCEPTION_EVENT = "$exception"
ERROR_MARKERS = (
    Marker.Kind.EXCEPTION,
    Marker.Kind.CONSOLE_ERROR,
    Marker.Kind.NETWORK_ERROR,
)
MATCHES_NOTHING = Q(pk__in=[])


class Probe(Exists):
    """EXISTS looked up for each recording in turn, never joined as a whole.

    PostgreSQL turns a plain EXISTS into a semi-join when it estimates that
    cheaper, and for a URL or a property condition it cannot estimate (no
    statistics inside JSON) it often first gathers every matching row of the
    whole table, seconds at a million recordings, before the first page of 50
    newest can start (docs/benchmarks/query.md). OFFSET 0 in
    the subquery keeps it a per-row probe, which stops as soon as the page is
    full. A query of every match (a count) keeps the plain EXISTS: there the
    semi-join is what is fast. Other databases run it as written.
    """

    def __init__(self, queryset: Any, *, always: bool = False, **kwargs: Any) -> None:
        super().__init__(queryset, **kwargs)
        # `always`: a probe in counts too, for an EXISTS that only a few rows
        # reach (it sits behind a cheaper condition of the same AND).
        self.always = always

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = self.as_sql(compiler, connection, **extra)
        if compiler.query.high_mark is None and not self.always:
            return sql, params  # every matching row: let the planner join
        return f"{sql[:-1]} OFFSET 0)", params


class Compiler:
    """Turns a document's nodes into Q objects, at one moment `now`, for `user`
    (whose own comments and views "me" means; None: no one)."""

    def __init__(self, now: dt.datetime, user: AnyUser = None) -> None:
        self.now = now
        self.user = user if user is not None and user.is_authenticated else None

    def node(self, node: Node) -> Q:
        if isinstance(node, Group):
            return self.group(node)
        if isinstance(node, Not):
            return ~self.node(node.node)
        return _TERMS[type(node)](self, node)

    def group(self, group: Group) -> Q:
        parts = [self.node(node) for node in group.nodes]
        if group.op == "all":
            return reduce(lambda a, b: a & b, parts, Q())
        if not parts:
            return MATCHES_NOTHING
        return reduce(lambda a, b: a | b, parts)

    def span(self, column: str, span: Span) -> Q:
        q = Q()
        if span.start is not None:
            q &= Q(**{f"{column}__gte": span.start.resolve(self.now)})
        if span.end is not None:
            q &= Q(**{f"{column}__lt": span.end.resolve(self.now)})
        return q

    # --- terms on the recording's columns ---------------------------------------

    def started(self, term: Started) -> Q:
        return self.span("started_at", term.span)

    def column_range(self, term: ColumnRange) -> Q:
        return _bounds_q(term.column, term.bounds)

    def column_in(self, term: ColumnIn) -> Q:
        return Q(**{f"{term.column}__in": term.values})

    def sdk(self, term: Sdk) -> Q:
        q = Q() if term.lib is None else Q(lib=term.lib)
        if term.version is not None:
            q &= text_q("lib_version", term.version)
        return q

    def playability(self, term: Playability) -> Q:
        return playability_q(term.problem)

    def legal_hold(self, term: LegalHold) -> Q:
        return Q(legal_hold=term.value)

    # --- terms on what else the session left ------------------------------------

    def person_property(self, term: PersonProperty) -> Q:
        condition = term.condition
        positive = _POSITIVE.get(condition.op)
        if positive is None:
            return Q(Exists(_property_filter(_session_person(), condition)))
        # "plan is not growth": every recording whose person is not on growth,
        # including people without a plan and recordings with no person row.
        growth = Condition(condition.key, positive, condition.value)
        return ~Q(Exists(_property_filter(_session_person(), growth)))

    def person_first_seen(self, term: PersonFirstSeen) -> Q:
        return Q(Exists(_session_person().filter(self.span("created", term.span))))

    def performed(self, term: Performed) -> Q:
        events = target_events(term.event)
        if term.followed_by is not None:
            return Q(Probe(events.filter(followed_q(term.followed_by))))
        bounds = term.count or Bounds(gte=1, lte=None)
        if bounds.lte is None and (bounds.gte or 0) <= 0:
            return Q()  # "at least 0 times": every recording
        if bounds.lte is None and bounds.gte == 1:
            return Q(Probe(events) if term.event.where else Exists(events))
        return _count_q(events, bounds)

    def feature_flag(self, term: FeatureFlag) -> Q:
        """The recording's `feature_flags` column, once its signals have folded
        the session's events into it (recordings/ingest/flags.py); until then,
        its events themselves, probed only for those recordings."""
        folded = Q(feature_flags__isnull=False) & _flag_column_q(term)
        pending = Q(feature_flags__isnull=True) & Q(
            Probe(_flag_events(term), always=True)
        )
        return folded | pending

    def tagged(self, term: Tagged) -> Q:
        taggings = RecordingTag.objects.filter(
            recording_id=OuterRef("pk"), tag__name__in=term.names
        )
        return Q(Exists(taggings))

    def commented(self, term: Commented) -> Q:
        comments = Comment.objects.filter(recording_id=OuterRef("pk"))
        if term.by_me:
            if self.user is None:
                return MATCHES_NOTHING
            comments = comments.filter(author_id=self.user.pk)
        if term.contains is not None:
            comments = comments.filter(text__icontains=term.contains)
        return Q(Exists(comments))

    def viewed(self, term: Viewed) -> Q:
        if self.user is None:
            return MATCHES_NOTHING
        views = RecordingView.objects.filter(
            recording_id=OuterRef("pk"), user_id=self.user.pk
        )
        return Q(Exists(views))

    def in_playlist(self, term: InPlaylist) -> Q:
        # The playlists app knows what a playlist holds (recordings never import
        # it); it registers the term when it loads (playlists/apps.py).
        compile_term = EXTENSIONS.get(InPlaylist)
        return MATCHES_NOTHING if compile_term is None else compile_term(self, term)

    def url_visited(self, term: UrlVisited) -> Q:
        match = term.match
        positive = TextMatch(_POSITIVE.get(match.op, match.op), match.value)
        if term.first_only:
            return text_q("first_url", match)
        visited = (
            text_q("first_url", positive)
            | text_q("last_url", positive)
            | Q(AnyPageUrl(positive))
        )
        # "did not visit a page containing X": no page at all may match.
        return ~visited if positive.op != match.op else visited


class AnyPageUrl(Expression):
    """Whether a page of the recording's `urls` list matches the text, read from
    the row itself.

    `urls` holds the pages the signals found, as its page-change markers do
    (recordings/ingest/signal_scan.py), so the term needs no subquery: a page of 50
    newest stops after 50 matches, and a count is one pass over the table, where
    an EXISTS on the markers in an OR became a hash of every matching marker
    (docs/benchmarks/query.md). The text is a parameter; the
    comparison is Django's own for the lookup (`UPPER(..) LIKE UPPER(..)` for
    contains and starts_with, with LIKE's wildcards escaped), so it agrees with
    the first and last URL's.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, match: TextMatch) -> None:
        super().__init__()
        self.match = match
        self.urls = F("urls")

    def get_source_expressions(self) -> list[Any]:
        return [self.urls]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.urls,) = exprs

    def _pattern(self) -> str:
        value = self.match.value
        if self.match.op == "equals":
            return value
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%" if self.match.op == "contains" else f"{escaped}%"

    def _compare(self, column: str) -> str:
        if self.match.op == "equals":
            return f"{column} = %s"
        return f"UPPER({column}) LIKE UPPER(%s) ESCAPE '\\'"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        urls, params = compiler.compile(self.urls)
        test = self._compare("page ->> 'url'")
        sql = (
            f"EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({urls})"
            f" = 'array' THEN {urls} ELSE '[]'::jsonb END) AS page WHERE {test})"
        )
        return sql, [*params, *params, self._pattern()]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        urls, params = compiler.compile(self.urls)
        test = self._compare("json_extract(page.value, '$.url')")
        sql = (
            f"EXISTS (SELECT 1 FROM json_each(CASE WHEN json_type({urls}) = 'array'"
            f" THEN {urls} ELSE '[]' END) AS page WHERE {test})"
        )
        return sql, [*params, *params, self._pattern()]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        raise NotSupportedError(f"the url term has no SQL for {connection.vendor}")


def _session_events() -> QuerySet[Event]:
    return Event.objects.filter(
        project_id=OuterRef("project_id"), session_id=OuterRef("session_id")
    )


def _session_person() -> QuerySet[Person]:
    return Person.objects.filter(
        project_id=OuterRef("project_id"), distinct_id=OuterRef("distinct_id")
    )


def target_events(target: EventTarget) -> QuerySet[Event]:
    events = _session_events().filter(name=target.name)
    for condition in target.where:
        events = _property_filter(events, condition)
    return events


def _flag_column_q(term: FeatureFlag) -> Q:
    values = KeyTransform(term.flag, "feature_flags")
    # Active: evaluated at some value other than false (flags.ACTIVE).
    key = ACTIVE if term.any_value else flag_value_key(term.value)
    return Q(HasKey(values, key))


def _flag_events(term: FeatureFlag) -> QuerySet[Event]:
    key = FLAG_PREFIX + term.flag
    events = _session_events().annotate(_flag=KeyTransform(key, "properties"))
    if term.any_value:
        # posthog-js sends `$feature/<flag>` on every event for each flag it
        # has evaluated: an active flag has a value other than false.
        return events.filter(properties__has_key=key).exclude(_flag=False)
    return events.filter(_flag=term.value)


def _count_q(events: QuerySet[Event], bounds: Bounds) -> Q:
    counted = events.order_by().values("session_id").annotate(n=Count("*")).values("n")
    total = Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
    q = Q()
    if bounds.gte is not None:
        q &= Q(GreaterThanOrEqual(total, int(bounds.gte)))
    if bounds.lte is not None:
        q &= Q(LessThanOrEqual(total, int(bounds.lte)))
    return q


def followed_q(followed: FollowedBy) -> Q:
    """For an event of the outer query: the target follows it within the time."""
    within = dt.timedelta(milliseconds=followed.within_ms)
    after = Q(timestamp__gt=OuterRef("timestamp")) & Q(
        timestamp__lte=OuterRef("timestamp") + within
    )
    found = _target_q(followed.target, after)
    return ~found if followed.absent else found


def _target_q(target: Target, after: Q) -> Q:
    """EXISTS the target in the outer event's session, at a time `after` allows."""
    if isinstance(target, EventTarget):
        return Q(Exists(_later_events(target).filter(after)))
    kinds = ERROR_MARKERS if isinstance(target, ErrorTarget) else (target.kind,)
    markers = Marker.objects.filter(
        recording_id=OuterRef(OuterRef("pk")), kind__in=kinds
    ).filter(after)
    found = Q(Exists(markers))
    if isinstance(target, ErrorTarget):
        exceptions = _later_events(EventTarget(EXCEPTION_EVENT)).filter(after)
        found |= Q(Exists(exceptions))
    return found


def _later_events(target: EventTarget) -> QuerySet[Event]:
    """Events of the recording two levels out (the outer query is an event)."""
    events = Event.objects.filter(
        project_id=OuterRef(OuterRef("project_id")),
        session_id=OuterRef(OuterRef("session_id")),
        name=target.name,
    )
    for condition in target.where:
        events = _property_filter(events, condition)
    return events


# --- helpers ------------------------------------------------------------------------

_POSITIVE = {"not_equals": "equals", "not_contains": "contains"}
# Text operators that ask for a match (not for its absence).
POSITIVE_OPS = ("equals", "contains", "starts_with")


def text_q(column: str, match: TextMatch) -> Q:
    """A text column (or annotation) matched as the language says."""
    op = _POSITIVE.get(match.op, match.op)
    lookup = {"equals": "exact", "contains": "icontains", "starts_with": "istartswith"}
    q = Q(**{f"{column}__{lookup[op]}": match.value})
    return ~q if op != match.op else q


def _bounds_q(column: str, bounds: Bounds) -> Q:
    q = Q()
    if bounds.gte is not None:
        q &= Q(**{f"{column}__gte": bounds.gte})
    if bounds.lte is not None:
        q &= Q(**{f"{column}__lte": bounds.lte})
    return q


_NUMBER_LOOKUPS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def _property_filter(rows: QuerySet[Any], condition: Condition) -> QuerySet[Any]:
    """Rows whose `properties` JSON meets the condition (keys as parameters)."""
    key, op, value = condition.key, condition.op, condition.value
    if op == "is_set":
        return rows.filter(properties__has_key=key)
    if op == "is_not_set":
        return rows.exclude(properties__has_key=key)
    alias = f"_p{len(rows.query.annotations)}"
    if op in ("contains", "not_contains"):
        rows = rows.annotate(**{alias: KeyTextTransform(key, "properties")})
        q = Q(**{f"{alias}__icontains": str(value)})
    else:
        rows = rows.annotate(**{alias: KeyTransform(key, "properties")})
        lookup = _NUMBER_LOOKUPS.get(op, "exact")
        q = Q(**{f"{alias}__{lookup}": value})
    if op in _POSITIVE:
        # Not equal / not containing: an unset property counts as not matching
        # (in SQL the comparison with a missing key is NULL, neither true nor false).
        return rows.filter(~q | ~Q(properties__has_key=key))
    return rows.filter(q)


def playability_q(problem: str) -> Q:
    """Recordings that Recording.problems() would report with this problem."""
    problems = {
        "no_full_snapshot": Q(has_full_snapshot=False),
        "oversized_event": Q(largest_event_bytes__gte=OVERSIZED_EVENT_BYTES),
        "lost_data": Q(lost_changes__gt=0),
        # As Recording.longest_gap_ms: the compacted windows' checks, else live.
        "gap": Q(window_checks={}, max_gap_ms__gte=GAP_WARNING_MS)
        | (~Q(window_checks={}) & Q(checked_gap_ms__gte=GAP_WARNING_MS)),
    }
    if problem == "any":
        return reduce(lambda a, b: a | b, problems.values())
    return problems[problem]


_TERMS: dict[type, Callable[[Compiler, Any], Q]] = {
    Started: Compiler.started,
    ColumnRange: Compiler.column_range,
    ColumnIn: Compiler.column_in,
    Sdk: Compiler.sdk,
    Playability: Compiler.playability,
    LegalHold: Compiler.legal_hold,
    PersonProperty: Compiler.person_property,
    PersonFirstSeen: Compiler.person_first_seen,
    Performed: Compiler.performed,
    FeatureFlag: Compiler.feature_flag,
    UrlVisited: Compiler.url_visited,
    Tagged: Compiler.tagged,
    Commented: Compiler.commented,
    Viewed: Compiler.viewed,
    InPlaylist: Compiler.in_playlist,
}
# Terms other apps compile: term type -> (compiler, term) -> Q.
EXTENSIONS: dict[type, Callable[[Compiler, Any], Q]] = {}


def document_q(where: Node | None, now: dt.datetime, user: AnyUser = None) -> Q:
    """The Q of a document's `where` at `now` for `user` (every recording when
    absent)."""
    return Q() if where is None else Compiler(now, user).node(where)


def recordings_matching(
    recordings: RecordingQuerySet,
    document: Document,
    *,
    user: AnyUser = None,
    now: dt.datetime | None = None,
) -> RecordingQuerySet:
    """The recordings a filter document finds, in its order (one query).

    `user` is who asks (terms such as "viewed by me" need it); `now` the
    moment relative dates count from (default: now).
    """
    found = recordings.filter(document_q(document.where, now or timezone_now(), user))
    return found.order_by(*ORDERINGS[document.order])
