"""Capture endpoints: what posthog-js and plain rrweb clients post to.

Every answer is exactly 200 on success (posthog-js retries 201/202/204), a 4xx JSON
error for input that must never be retried, and 503 with Retry-After when ReplayHub
could not store a batch, so that the client tries again.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from privacy import policy
from privacy.policy import privacy_for
from recordings import services
from recordings.blobs import StorageError
from recordings.ingest.events import AnalyticsEvent, parse_event_request
from recordings.ingest.limits import RequestLimits, check_events, check_snapshot_batches
from recordings.ingest.parse import (
    Budget,
    IngestError,
    SessionRef,
    SnapshotBatch,
    decode_body,
    parse_rrweb_request,
    parse_snapshot_request,
    peek_sessions,
)
from recordings.models import Project
from recordings.throttles import IngestRateLimit

logger = logging.getLogger(__name__)

OK_BODY = {"status": 1}


class CaptureRefused(APIException):
    """A request that is not stored: for good (4xx), or for now (503 + Retry-After)."""

    def __init__(
        self,
        code: str,
        message: str,
        status_code: int = 400,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.retry_after = retry_after

    @classmethod
    def from_ingest_error(cls, exc: IngestError) -> CaptureRefused:
        return cls(exc.code, exc.message, exc.status)


def _read_limited(stream: Any, limit: int) -> bytes:
    body: bytes = stream.read(limit + 1)
    if len(body) > limit:
        raise CaptureRefused(
            "body_too_large",
            f"request body is over the {limit}-byte limit",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return body


class CaptureBodyParser(BaseParser):
    """Every body encoding posthog-js uses (gzip, base64 form, JSON), sniffed.

    posthog-js labels gzip bodies text/plain with no marker in the URL, so the parser
    accepts any media type and looks at the bytes.
    """

    media_type = "*/*"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        request: Request = (parser_context or {})["request"]
        body = _read_limited(stream, settings.REPLAYHUB_INGEST_MAX_BYTES)
        try:
            return decode_body(
                body,
                content_type=media_type or "",
                content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
                compression=request.GET.get("compression", ""),
                max_decompressed=decompression_budget(request),
            )
        except IngestError as exc:
            raise CaptureRefused.from_ingest_error(exc) from exc


def decompression_budget(request: Request) -> Budget:
    """The bytes one request may inflate to: the body and the `cv` fields in it
    draw on the same REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES."""
    budget: Budget | None = getattr(request, "_capture_budget", None)
    if budget is None:
        budget = Budget(settings.REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES)
        request._capture_budget = budget  # type: ignore[attr-defined]
    return budget


def request_limits() -> RequestLimits:
    return RequestLimits(
        sessions=settings.REPLAYHUB_INGEST_MAX_SESSIONS,
        snapshots=settings.REPLAYHUB_INGEST_MAX_SNAPSHOTS,
        events=settings.REPLAYHUB_INGEST_MAX_EVENTS,
        event_bytes=settings.REPLAYHUB_INGEST_MAX_EVENT_BYTES,
    )


def within_limits(check: Callable[[Any, RequestLimits], None], items: Any) -> None:
    """Refuse a request carrying more items than one may (413, never retried).

    Not noted in the ledger: that would cost a write per session named, which is
    what the cap is there to bound.
    """
    try:
        check(items, request_limits())
    except IngestError as exc:
        raise CaptureRefused.from_ingest_error(exc) from exc


def capture_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, CaptureRefused):
        body = {"error": exc.error_code, "detail": str(exc.detail)}
        response = Response(body, status=exc.status_code)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, APIException):
        return Response(
            {"error": exc.get_codes(), "detail": exc.detail}, status=exc.status_code
        )
    if isinstance(exc, StorageError | DatabaseError):
        logger.exception("capture could not store a batch; client asked to retry")
        response = Response(
            {"error": "temporarily_unavailable", "detail": "could not store; retry"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(settings.REPLAYHUB_INGEST_RETRY_AFTER)
        return response
    raise exc


class CaptureApi(APIView):
    """Shared policy of the capture endpoints: public, CORS-open, JSON errors."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [CaptureBodyParser]
    rate_limit = IngestRateLimit()

    def get_exception_handler(self) -> Callable[..., Response]:
        return capture_exception_handler

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        # CORS preflight, sent for application/json bodies.
        response = Response(status=status.HTTP_200_OK)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "content-type, content-encoding"
        response["Access-Control-Max-Age"] = "86400"
        return response

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # Pages on any site post here without cookies, so a wildcard origin is right;
        # exposing Retry-After lets posthog-js honour it on a 503.
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = "Retry-After"
        return response

    def payload(self, request: Request) -> Any:
        if request.stream is not None:
            return request.data
        if not request.META.get("wsgi.input_terminated"):
            raise CaptureRefused("empty_body", "the request has no body")
        # No Content-Length: a chunked body, as some proxies forward them. Django
        # then reads nothing (a LimitedStream of length 0) and DRF has no stream,
        # but a server that sets wsgi.input_terminated (gunicorn does) ends
        # wsgi.input with the body, so it is read there: same parser, same bounds.
        return CaptureBodyParser().parse(
            request.META["wsgi.input"], request.content_type, request.parser_context
        )

    def admit(self, token: str, sessions: list[SessionRef]) -> Project:
        """The project the batches are for, if it takes them now; else refuse."""
        project = project_for_token(token)
        erased = tombstones_for(project)
        if _erased(project, (ref.distinct_id for ref in sessions), erased):
            # The ledger notes the refusal, but not whose: that id was erased.
            anonymous = [SessionRef(r.token, r.session_id, "") for r in sessions]
            services.ledger_record_refusal(
                project=project, sessions=anonymous, reason="erased_person"
            )
            # 4xx on purpose: never retried, never stored.
            raise CaptureRefused(
                "erased_person",
                "this person's data was erased from the project; their batches "
                "are refused",
                status.HTTP_403_FORBIDDEN,
            )
        refusal = self.refusal_for(project, self.request) or _excluded(
            project, sessions
        )
        if refusal is not None:
            services.ledger_record_refusal(
                project=project, sessions=sessions, reason=refusal.error_code
            )
            raise refusal
        return project

    def refusal_for(
        self, project: Project, request: HttpRequest
    ) -> CaptureRefused | None:
        if not project.recording_enabled:
            return CaptureRefused(
                "recording_disabled",
                "recording is switched off for this project",
                status.HTTP_403_FORBIDDEN,
            )
        if privacy_for(project).respect_do_not_track and _opted_out(request):
            # 4xx on purpose: the person asked not to be tracked, never retry.
            return CaptureRefused(
                "do_not_track",
                "the browser sent Do-Not-Track and this project respects it",
                status.HTTP_403_FORBIDDEN,
            )
        if project.over_cap_since is not None:
            # 4xx on purpose: the cap holds until the month ends or it is raised;
            # retries would only add load (the remote config says stop, too).
            return CaptureRefused(
                "over_quota",
                f"the project reached its cap of {project.monthly_minutes_cap} "
                "recorded minutes this month",
                status.HTTP_403_FORBIDDEN,
            )
        wait = self.rate_limit.retry_after(project)
        if wait is not None:
            return CaptureRefused(
                "rate_limited",
                f"over {self.rate_limit.limit_for(project)} batches a minute; "
                f"retry in {wait} s",
                status.HTTP_503_SERVICE_UNAVAILABLE,
                retry_after=wait,
            )
        return None

    def store(self, project: Project, batches: list[SnapshotBatch]) -> None:
        try:
            services.recording_ingest_batches(project=project, batches=batches)
        except IngestError as exc:
            refs = [_ref(batch) for batch in batches]
            services.ledger_record_refusal(
                project=project, sessions=refs, reason=exc.code
            )
            raise CaptureRefused.from_ingest_error(exc) from exc


