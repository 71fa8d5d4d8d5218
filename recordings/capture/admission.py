"""Capture admission: whether a project takes a request's batches now, and why not.

The capture views (recordings/capture/endpoints.py) ask capture_admit() before storing
anything and map a Refusal to their JSON answer. Refusals are noted in the ingest ledger
here. The token's project, with its privacy settings, and the project's tombstones are
reused per process for REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from django.conf import settings
from rest_framework import status

from privacy import policy
from privacy.models import PrivacySettings
from recordings.capture.throttles import IngestRateLimit
from recordings.ingest.events import AnalyticsEvent
from recordings.ingest.parse import SessionRef
from recordings.models import Project
from recordings.services.exclusions import person_is_excluded
from recordings.services.ledger import ledger_record_refusal

# The refusal of an erased person's batches, noted in the ledger without their id.
ERASED_PERSON = "erased_person"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A request that is not stored: for good (4xx), or for now (503 + Retry-After)."""

    code: str
    message: str
    status: int = status.HTTP_403_FORBIDDEN
    retry_after: int | None = None


@dataclasses.dataclass(frozen=True)
class Admitted:
    """The project that takes the batches, with what capture reads of its privacy."""

    project: Project
    privacy: PrivacySettings  # read once per request, passed down to the services
    tombstones: frozenset[str]


def capture_admit(
    *,
    token: str,
    sessions: list[SessionRef],
    opted_out: bool,
    rate_limit: IngestRateLimit,
) -> Admitted | Refusal:
    """The token's project if it takes these sessions' batches now, else why not.

    `opted_out` says the request carries Do-Not-Track (or Global Privacy Control).
    Every refusal of a known project is noted in the ledger.
    """
    cached = _cached_project(token) is not None
    project = project_for_token(token)
    if isinstance(project, Refusal):
        return project
    admitted = _admitted(project)
    refusal = _refused_for_good(admitted, sessions, opted_out)
    if refusal is not None and cached:
        # A 4xx is final: posthog-js drops the batch and never sends it again. So it
        # is never given from a cached project that another process may have turned
        # back on meanwhile (a raised cap, recording switched on, a rule removed):
        # decide again on a fresh read, at the cost of a query per refusal.
        project = project_for_token(token, fresh=True)
        if isinstance(project, Refusal):
            return project
        admitted = _admitted(project)
        refusal = _refused_for_good(admitted, sessions, opted_out)
    if refusal is None:
        refusal = _rate_limited(admitted, rate_limit)
    if refusal is not None:
        _note_refusal(project, sessions, refusal)
        return refusal
    return admitted


def _admitted(project: Project) -> Admitted:
    return Admitted(project, policy.privacy_for(project), tombstones_for(project))


def _note_refusal(
    project: Project, sessions: list[SessionRef], refusal: Refusal
) -> None:
    if refusal.code == ERASED_PERSON:
        # The ledger notes the refusal, but not whose: that id was erased.
        sessions = [SessionRef(r.token, r.session_id, "") for r in sessions]
    ledger_record_refusal(project=project, sessions=sessions, reason=refusal.code)


def _refused_for_good(
    admitted: Admitted, sessions: list[SessionRef], opted_out: bool
) -> Refusal | None:
    """Why the project never takes these batches (a 4xx), from what it says now."""
    if erased_among(admitted, (ref.distinct_id for ref in sessions)):
        # 4xx on purpose: never retried, never stored.
        return Refusal(
            ERASED_PERSON,
            "this person's data was erased from the project; their batches are refused",
        )
    project = admitted.project
    if not project.recording_enabled:
        return Refusal(
            "recording_disabled", "recording is switched off for this project"
        )
    if admitted.privacy.respect_do_not_track and opted_out:
        # 4xx on purpose: the person asked not to be tracked, never retry.
        return Refusal(
            "do_not_track",
            "the browser sent Do-Not-Track and this project respects it",
        )
    if project.over_cap_since is not None:
        # 4xx on purpose: the cap holds until the month ends or it is raised;
        # retries would only add load (the remote config says stop, too).
        return Refusal(
            "over_quota",
            f"the project reached its cap of {project.monthly_minutes_cap} "
            "recorded minutes this month",
        )
    return _excluded(admitted, sessions)


