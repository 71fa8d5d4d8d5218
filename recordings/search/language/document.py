"""The filter language's document (docs/filter-language.md): its model, parsed and
validated from JSON. Pure: no Django, no database.

`parse_document(data)` turns the decoded JSON into a `Document` of frozen
dataclasses, or raises `FilterInvalid` with every problem found, each with a JSON
pointer to the offending part and a sentence. Limits (terms, depth, subqueries,
list and text sizes) are checked here, so that a filter too big to run well is
refused before anything runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal, TypeAlias

VERSION = 1
ORDERS = (
    "newest",
    "oldest",
    "longest",
    "most_active",
    "most_errors",
    "most_rage_clicks",
)

# Limits: a filter past them is refused, never run (docs/filter-language.md).
MAX_TERMS = 50
MAX_DEPTH = 6
MAX_SUBQUERIES = 10
MAX_VALUES = 1000
MAX_CONDITIONS = 20
MAX_TEXT = 1000
MAX_WITHIN_S = 86_400
MAX_DOCUMENT_BYTES = 64 * 1024
# JSON levels (objects and lists) a document's text may nest: the deepest valid
# filter (groups at MAX_DEPTH around an event followed by another) takes about 16.
# Deeper text is refused before anything walks it, as some callers (a page's
# script data, a form showing it again) would do by recursion.
MAX_NESTING = 32

# Signal names and the Recording columns that hold them.
SIGNALS: Mapping[str, str] = {
    "clicks": "click_count",
    "keypresses": "keypress_count",
    "rage_clicks": "rage_click_count",
    "dead_clicks": "dead_click_count",
    "mouse_thrashes": "mouse_thrash_count",
    "u_turns": "u_turn_count",
    "error_clicks": "error_click_count",
    "console_errors": "console_error_count",
    "console_warnings": "console_warn_count",
    "console_logs": "console_log_count",
    "network_requests": "network_request_count",
    "network_4xx": "network_4xx_count",
    "network_5xx": "network_5xx_count",
    "pages": "page_count",
    "windows": "window_count",
    "mouse_activity": "mouse_activity_count",
    "scrolls": "scroll_count",
    "events": "event_count",
}
# Terms over one text column matched against a list of values.
VALUE_TERMS: Mapping[str, str] = {
    "distinct_id": "distinct_id",
    "session_id": "session_id",
    "browser": "browser",
    "os": "os",
    "device_type": "device_type",
    "country": "country",
}
# Range terms in seconds over a column in milliseconds.
SECONDS_TERMS: Mapping[str, str] = {
    "duration": "duration_ms",
    "active_time": "active_ms",
}
MARKER_KINDS = (
    "custom_event",
    "exception",
    "console_error",
    "network_error",
    "rage_click",
    "dead_click",
    "mouse_thrash",
    "u_turn",
    "error_click",
    "page_change",
)
PROBLEMS = ("no_full_snapshot", "oversized_event", "lost_data", "gap", "any")
TEXT_OPS = ("equals", "not_equals", "contains", "not_contains", "starts_with")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
SET_OPS = ("is_set", "is_not_set")
PROPERTY_OPS = (*TEXT_OPS[:4], *NUMBER_OPS, *SET_OPS)
WHO = ("anyone", "me")

_RELATIVE = re.compile(r"^-(\d{1,6})([mhdw])$")
# A UTF-16 surrogate code point: JSON's "\ud800" decodes to one, but no text
# holding one can be encoded (as UTF-8 for the database driver, or in an answer).
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- the model ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class When:
    """A point in time: absolute, or `ago` before the moment the filter runs."""

    at: dt.datetime | None = None
    ago: dt.timedelta | None = None

    def resolve(self, now: dt.datetime) -> dt.datetime:
        if self.at is not None:
            return self.at
        return now - (self.ago or dt.timedelta(0))


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """A time range: `start` inclusive, `end` exclusive; either may be open."""

    start: When | None
    end: When | None


@dataclasses.dataclass(frozen=True, slots=True)
class Bounds:
    """An inclusive numeric range; either end may be open."""

    gte: float | None
    lte: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """A property condition: `key` `op` `value` (no value for is_set/is_not_set)."""

    key: str
    op: str
    value: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class TextMatch:
    op: str
    value: str


@dataclasses.dataclass(frozen=True, slots=True)
class Started:
    span: Span


@dataclasses.dataclass(frozen=True, slots=True)
class ColumnRange:
    """A numeric column within bounds (durations already in milliseconds)."""

    column: str
    bounds: Bounds


@dataclasses.dataclass(frozen=True, slots=True)
class ColumnIn:
    column: str
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class PersonProperty:
    condition: Condition


@dataclasses.dataclass(frozen=True, slots=True)
class PersonFirstSeen:
    span: Span


@dataclasses.dataclass(frozen=True, slots=True)
class EventTarget:
    name: str
    where: tuple[Condition, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorTarget:
    """Any error: an `$exception` event, or an error marker of the recording."""


@dataclasses.dataclass(frozen=True, slots=True)
class MarkerTarget:
    kind: str


Target: TypeAlias = EventTarget | ErrorTarget | MarkerTarget


@dataclasses.dataclass(frozen=True, slots=True)
class FollowedBy:
    within_ms: int
    target: Target
    absent: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Performed:
    """An analytics event of the session, with conditions on its properties."""

    event: EventTarget
    count: Bounds | None = None
    followed_by: FollowedBy | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FeatureFlag:
    flag: str
    value: Any = None
    any_value: bool = True  # no value given: the flag was active


@dataclasses.dataclass(frozen=True, slots=True)
class UrlVisited:
    match: TextMatch
    first_only: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Sdk:
    lib: str | None
    version: TextMatch | None


@dataclasses.dataclass(frozen=True, slots=True)
class Playability:
    problem: str


@dataclasses.dataclass(frozen=True, slots=True)
class LegalHold:
    value: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Tagged:
    """Has at least one of these tags (names of the recording's project's tags)."""

    names: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Commented:
    by_me: bool = False
    contains: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Viewed:
    """Viewed by the person asking (no one else's views are searchable)."""


@dataclasses.dataclass(frozen=True, slots=True)
class InPlaylist:
    playlist: str  # the playlist's code: a UUID in its canonical form


Term: TypeAlias = (
    Started
    | ColumnRange
    | ColumnIn
    | PersonProperty
    | PersonFirstSeen
    | Performed
    | FeatureFlag
    | UrlVisited
    | Sdk
    | Playability
    | LegalHold
    | Tagged
    | Commented
    | Viewed
    | InPlaylist
)


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    op: Literal["all", "any"]
    nodes: tuple[Node, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Not:
    node: Node


Node: TypeAlias = Group | Not | Term


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    where: Node | None = None
    order: str = "newest"
    version: int = VERSION


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    pointer: str  # RFC 6901 JSON pointer into the document
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class FilterInvalid(ValueError):
    """The document is not a valid filter; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else Problem("", "invalid")
        super().__init__(f"{first.pointer or '/'}: {first.message}")


# --- parsing ------------------------------------------------------------------------


class _Invalid(Exception):
    """One part is unusable; its problem is already noted."""


def _escaped(key: str | int) -> str:
    """A key as a JSON pointer writes it (RFC 6901: ~ and / escaped); a surrogate,
    which no pointer can hold as text, as its JSON escape (\\ud800)."""
    text = str(key).replace("~", "~0").replace("/", "~1")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Reader:
    """Walks the JSON, keeping the pointer to where it is and the problems found."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.problems: list[Problem] = []
        self.terms = 0
        self.subqueries = 0

    @contextmanager
    def at(self, key: str | int) -> Iterator[None]:
        self.path.append(_escaped(key))
        try:
            yield
        finally:
            self.path.pop()

    def pointer(self) -> str:
        return "".join(f"/{part}" for part in self.path)

    def fail(self, message: str, key: str | int | None = None) -> _Invalid:
        pointer = self.pointer() + ("" if key is None else f"/{_escaped(key)}")
        self.problems.append(Problem(pointer, message))
        return _Invalid(message)

    def object(self, value: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("must be an object")
        unknown = sorted(set(value) - set(allowed))
        for key in unknown:
            self.fail(f"unknown key; expected one of: {', '.join(allowed)}", key)
        if unknown:
            raise _Invalid("unknown keys")
        return value

    def field(
        self, obj: Mapping[str, Any], key: str, read: Callable[[Any], Any]
    ) -> Any:
        with self.at(key):
            return read(obj[key])

    def required(
        self, obj: Mapping[str, Any], key: str, read: Callable[[Any], Any]
    ) -> Any:
        if key not in obj:
            raise self.fail("is required", key)
        return self.field(obj, key, read)

    def optional(
        self, obj: Mapping[str, Any], key: str, read: Callable[[Any], Any]
    ) -> Any:
        return self.field(obj, key, read) if key in obj else None


def parse_json_document(text: str | bytes) -> Document:
    """A document from its JSON text (a URL parameter, a stored playlist)."""
    return parse_document(decode_json_document(text))


def decode_json_document(text: str | bytes) -> Any:
    """The JSON value of a document's text, not yet validated; FilterInvalid when
    it is too long, not JSON, or nested deeper than any filter (MAX_NESTING)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        message = (
            f"is {len(text):,} bytes long; at most {MAX_DOCUMENT_BYTES:,} are allowed"
        )
        raise FilterInvalid([Problem("", message)])
    try:
        data = json.loads(text)
    except RecursionError:
        # The standard library's parser recurses per level: some 990 `[` in a
        # URL reach Python's limit. Refused like any other text too deep.
        raise _too_deep() from None
    except ValueError as exc:
        raise FilterInvalid([Problem("", f"is not valid JSON ({exc})")]) from None
    if _nests_past(data, MAX_NESTING):
        raise _too_deep()
    return data


def _too_deep() -> FilterInvalid:
    message = f"nests more than {MAX_NESTING} levels deep; no filter needs as many"
    return FilterInvalid([Problem("", message)])


def _nests_past(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` lists and objects deep; level by
    level, without recursion, so that whatever the parser took is safe here."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children = (n.values() if isinstance(n, dict) else n for n in level)
        level = [c for nodes in children for c in nodes if isinstance(c, dict | list)]
    return False


def parse_document(data: Any) -> Document:
    """The document as a model; raises FilterInvalid listing every problem."""
    reader = _Reader()
    try:
        document = _document(reader, data)
    except _Invalid:
        document = None
    if reader.problems or document is None:
        raise FilterInvalid(reader.problems or [Problem("", "invalid")])
    return document


def _document(r: _Reader, data: Any) -> Document:
    obj = r.object(data, ("version", "where", "order"))
    version = _guarded(r, lambda: r.required(obj, "version", lambda v: _version(r, v)))
    where = _guarded(r, lambda: r.optional(obj, "where", lambda v: _node(r, v, 1)))
    order = _guarded(
        r, lambda: r.optional(obj, "order", lambda v: _choice(r, v, ORDERS))
    )
    if r.terms > MAX_TERMS:
        r.fail(f"has {r.terms} terms; at most {MAX_TERMS} are allowed", "where")
    if r.subqueries > MAX_SUBQUERIES:
        r.fail(
            f"has {r.subqueries} event, feature flag, URL and person terms; at most "
            f"{MAX_SUBQUERIES} are allowed",
            "where",
        )
    return Document(where=where, order=order or "newest", version=version or VERSION)


def _guarded(r: _Reader, read: Callable[[], Any]) -> Any:
    """Read a part; a problem in it is noted and reading goes on with the rest."""
    try:
        return read()
    except _Invalid:
        return None


def _version(r: _Reader, value: Any) -> int:
    if value != VERSION or isinstance(value, bool):
        raise r.fail(f"must be {VERSION} (the only version of the language)")
    return VERSION


def _node(r: _Reader, value: Any, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise r.fail(f"groups are nested more than {MAX_DEPTH} deep")
    if not isinstance(value, dict):
        raise r.fail("must be an object: a group (all, any, not) or a term")
    kinds = [key for key in ("all", "any", "not", "term") if key in value]
    if len(kinds) != 1:
        raise r.fail('must have exactly one of "all", "any", "not" or "term"')
    kind = kinds[0]
    if kind == "not":
        r.object(value, ("not",))
        return Not(r.field(value, "not", lambda v: _node(r, v, depth + 1)))
    if kind in ("all", "any"):
        r.object(value, (kind,))
        nodes = r.field(value, kind, lambda v: _nodes(r, v, depth))
        return Group("all" if kind == "all" else "any", nodes)
    r.terms += 1
    return _term(r, value)


def _nodes(r: _Reader, value: Any, depth: int) -> tuple[Node, ...]:
    if not isinstance(value, list):
        raise r.fail("must be a list of nodes")
    nodes = []
    for index, item in enumerate(value):
        with r.at(index):
            node = _guarded(r, partial(_node, r, item, depth + 1))
        nodes.append(node)
    if any(node is None for node in nodes):
        raise _Invalid("a node is invalid")
    return tuple(nodes)


def _term(r: _Reader, obj: Mapping[str, Any]) -> Term:
    name = r.field(obj, "term", lambda v: _text(r, v))
    reader = _TERMS.get(name)
    if reader is None:
        known = ", ".join(sorted(_TERMS))
        raise r.fail(f"unknown term; expected one of: {known}", "term")
    return reader(r, obj)


# --- terms --------------------------------------------------------------------------


def _started(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "from", "to"))
    return Started(_span(r, obj))


def _first_seen(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "from", "to"))
    r.subqueries += 1
    return PersonFirstSeen(_span(r, obj))


def _seconds_range(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "gte", "lte"))
    bounds = _bounds(r, obj)
    column = SECONDS_TERMS[obj["term"]]
    return ColumnRange(column, Bounds(_ms(bounds.gte), _ms(bounds.lte)))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _signal(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "signal", "gte", "lte"))
    name = r.required(obj, "signal", lambda v: _choice(r, v, tuple(SIGNALS)))
    return ColumnRange(SIGNALS[name], _bounds(r, obj))


def _values(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "in"))
    values = r.required(obj, "in", lambda v: _text_list(r, v))
    return ColumnIn(VALUE_TERMS[obj["term"]], values)


def _person(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.subqueries += 1
    return PersonProperty(_condition(r, obj, extra=("term",)))


def _event(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "name", "where", "count", "followed_by"))
    r.subqueries += 1
    event = _event_target(r, obj)
    count = r.optional(obj, "count", lambda v: _count(r, v))
    followed = r.optional(obj, "followed_by", lambda v: _followed_by(r, v))
    if count is not None and followed is not None:
        raise r.fail('"count" and "followed_by" do not combine', "count")
    return Performed(event, count, followed)


def _event_target(r: _Reader, obj: Mapping[str, Any]) -> EventTarget:
    name = r.required(obj, "name", lambda v: _text(r, v))
    where = r.optional(obj, "where", lambda v: _conditions(r, v)) or ()
    return EventTarget(name, where)


def _count(r: _Reader, value: Any) -> Bounds:
    bounds = _bounds(r, r.object(value, ("gte", "lte")))
    if any(b is not None and b != int(b) for b in (bounds.gte, bounds.lte)):
        raise r.fail("counts are whole numbers")
    return bounds


def _followed_by(r: _Reader, value: Any) -> FollowedBy:
    obj = r.object(value, ("within", "target", "absent"))
    within = r.required(obj, "within", lambda v: _number(r, v))
    if not 0 < within <= MAX_WITHIN_S:
        raise r.fail(f"must be more than 0 and at most {MAX_WITHIN_S} s", "within")
    target = r.required(obj, "target", lambda v: _target(r, v))
    absent = r.optional(obj, "absent", lambda v: _boolean(r, v)) or False
    return FollowedBy(round(within * 1000), target, absent)


def _target(r: _Reader, value: Any) -> Target:
    if not isinstance(value, dict):
        raise r.fail("must be an object")
    if "event" in value:
        obj = r.object(value, ("event", "where"))
        name = r.field(obj, "event", lambda v: _text(r, v))
        where = r.optional(obj, "where", lambda v: _conditions(r, v)) or ()
        return EventTarget(name, where)
    if "error" in value:
        obj = r.object(value, ("error",))
        if obj["error"] is not True:
            raise r.fail("must be true", "error")
        return ErrorTarget()
    if "marker" in value:
        obj = r.object(value, ("marker",))
        return MarkerTarget(
            r.field(obj, "marker", lambda v: _choice(r, v, MARKER_KINDS))
        )
    raise r.fail('must have one of "event", "error" or "marker"')


def _feature_flag(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "flag", "value"))
    r.subqueries += 1
    flag = r.required(obj, "flag", lambda v: _text(r, v))
    if "value" not in obj:
        return FeatureFlag(flag)
    value = r.field(obj, "value", lambda v: _scalar(r, v))
    return FeatureFlag(flag, value, any_value=False)


def _url(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "op", "value"))
    first_only = obj["term"] == "first_url"
    if not first_only:
        r.subqueries += 1
    return UrlVisited(_text_match(r, obj, TEXT_OPS), first_only)


def _sdk(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "lib", "version"))
    lib = r.optional(obj, "lib", lambda v: _text(r, v))
    version = r.optional(
        obj,
        "version",
        lambda v: _text_match(
            r, r.object(v, ("op", "value")), ("equals", "starts_with")
        ),
    )
    if lib is None and version is None:
        raise r.fail('needs "lib", "version" or both')
    return Sdk(lib, version)


def _playability(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "problem"))
    return Playability(r.required(obj, "problem", lambda v: _choice(r, v, PROBLEMS)))


def _legal_hold(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "value"))
    return LegalHold(r.required(obj, "value", lambda v: _boolean(r, v)))


def _tag(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "in"))
    r.subqueries += 1
    return Tagged(r.required(obj, "in", lambda v: _text_list(r, v)))


def _commented(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "by", "contains"))
    r.subqueries += 1
    who = r.optional(obj, "by", lambda v: _choice(r, v, WHO)) or "anyone"
    contains = r.optional(obj, "contains", lambda v: _text(r, v))
    return Commented(by_me=who == "me", contains=contains)


def _viewed(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "by"))
    r.subqueries += 1
    r.optional(obj, "by", lambda v: _choice(r, v, ("me",)))
    return Viewed()


def _in_playlist(r: _Reader, obj: Mapping[str, Any]) -> Term:
    r.object(obj, ("term", "playlist"))
    r.subqueries += 1
    code = r.required(obj, "playlist", lambda v: _text(r, v))
    try:
        return InPlaylist(str(uuid.UUID(code)))
    except ValueError:
        raise r.fail("must be a playlist's code (a UUID)", "playlist") from None


_TERMS: Mapping[str, Callable[[_Reader, Mapping[str, Any]], Term]] = {
    "started": _started,
    "duration": _seconds_range,
    "active_time": _seconds_range,
    **{name: _values for name in VALUE_TERMS},
    "person": _person,
    "person_first_seen": _first_seen,
    "event": _event,
    "feature_flag": _feature_flag,
    "url": _url,
    "first_url": _url,
    "signal": _signal,
    "sdk": _sdk,
    "playability": _playability,
    "legal_hold": _legal_hold,
    "tag": _tag,
    "commented": _commented,
    "viewed": _viewed,
    "in_playlist": _in_playlist,
}


# --- values -------------------------------------------------------------------------


def _span(r: _Reader, obj: Mapping[str, Any]) -> Span:
    start = r.optional(obj, "from", lambda v: _when(r, v))
    end = r.optional(obj, "to", lambda v: _when(r, v))
    if start is None and end is None:
        raise r.fail('needs "from", "to" or both')
    return Span(start, end)


def _when(r: _Reader, value: Any) -> When:
    if not isinstance(value, str):
        raise r.fail('must be a date, a date-time or a relative time such as "-7d"')
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative[1]), _UNITS[relative[2]]
        return When(ago=dt.timedelta(**{unit: amount}))
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise r.fail(
            'must be an ISO-8601 date ("2026-12-01"), a date-time with an offset '
            '("2026-12-01T00:00:00Z") or a relative time ("-30m", "-24h", "-7d", "-2w")'
        ) from None
    if parsed.tzinfo is None:
        if "T" in value or " " in value:
            raise r.fail('a date-time needs an offset, such as "Z" or "+01:00"')
        parsed = parsed.replace(tzinfo=dt.UTC)
    return When(at=parsed)


def _bounds(r: _Reader, obj: Mapping[str, Any]) -> Bounds:
    gte = r.optional(obj, "gte", lambda v: _number(r, v))
    lte = r.optional(obj, "lte", lambda v: _number(r, v))
    if gte is None and lte is None:
        raise r.fail('needs "gte", "lte" or both')
    if gte is not None and lte is not None and gte > lte:
        raise r.fail('is greater than "lte": nothing could match', "gte")
    return Bounds(gte, lte)


def _number(r: _Reader, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise r.fail("must be a number")
    if not 0 <= value <= 1e15:
        raise r.fail("must be between 0 and 10^15")
    return value


def _boolean(r: _Reader, value: Any) -> bool:
    if not isinstance(value, bool):
        raise r.fail("must be true or false")
    return value


def _text(r: _Reader, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise r.fail("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise r.fail(f"is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        raise r.fail("must not contain NUL characters")
    surrogate = _SURROGATE.search(value)
    if surrogate:
        raise r.fail(
            f"must not contain a lone surrogate (U+{ord(surrogate[0]):04X}): "
            "it is not Unicode text"
        )
    return value


def _text_list(r: _Reader, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise r.fail("must be a non-empty list of strings")
    if len(value) > MAX_VALUES:
        raise r.fail(f"has {len(value)} values; at most {MAX_VALUES} are allowed")
    texts = []
    for index, item in enumerate(value):
        with r.at(index):
            texts.append(_guarded(r, partial(_text, r, item)))
    if any(text is None for text in texts):
        raise _Invalid("a value is invalid")
    return tuple(texts)


def _scalar(r: _Reader, value: Any) -> Any:
    if isinstance(value, str):
        return _text(r, value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if abs(value) > 1e15:
            raise r.fail("must be between -10^15 and 10^15")
        return value
    raise r.fail("must be a string, a number or true/false")


def _choice(r: _Reader, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices or not isinstance(value, str):
        raise r.fail(f"must be one of: {', '.join(choices)}")
    return str(value)


def _text_match(r: _Reader, obj: Mapping[str, Any], ops: tuple[str, ...]) -> TextMatch:
    op = r.required(obj, "op", lambda v: _choice(r, v, ops))
    value = r.required(obj, "value", lambda v: _text(r, v))
    return TextMatch(op, value)


def _conditions(r: _Reader, value: Any) -> tuple[Condition, ...]:
    if not isinstance(value, list):
        raise r.fail("must be a list of property conditions")
    if len(value) > MAX_CONDITIONS:
        raise r.fail(
            f"has {len(value)} conditions; at most {MAX_CONDITIONS} are allowed"
        )
    found = []
    for index, item in enumerate(value):
        with r.at(index):
            found.append(_guarded(r, partial(_condition, r, item)))
    if any(condition is None for condition in found):
        raise _Invalid("a condition is invalid")
    return tuple(found)


def _condition(r: _Reader, value: Any, extra: tuple[str, ...] = ()) -> Condition:
    obj = r.object(value, (*extra, "key", "op", "value"))
    key = r.required(obj, "key", lambda v: _text(r, v))
    op = r.required(obj, "op", lambda v: _choice(r, v, PROPERTY_OPS))
    if op in SET_OPS:
        if "value" in obj:
            raise r.fail(f'"{op}" takes no value', "value")
        return Condition(key, op)
    if op in NUMBER_OPS:
        number = r.required(obj, "value", lambda v: _signed_number(r, v))
        return Condition(key, op, number)
    return Condition(key, op, r.required(obj, "value", lambda v: _scalar(r, v)))


def _signed_number(r: _Reader, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise r.fail("must be a number")
    number: float = _scalar(r, value)
    return number
