"""How much one capture request may ask of a worker, beyond its byte bounds.

Most of capture's work grows with the decompressed size, which the byte bounds
already limit. What does not is paid per item: each session of a request costs a
read, a blob fsync and a commit; each window a blob; each analytics event a row
and perhaps a person. So the counts are capped too, well above what a real client
sends (shared/docs/wire-protocol.md §2): posthog-js posts one (session, window) per
`/s/` request with 1-3 `$snapshot`s in it (one per 2 s flush or ~0.9 MiB of
events), and its analytics batches hold what one page captured in 3 s. A request
over a cap is refused for good with 413: sending it again cannot succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from recordings.ingest.parse import IngestError

__all__ = [
    "EVENT_BYTES",
    "RequestLimits",
    "TooManyItems",
    "check_events",
    "check_snapshot_batches",
]


# An analytics event is a database row, which the driver copies whole: past this
# it is refused. PostHog takes events of up to 1 MB, too.
EVENT_BYTES = 1024 * 1024


class TooManyItems(IngestError):
    """A request holding more sessions, batches or events than one may."""

    status = 413


@dataclass(frozen=True, slots=True)
class RequestLimits:
    sessions: int = 10  # distinct `$session_id`s in one /s/ request
    snapshots: int = 100  # `$snapshot` events in one /s/ request
    events: int = 1000  # analytics events in one /e/, /i/v0/e/ or /batch/ request
    # JSON of one analytics event's properties (and `$set`, `$set_once`).
    event_bytes: int = EVENT_BYTES


class _OfSession(Protocol):
    @property
    def session_id(self) -> str: ...


def check_snapshot_batches(
    batches: Sequence[_OfSession], limits: RequestLimits
) -> None:
    """Refuse a /s/ request of more `$snapshot`s or sessions than `limits` allow."""
    if len(batches) > limits.snapshots:
        raise TooManyItems(
            "too_many_snapshots",
            f"{len(batches)} $snapshot events in one request; at most "
            f"{limits.snapshots} are taken",
        )
    sessions = len({batch.session_id for batch in batches})
    if sessions > limits.sessions:
        raise TooManyItems(
            "too_many_sessions",
            f"{sessions} sessions in one request; at most {limits.sessions} are "
            "taken (posthog-js sends one)",
        )


def check_events(events: Sequence[object], limits: RequestLimits) -> None:
    """Refuse an analytics request of more events than `limits` allow."""
    if len(events) > limits.events:
        raise TooManyItems(
            "too_many_events",
            f"{len(events)} events in one request; at most {limits.events} are taken",
        )
