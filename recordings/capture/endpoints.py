"""Capture endpoints: what posthog-js and plain rrweb clients post to.

Every answer is exactly 200 on success (posthog-js retries 201/202/204), a 4xx JSON
error for input that must never be retried, and 503 with Retry-After when ReplayHub
could not store a batch, so that the client tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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

from recordings.blobs import StorageError
from recordings.capture import geo
from recordings.capture.admission import (
    Admitted,
    Refusal,
    capture_admit,
    events_not_erased,
)
from recordings.capture.people import events_ingest
from recordings.capture.store import ClientInfo, recording_ingest_batches
from recordings.capture.throttles import IngestRateLimit
from recordings.client_address import client_ip
from recordings.ingest import storable
from recordings.ingest.events import parse_event_request
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
from recordings.services.ledger import ledger_record_refusal

logger = logging.getLogger(__name__)

OK_BODY = {"status": 1}
# The 503 of a batch that could not be stored (storage or database failed).
TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"


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

    @classmethod
    def from_refusal(cls, refusal: Refusal) -> CaptureRefused:
        return cls(refusal.code, refusal.message, refusal.status, refusal.retry_after)


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
            {"error": TEMPORARILY_UNAVAILABLE, "detail": "could not store; retry"},
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
        """The decoded body, parsed here rather than through `request.data`.

        DRF keeps `request.data` on its Request, which sits in reference cycles
        (its parser_context holds the Request and the view), so a parsed body
        would outlive its response until Python's cyclic collector next runs a
        full pass, dozens of requests later: a worker then held many requests'
        60 MiB documents at once (issue 24, docs/benchmarks/memory.md). Returned
        instead, the payload is freed when the view's handler returns.
        """
        stream = request.stream
        if stream is None:
            if not request.META.get("wsgi.input_terminated"):
                raise CaptureRefused("empty_body", "the request has no body")
            # No Content-Length: a chunked body, as some proxies forward them.
            # Django then reads nothing (a LimitedStream of length 0) and DRF has
            # no stream, but a server that sets wsgi.input_terminated (gunicorn
            # does) ends wsgi.input with the body, so it is read there: same
            # parser, same bounds.
            stream = request.META["wsgi.input"]
        return CaptureBodyParser().parse(
            stream, request.content_type, request.parser_context
        )

    def admit(self, token: str, sessions: list[SessionRef]) -> Admitted:
        """The project the batches are for, if it takes them now; else refuse."""
        admitted = capture_admit(
            token=token,
            sessions=sessions,
            opted_out=_opted_out(self.request),
            rate_limit=self.rate_limit,
        )
        if isinstance(admitted, Refusal):
            raise CaptureRefused.from_refusal(admitted)
        return admitted

    def store(self, admitted: Admitted, batches: list[SnapshotBatch]) -> None:
        try:
            recording_ingest_batches(
                project=admitted.project,
                batches=batches,
                privacy=admitted.privacy,
                client=client_info(self.request),
            )
        except IngestError as exc:
            refs = [_ref(batch) for batch in batches]
            ledger_record_refusal(
                project=admitted.project, sessions=refs, reason=exc.code
            )
            raise CaptureRefused.from_ingest_error(exc) from exc
        except (StorageError, DatabaseError):
            # Answered 503 and retried, but noted: a session whose batches only
            # ever met a failure still shows in the ledger. Its own short
            # transaction, and logged, never raised, when the database is what
            # failed (ledger_record_refusal): the client gets the 503 either way.
            refs = [_ref(batch) for batch in batches]
            ledger_record_refusal(
                project=admitted.project, sessions=refs, reason=TEMPORARILY_UNAVAILABLE
            )
            raise


def refuse_unparsable(payload: Any, exc: IngestError) -> CaptureRefused:
    """The refusal for a body that decoded but did not parse, noted in the ledger."""
    refs = peek_sessions(payload)
    tokens = {ref.token for ref in refs}
    project = (
        Project.objects.for_token(tokens.pop()).first() if len(tokens) == 1 else None
    )
    if project is not None:
        ledger_record_refusal(project=project, sessions=refs, reason=exc.code)
    return CaptureRefused.from_ingest_error(exc)


def _ref(batch: SnapshotBatch) -> SessionRef:
    return SessionRef(batch.token, batch.session_id, batch.distinct_id)


def _opted_out(request: HttpRequest) -> bool:
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


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
        admitted = self.admit(token, [_ref(batch) for batch in batches])
        self.store(admitted, batches)
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
        admitted = self.admit(
            batch.token or request.GET.get("token", ""), [_ref(batch)]
        )
        self.store(admitted, [batch])
        return Response(OK_BODY, status=status.HTTP_200_OK)


class EventCaptureApi(CaptureApi):
    """posthog-js analytics events (`/e/`, `/i/v0/e/`, `/batch/`)."""

    def post(self, request: Request) -> Response:
        try:
            events = parse_event_request(self.payload(request))
        except IngestError as exc:
            raise CaptureRefused.from_ingest_error(exc) from exc
        within_limits(check_events, events)
        admitted = self.admit(_single_token({e.token for e in events}), [])
        try:
            events_ingest(
                project=admitted.project,
                events=events_not_erased(admitted=admitted, events=events),
                ip=client_ip(request),
                max_event_bytes=request_limits().event_bytes,
                privacy=admitted.privacy,
            )
        except IngestError as exc:
            raise CaptureRefused.from_ingest_error(exc) from exc
        return Response(OK_BODY, status=status.HTTP_200_OK)


def client_info(request: HttpRequest) -> ClientInfo:
    """The browser's User-Agent and country, for the recording's environment."""
    agent = storable.clean_text(request.headers.get("User-Agent", "")[:USER_AGENT_MAX])
    return ClientInfo(
        user_agent=agent,
        country=geo.request_country(request.headers, client_ip(request)),
    )


# Recording.user_agent's length.
USER_AGENT_MAX = 512


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
