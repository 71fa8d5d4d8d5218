"""Hand-made recordings with analytics events and markers, whose answers are known.

The filter "did llm_call_completed where model = claude-3-5-sonnet, followed by an
error within 30 s, and did not do feedback_positive_clicked" finds exactly
`LLM_ERROR_ANSWER` among `make_llm_sessions`' recordings.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils.timezone import now

from recordings.models import Event, Marker, Project, Recording

LLM_CALL = "llm_call_completed"
FEEDBACK = "feedback_positive_clicked"
CLAUDE = "claude-3-5-sonnet"
LLM_ERROR_FILTER: dict[str, Any] = {
    "version": 1,
    "where": {
        "all": [
            {
                "term": "event",
                "name": LLM_CALL,
                "where": [{"key": "model", "op": "equals", "value": CLAUDE}],
                "followed_by": {"within": 30, "target": {"error": True}},
            },
            {"not": {"term": "event", "name": FEEDBACK}},
        ]
    },
}
# The sessions that filter finds: an exception marker 10 s after the call, and an
# `$exception` event 20 s after it.
LLM_ERROR_ANSWER = {"llm-marker-error", "llm-exception-event"}

_uuids = itertools.count()


def make_recording(project: Project, session_id: str, **fields: Any) -> Recording:
    started = fields.pop("started_at", now() - dt.timedelta(hours=1))
    duration = fields.pop("duration_ms", 120_000)
    return Recording.objects.create(
        project=project,
        session_id=session_id,
        distinct_id=f"{session_id}-person",
        started_at=started,
        ended_at=started + dt.timedelta(milliseconds=duration),
        duration_ms=duration,
        has_full_snapshot=True,
        **fields,
    )


def add_event(recording: Recording, name: str, at_s: float, **properties: Any) -> Event:
    return Event.objects.create(
        project=recording.project,
        uuid=f"event-{next(_uuids)}",
        name=name,
        distinct_id=recording.distinct_id,
        session_id=recording.session_id,
        timestamp=recording.started_at + dt.timedelta(seconds=at_s),
        properties=properties,
    )


def add_marker(recording: Recording, kind: str, at_s: float) -> Marker:
    return Marker.objects.create(
        recording=recording,
        kind=kind,
        timestamp=recording.started_at + dt.timedelta(seconds=at_s),
        offset_ms=int(at_s * 1000),
    )


def make_llm_sessions(project: Project) -> dict[str, Recording]:
    """Sessions around LLM calls and errors; see LLM_ERROR_ANSWER for the hits."""
    sessions: dict[str, Recording] = {}

    def session(session_id: str) -> Recording:
        sessions[session_id] = make_recording(project, session_id)
        return sessions[session_id]

    hit = session("llm-marker-error")
    add_event(hit, LLM_CALL, 5, model=CLAUDE)
    add_marker(hit, Marker.Kind.EXCEPTION, 15)

    exception = session("llm-exception-event")
    add_event(exception, LLM_CALL, 5, model=CLAUDE, tokens=812)
    add_event(exception, "$exception", 25, **{"$exception_message": "timeout"})

    late = session("llm-late-error")  # the error comes 60 s after the call
    add_event(late, LLM_CALL, 5, model=CLAUDE)
    add_marker(late, Marker.Kind.CONSOLE_ERROR, 65)

    other = session("llm-other-model")
    add_event(other, LLM_CALL, 5, model="gpt-4o")
    add_marker(other, Marker.Kind.NETWORK_ERROR, 10)

    liked = session("llm-error-but-feedback")  # liked the answer anyway
    add_event(liked, LLM_CALL, 5, model=CLAUDE)
    add_marker(liked, Marker.Kind.EXCEPTION, 8)
    add_event(liked, FEEDBACK, 40)

    before = session("llm-error-before")  # the error came first
    add_marker(before, Marker.Kind.EXCEPTION, 2)
    add_event(before, LLM_CALL, 5, model=CLAUDE)

    fine = session("llm-no-error")
    add_event(fine, LLM_CALL, 5, model=CLAUDE)
    add_event(fine, FEEDBACK, 20)
    return sessions