def refuse_unparsable(payload: Any, exc: IngestError) -> CaptureRefused:
    """The refusal for a body that decoded but did not parse, noted in the ledger."""
    refs = peek_sessions(payload)
    tokens = {ref.token for ref in refs}
    project = (
        Project.objects.for_token(tokens.pop()).first() if len(tokens) == 1 else None
    )
    if project is not None:
        services.ledger_record_refusal(project=project, sessions=refs, reason=exc.code)
    return CaptureRefused.from_ingest_error(exc)


def _ref(batch: SnapshotBatch) -> SessionRef:
    return SessionRef(batch.token, batch.session_id, batch.distinct_id)


def _excluded(project: Project, sessions: list[SessionRef]) -> CaptureRefused | None:
    distinct_ids = {ref.distinct_id for ref in sessions if ref.distinct_id}
    if not services.person_is_excluded(project=project, distinct_ids=distinct_ids):
        return None
    # 4xx on purpose: the project's rules say this person is never recorded.
    return CaptureRefused(
        "excluded_person",
        "the project's recording rules exclude this person",
        status.HTTP_403_FORBIDDEN,
    )


def _erased(
    project: Project, distinct_ids: Iterable[str], tombstones: frozenset[str]
) -> bool:
    return bool(policy.erased_among(project, distinct_ids, tombstones))


def _ids_of(event: AnalyticsEvent) -> tuple[str, str]:
    return (event.distinct_id, event.anon_distinct_id)


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