def _rate_limited(admitted: Admitted, rate_limit: IngestRateLimit) -> Refusal | None:
    project = admitted.project
    wait = rate_limit.retry_after(project)
    if wait is None:
        return None
    return Refusal(
        "rate_limited",
        f"over {rate_limit.limit_for(project)} batches a minute; retry in {wait} s",
        status.HTTP_503_SERVICE_UNAVAILABLE,
        retry_after=wait,
    )


def _excluded(admitted: Admitted, sessions: list[SessionRef]) -> Refusal | None:
    distinct_ids = {ref.distinct_id for ref in sessions if ref.distinct_id}
    if not person_is_excluded(
        project=admitted.project, distinct_ids=distinct_ids, privacy=admitted.privacy
    ):
        return None
    # 4xx on purpose: the project's rules say this person is never recorded.
    return Refusal(
        "excluded_person", "the project's recording rules exclude this person"
    )


def erased_among(admitted: Admitted, distinct_ids: Iterable[str]) -> bool:
    """Whether any of these distinct ids was erased from the admitted project."""
    return bool(
        policy.erased_among(admitted.project, distinct_ids, admitted.tombstones)
    )


def events_not_erased(
    *, admitted: Admitted, events: list[AnalyticsEvent]
) -> list[AnalyticsEvent]:
    """The events that are not an erased person's (theirs are dropped, the rest
    of the batch kept)."""
    return [
        e
        for e in events
        if not erased_among(admitted, (e.distinct_id, e.anon_distinct_id))
    ]


# Project id -> (monotonic expiry, hashes of the distinct ids erased from it).
_tombstones: dict[int, tuple[float, frozenset[str]]] = {}


def tombstones_for(project: Project) -> frozenset[str]:
    """The project's tombstones, reused for as long as its cached settings.

    An erasure runs a settle pass after that time, for batches admitted before
    this cache saw the new tombstones (privacy.erasure).
    """
    cached = _tombstones.get(project.pk)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    hashes = policy.tombstones(project)
    ttl: int = settings.REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS
    if ttl > 0:
        _tombstones[project.pk] = (time.monotonic() + ttl, hashes)
    return hashes


# Capture token -> (monotonic expiry, project with its privacy settings loaded).
# Per process; entries are only read once stored, so threads may share them.
_projects: dict[str, tuple[float, Project]] = {}


def project_for_token(token: str, *, fresh: bool = False) -> Project | Refusal:
    """The token's project and privacy settings, reused for a few seconds.

    Every batch needs both, and they change rarely: a changed switch or privacy
    rule reaches capture within REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS (one that
    turns capture back on at once: capture_admit reads again before refusing).
    Unknown tokens are never cached, so garbage tokens cannot fill the memory.
    `fresh` reads the database whatever is cached, and caches what it read.
    """
    if not token:
        return Refusal(
            "missing_token",
            "no project token in the request",
            status.HTTP_401_UNAUTHORIZED,
        )
    cached = None if fresh else _cached_project(token)
    if cached is not None:
        return cached
    project = _load_project(token)
    if project is None:
        return Refusal(
            "invalid_token", "unknown project token", status.HTTP_401_UNAUTHORIZED
        )
    ttl: int = settings.REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS
    if ttl > 0:
        _projects[token] = (time.monotonic() + ttl, project)
    return project


def _cached_project(token: str) -> Project | None:
    cached = _projects.get(token)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


def _load_project(token: str) -> Project | None:
    # One query for the project and its privacy settings, both needed per batch.
    found = Project.objects.for_token(token).select_related("privacy")
    project = found.first()
    if project is not None and not hasattr(project, "privacy"):
        policy.privacy_for(project)  # creates the defaults; load them with it
        project = found.get()
    return project
