"""Where in each recording a filter matched: the moment a list opens it at.

A filtered list (or a playlist of a saved filter) links each recording to the
player at its first matching moment, as `?t=<seconds>`. The moment is the
earliest of what the document's positive terms point at: the first event an
`event` term matched (with its conditions and `followed_by`, as the filter
compiles them), the first marker of a signal the filter asks for (a rage
click, a console error...), the first visited page a `url` term matched. Terms
under a `not`, and terms that are about the whole recording (duration,
browser, person, flags...), point at no moment.

One query for a page of recordings: one correlated subquery per such term,
built from the compiler's own pieces (recordings/search/compiler.py), so "where
it matched" and "whether it matched" cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform

from recordings.models.marker import Marker
from recordings.models.recording import Recording
from recordings.search.compiler import (
    POSITIVE_OPS,
    followed_q,
    target_events,
    text_q,
)
from recordings.search.language.document import (
    ColumnRange,
    Document,
    Group,
    Node,
    Not,
    Performed,
    TextMatch,
    UrlVisited,
)

# Signal columns whose moments are markers of these kinds.
SIGNAL_MARKERS: dict[str, tuple[str, ...]] = {
    "rage_click_count": (Marker.Kind.RAGE_CLICK,),
    "dead_click_count": (Marker.Kind.DEAD_CLICK,),
    "mouse_thrash_count": (Marker.Kind.MOUSE_THRASH,),
    "u_turn_count": (Marker.Kind.U_TURN,),
    "error_click_count": (Marker.Kind.ERROR_CLICK,),
    "console_error_count": (Marker.Kind.CONSOLE_ERROR, Marker.Kind.EXCEPTION),
    "network_4xx_count": (Marker.Kind.NETWORK_ERROR,),
    "network_5xx_count": (Marker.Kind.NETWORK_ERROR,),
}
# The player opens this long before the moment, so that it can be seen coming.
LEAD_MS = 2000


def positive_terms(node: Node | None, negated: bool = False) -> Iterator[Node]:
    """The document's terms that are not under an odd number of `not`s."""
    if node is None:
        return
    if isinstance(node, Group):
        for child in node.nodes:
            yield from positive_terms(child, negated)
    elif isinstance(node, Not):
        yield from positive_terms(node.node, not negated)
    elif not negated:
        yield node


def _moment_of(term: Node) -> Subquery[Any] | None:
    """The earliest timestamp a term points at, for the outer recording."""
    if isinstance(term, Performed):
        events = target_events(term.event)
        if term.followed_by is not None:
            events = events.filter(followed_q(term.followed_by))
        if term.count is not None and term.count.lte == 0:
            return None  # "never": nothing to point at
        return _first(events.order_by("timestamp").values("timestamp"))
    if isinstance(term, ColumnRange) and term.column in SIGNAL_MARKERS:
        if not term.bounds.gte:
            return None  # "at most N" matches recordings without any
        return _first_marker(SIGNAL_MARKERS[term.column])
    if isinstance(term, UrlVisited) and not term.first_only:
        if term.match.op not in POSITIVE_OPS:
            return None
        return _first_page(term.match)
    return None


def _first(values: Any) -> Subquery[Any]:
    return Subquery(values[:1])


def _first_marker(kinds: Sequence[str]) -> Subquery[Any]:
    markers = Marker.objects.filter(recording_id=OuterRef("pk"), kind__in=kinds)
    return _first(markers.order_by("timestamp").values("timestamp"))


def _first_page(match: TextMatch) -> Subquery[Any]:
    pages = Marker.objects.filter(
        recording_id=OuterRef("pk"), kind=Marker.Kind.PAGE
    ).annotate(_url=KeyTextTransform("url", "details"))
    pages = pages.filter(text_q("_url", match))
    return _first(pages.order_by("timestamp").values("timestamp"))


def first_moments(
    document: Document | None, recordings: Sequence[Recording]
) -> dict[int, int]:
    """Recording pk -> milliseconds from its start to open the player at (the
    first matching moment less LEAD_MS, never before 0). Recordings whose filter
    points at no moment are left out; no query when no term can point."""
    moments = [m for m in map(_moment_of, positive_terms(_where(document))) if m]
    if not moments or not recordings:
        return {}
    names = [f"_moment{index}" for index in range(len(moments))]
    rows = (
        Recording.objects.filter(pk__in=[r.pk for r in recordings])
        .annotate(**dict(zip(names, moments, strict=True)))
        .values_list("pk", "started_at", *names)
    )
    found: dict[int, int] = {}
    for pk, started, *stamps in rows:
        times: list[dt.datetime] = [stamp for stamp in stamps if stamp is not None]
        if times:
            offset = min(times) - started
            found[pk] = max(0, int(offset.total_seconds() * 1000) - LEAD_MS)
    return found


def _where(document: Document | None) -> Node | None:
    return None if document is None else document.where