def _opted_out(request: HttpRequest) -> bool:
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


# Capture token -> (monotonic expiry, project with its privacy settings loaded).
# Per process; entries are only read once stored, so threads may share them.
_projects: dict[str, tuple[float, Project]] = {}


def project_for_token(token: str) -> Project:
    """The token's project and privacy settings, reused for a few seconds.

    Every batch needs both, and they change rarely: a changed switch or privacy
    rule reaches capture within REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS. Unknown
    tokens are never cached, so garbage tokens cannot fill the memory.
    """
    if not token:
        raise CaptureRefused(
            "missing_token",
            "no project token in the request",
            status.HTTP_401_UNAUTHORIZED,
        )
    cached = _projects.get(token)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    project = _load_project(token)
    ttl: int = settings.REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS
    if ttl > 0:
        _projects[token] = (time.monotonic() + ttl, project)
    return project


def _load_project(token: str) -> Project:
    # One query for the project and its privacy settings, both needed per batch.
    found = Project.objects.for_token(token).select_related("privacy")
    project = found.first()
    if project is None:
        raise CaptureRefused(
            "invalid_token", "unknown project token", status.HTTP_401_UNAUTHORIZED
        )
    if not hasattr(project, "privacy"):
        privacy_for(project)  # creates the defaults; load them with the project
        project = found.get()
    return project


def _single_token(tokens: set[str]) -> str:
    if len(tokens) > 1:
        raise CaptureRefused("mixed_tokens", "one request must carry one project token")
    return next(iter(tokens), "")


class SnapshotCaptureApi(CaptureApi):
    """posthog-js `/s/`: a list of `$snapshot` events of one session and window."""

    def post(self, request: Request) -> Response:
        payload = self.payload(request)
        try:
            batches = parse_snapshot_request(
                payload, max_decompressed=decompression_budget(request)
            )
        except IngestError as exc:
            raise refuse_unparsable(payload, exc) from exc
        within_limits(check_snapshot_batches, batches)
        token = _single_token({batch.token for batch in batches})
        project = self.admit(token, [_ref(batch) for batch in batches])
        self.store(project, batches)
        return Response(OK_BODY, status=status.HTTP_200_OK)


class IngestApi(CaptureApi):
    """Plain rrweb clients: `{"session_id", "events": [...], "token"?, ...}`.

    The token may come in the body or as `?token=` (sendBeacon cannot set headers).
    """

    def post(self, request: Request) -> Response:
        payload = self.payload(request)
        try:
            batch = parse_rrweb_request(payload)
        except IngestError as exc:
            raise refuse_unparsable(payload, exc) from exc
        project = self.admit(batch.token or request.GET.get("token", ""), [_ref(batch)])
        self.store(project, [batch])
        return Response(OK_BODY, status=status.HTTP_200_OK)


class EventCaptureApi(CaptureApi):
    """posthog-js analytics events (`/e/`, `/i/v0/e/`, `/batch/`)."""

    def post(self, request: Request) -> Response:
        try:
            events = parse_event_request(self.payload(request))
        except IngestError as exc:
            raise CaptureRefused.from_ingest_error(exc) from exc
        within_limits(check_events, events)
        project = self.admit(_single_token({e.token for e in events}), [])
        # An erased person's events are dropped, the rest of the batch kept.
        erased = tombstones_for(project)
        events = [e for e in events if not _erased(project, _ids_of(e), erased)]
        try:
            services.events_ingest(
                project=project,
                events=events,
                ip=client_ip(request),
                max_event_bytes=request_limits().event_bytes,
            )
        except IngestError as exc:
            raise CaptureRefused.from_ingest_error(exc) from exc
        return Response(OK_BODY, status=status.HTTP_200_OK)


def client_ip(request: HttpRequest) -> str:
    """The sender's address: REMOTE_ADDR, or the first X-Forwarded-For entry when
    REPLAYHUB_TRUST_X_FORWARDED_FOR says a proxy in front sets that header."""
    candidates = [request.META.get("REMOTE_ADDR", "")]
    if settings.REPLAYHUB_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        candidates.insert(0, forwarded.split(",")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            continue  # empty, or not an address: never store what a client made up
    return ""


class FlagsApi(CaptureApi):
    """`/flags/`: ReplayHub has no feature flags yet; "none" lets the SDK go on."""

    def post(self, request: Request) -> Response:
        return Response(
            {
                "flags": {},
                "featureFlags": {},
                "featureFlagPayloads": {},
                "errorsWhileComputingFlags": False,
                "quotaLimited": [],
            },
            status=status.HTTP_200_OK,
        )
