"""The management API (/api/v1/): projects and recordings, per project permission.

Every queryset starts from the projects the caller may read (narrowed to the API key's
projects when one is used), so another project's objects are 404, never 403. Each
action names the project permission it needs in `action_permissions`; an action left
out of that map is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import django_filters
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from recordings import access, tasks
from recordings.authentication import ApiKeyAuthentication
from recordings.models import Project, Recording, RecordingQuerySet
from recordings.parsers import MAX_BODY_DEPTH, BodyTooDeep, BoundedJSONParser
from recordings.permissions import ProjectPermission, request_key
from recordings.playback import responses
from recordings.playback.transfer import recordings_export_audit
from recordings.search.compiler import recordings_matching
from recordings.search.language import (
    Document,
    FilterInvalid,
    Problem,
    parse_document,
    parse_json_document,
)
from recordings.search.language.outline import outline
from recordings.search.language.schema import openapi_components
from recordings.serializers import (
    MarkerSerializer,
    ProjectSerializer,
    PurgeReportSerializer,
    PurgeRequestSerializer,
    RecordingDetailSerializer,
    RecordingExportSerializer,
    RecordingSerializer,
)
from recordings.services.purge import PurgeReport, PurgeSet, recordings_purge_set
from recordings.services.storage import RecordingOnHold, recording_purge

_UUID = "[0-9a-fA-F-]{32,36}"


class Pages(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's answer with a machine-readable code: `{"error": code, "detail": …}`.

    `detail` is DRF's message, or the per-field messages of a 400 (`invalid`).
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response: Response | None = exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    codes = exc.get_codes()
    if isinstance(exc, FilterRejected):
        response.data = {
            "error": codes,
            "detail": response.data["detail"],
            "problems": [problem.as_dict() for problem in exc.problems],
        }
    elif isinstance(codes, str):
        response.data = {"error": codes, "detail": response.data["detail"]}
    else:  # a ValidationError: messages per field
        response.data = {"error": "invalid", "detail": response.data}
    return response


# Status -> the `error` codes every operation may answer with.
_COMMON_ERRORS = {
    401: ["not_authenticated", "authentication_failed"],
    403: ["permission_denied"],
}
# The errors of a JSON body that cannot be read, for operations that take one.
_BODY_ERRORS = ["parse_error", BodyTooDeep.default_code]


def _error_schema(codes: list[str]) -> dict[str, Any]:
    schema = _plain_error_schema(codes)
    if FilterRejected.default_code in codes:
        schema["properties"]["problems"] = {
            "description": "For `invalid_filter`: where the filter is wrong, and why.",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string", "description": "A JSON pointer."},
                    "message": {"type": "string"},
                },
            },
        }
    return schema


def _plain_error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "error": {"type": "string", "enum": codes},
            "detail": {
                "description": "A message; for `invalid`, the messages per field."
            },
        },
        "required": ["error", "detail"],
    }


class ManagementSchema(AutoSchema):
    """Documents the errors of each operation, with their codes, beside its answer."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for status, codes in self.error_codes().items():
            responses.setdefault(
                str(status),
                {
                    "description": ", ".join(f"`{code}`" for code in codes),
                    "content": {"application/json": {"schema": _error_schema(codes)}},
                },
            )
        return responses

    def error_codes(self) -> dict[int, list[str]]:
        errors = dict(_COMMON_ERRORS)
        if self._is_list_view():
            errors[400] = ["invalid"]  # a filter's value
        else:
            errors[404] = ["not_found"]
        action = getattr(self.view, "action", None) or ""
        errors.update(getattr(self.view, "action_errors", {}).get(action, {}))
        if self._reads_a_body(action):
            errors[400] = [*errors.get(400, []), *_BODY_ERRORS]
        return dict(sorted(errors.items()))

    def _reads_a_body(self, action: str) -> bool:
        if self.method not in ("POST", "PUT", "PATCH"):
            return False
        if action in getattr(self.view, "filter_body_actions", ()):
            return False  # one that cannot be read is an invalid_filter
        return self.get_request_serializer() is not None


class ScopedViewSet(viewsets.GenericViewSet[Any]):
    authentication_classes = [
        ApiKeyAuthentication,
        *viewsets.GenericViewSet.authentication_classes,
    ]
    permission_classes = [ProjectPermission]
    # Bounded JSON bodies (400 too_deep); forms as DRF takes them by default.
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    pagination_class = Pages
    lookup_field = "code"
    lookup_value_regex = _UUID
    action_permissions: dict[str, str] = {}
    # action name -> the errors it may answer besides everyone's, for the schema
    action_errors: dict[str, dict[int, list[str]]] = {}
    schema = ManagementSchema()

    def get_exception_handler(self) -> Callable[..., Any]:
        return api_exception_handler

    def readable_projects(self, codename: str) -> QuerySet[Project]:
        return access.key_projects_for(
            self.request.user, request_key(self.request), codename
        )


class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Projects the caller has a role on (superusers: all)."""

    queryset = Project.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = ProjectSerializer
    action_permissions = {
        "list": access.VIEW_PROJECT,
        "retrieve": access.VIEW_PROJECT,
    }

    def get_queryset(self) -> QuerySet[Project]:
        return (
            self.readable_projects(access.VIEW_PROJECT)
            .annotate(recording_count=Count("recordings"))
            .order_by("name")
        )

    def project_of(self, obj: Project) -> Project:
        return obj


class FilterRejected(APIException):
    """A filter document that does not validate: 400 with every problem found."""

    status_code = 400
    default_code = "invalid_filter"
    default_detail = "the filter is not valid"

    def __init__(self, invalid: FilterInvalid) -> None:
        super().__init__()
        self.problems = invalid.problems


def filter_document(data: Any) -> Document:
    """The request's filter document (decoded JSON, or its text); 400 if invalid."""
    try:
        if isinstance(data, str | bytes):
            return parse_json_document(data)
        return parse_document(data)
    except FilterInvalid as exc:
        raise FilterRejected(exc) from exc


def request_json(request: Request) -> Any:
    """The request's JSON body; a body that is not JSON is an invalid filter."""
    try:
        return request.data
    except BodyTooDeep as exc:
        problem = Problem("", f"nests more than {MAX_BODY_DEPTH} levels deep")
        raise FilterRejected(FilterInvalid([problem])) from exc
    except exceptions.ParseError as exc:
        problem = Problem("", f"is not valid JSON ({exc.detail})")
        raise FilterRejected(FilterInvalid([problem])) from exc


# A delete by filter whose set is no longer the one counted (`expected`).
SET_CHANGED = "set_changed"


class LegalHoldConflict(APIException):
    status_code = 409
    default_detail = "the recording is on legal hold"
    default_code = "legal_hold"


class RecordingFilter(django_filters.FilterSet):  # type: ignore[misc]
    project = django_filters.UUIDFilter(field_name="project__code")
    started_after = django_filters.IsoDateTimeFilter("started_at", "gte")
    started_before = django_filters.IsoDateTimeFilter("started_at", "lt")
    min_duration_ms = django_filters.NumberFilter("duration_ms", "gte")
    has_errors = django_filters.BooleanFilter(method="filter_has_errors")
    has_lost_data = django_filters.BooleanFilter(
        method="filter_has_lost_data",
        label="Batches were lost: page changes refer to elements never recorded.",
    )

    class Meta:
        model = Recording
        fields = (
            "project",
            "session_id",
            "distinct_id",
            "has_full_snapshot",
            "legal_hold",
        )

    def filter_has_errors(
        self, queryset: QuerySet[Recording], name: str, value: bool
    ) -> QuerySet[Recording]:
        if value:
            return queryset.filter(console_error_count__gt=0)
        return queryset.filter(console_error_count=0)

    def filter_has_lost_data(
        self, queryset: QuerySet[Recording], name: str, value: bool
    ) -> QuerySet[Recording]:
        return cast(RecordingQuerySet, queryset).with_lost_data(value)


_WINDOW = OpenApiParameter(
    "window", str, description="One window (tab) id; all windows when absent."
)


_FILTER = OpenApiParameter(
    "filter",
    str,
    description="A filter document (docs/filter-language.md; the `RecordingFilter` "
    "schema) as JSON. The recordings it finds, in its order; combines with the "
    "other parameters.",
)
_FILTER_BODY = {"$ref": "#/components/schemas/RecordingFilter"}


@extend_schema_view(list=extend_schema(parameters=[_FILTER]))
class RecordingViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet,
):
    """Recordings of the caller's projects, newest first."""

    queryset = Recording.objects.none()  # the schema's model; get_queryset scopes
    filterset_class = RecordingFilter
    action_permissions = {
        "list": access.VIEW_RECORDINGS,
        "retrieve": access.VIEW_RECORDINGS,
        "snapshots": access.VIEW_RECORDINGS,
        "export": access.VIEW_RECORDINGS,
        "markers": access.VIEW_RECORDINGS,
        "search": access.VIEW_RECORDINGS,
        "destroy": access.DELETE_RECORDINGS,
        "delete_matching": access.DELETE_RECORDINGS,
    }
    read_only_actions = ("search",)
    # Actions whose body is a filter document (request_json).
    filter_body_actions = ("search",)
    action_errors = {
        "list": {400: ["invalid", FilterRejected.default_code]},
        "search": {400: [FilterRejected.default_code]},
        "delete_matching": {
            400: ["invalid", FilterRejected.default_code],
            409: [SET_CHANGED],
        },
        "destroy": {409: [LegalHoldConflict.default_code]},
        "snapshots": {
            410: [responses.DATA_MISSING],
            503: [responses.STORAGE_UNAVAILABLE],
        },
        "export": {410: [responses.DATA_MISSING], 503: [responses.STORAGE_UNAVAILABLE]},
    }

    def get_queryset(self) -> QuerySet[Recording]:
        # The ids, not a subquery: with `project_id IN (1, 2)` PostgreSQL walks the
        # (project, -started_at) index for the newest first; with guardian's
        # subquery it sorted every recording (docs/benchmarks/query.md).
        projects = list(
            self.readable_projects(access.VIEW_RECORDINGS).values_list("pk", flat=True)
        )
        return (
            Recording.objects.filter(project__in=projects)
            .select_related("project__privacy")
            .newest_first()
        )

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = super().filter_queryset(queryset)
        text = self.request.query_params.get("filter")
        if self.action != "list" or text is None:
            return queryset
        return self.matching(queryset, filter_document(text))

    def matching(
        self, queryset: QuerySet[Recording], document: Document
    ) -> QuerySet[Recording]:
        found = cast(RecordingQuerySet, queryset)
        return recordings_matching(found, document, user=self.request.user)

    def get_serializer_class(self) -> type[RecordingSerializer]:
        if self.action in ("list", "search"):
            return RecordingSerializer
        return RecordingDetailSerializer

    def project_of(self, obj: Recording) -> Project:
        return obj.project

    def perform_destroy(self, instance: Recording) -> None:
        try:
            recording_purge(recording=instance)
        except RecordingOnHold as exc:
            raise LegalHoldConflict(str(exc)) from exc

    @extend_schema(
        parameters=[_WINDOW],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="A JSON array of rrweb events."
            )
        },
    )
    @action(detail=True)
    def snapshots(self, request: Request, code: str) -> HttpResponse:
        """The recording's rrweb events in time order, as the player takes them."""
        recording = self.get_object()
        window = request.query_params.get("window") or None
        return responses.events_response(recording=recording, window_id=window)

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='One JSON document (docs/storage-format.md, "The '
                'export file"): `format` (`replayhub-recording`), `version` (1), '
                "`recording` (its metadata), `person`, `markers`, `comments`, "
                "`tags`, the session's analytics `events` and, per window, its "
                "rrweb events in time order (`windows`). `manage.py "
                "import_recordings` reads it back.",
            )
        },
    )
    @action(detail=True)
    def export(self, request: Request, code: str) -> HttpResponseBase:
        """A download of the whole recording: metadata, markers and every window's
        events. Exporting a recording on legal hold is noted in its project's
        privacy audit log."""
        recording = self.get_object()
        meta = RecordingExportSerializer(recording, context={"request": request}).data
        response = responses.export_response(recording=recording, meta=meta)
        if response.status_code == 200:  # not when storage answered 503 or 410
            user = request.user if isinstance(request.user, User) else None
            recordings_export_audit(
                recordings=[recording], actor=user, file_format="json", via="api"
            )
        return response

    @extend_schema(
        request={"application/json": _FILTER_BODY},
        responses=RecordingSerializer(many=True),
    )
    @action(detail=False, methods=["post"])
    def search(self, request: Request) -> Response:
        """The recordings a filter document finds, paginated, in its order: the
        same as `GET ?filter=`, with the document as the body."""
        document = filter_document(request_json(request))
        found = self.matching(self.filter_queryset(self.get_queryset()), document)
        page = self.paginate_queryset(found)
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    @extend_schema(request=PurgeRequestSerializer, responses=PurgeReportSerializer)
    @action(detail=False, methods=["post"], url_path="delete")
    def delete_matching(self, request: Request) -> Response:
        """Delete every recording a filter finds in the projects where you may
        delete, except those on legal hold; with `dry_run` (the default) only
        count them, and get the set's `fingerprint`. Pass it back as `expected`
        to delete that set or nothing (409 `set_changed`). Large sets are deleted
        in the background (`queued`), exactly the recordings found here."""
        body = PurgeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        document = filter_document(body.validated_data["filter"])
        dry_run = body.validated_data["dry_run"]
        projects = self.readable_projects(access.DELETE_RECORDINGS)
        found = recordings_purge_set(
            recordings=self.matching(
                Recording.objects.filter(project__in=projects), document
            )
        )
        report = PurgeReport.of_set(found)
        expected = body.validated_data.get("expected")
        if not dry_run and expected and expected != found.fingerprint:
            return _set_changed(report, found)
        queued = not dry_run and found.to_delete > purge_sync_max()
        if not dry_run:
            report = tasks.recordings_purge_confirmed(
                found=found,
                actor=request.user if isinstance(request.user, User) else None,
                details={
                    "filter": outline(body.validated_data["filter"]),
                    "via": "api",
                },
                background=queued,
            )
        data = {
            **report.as_dict(),
            "dry_run": dry_run,
            "queued": queued,
            "fingerprint": found.fingerprint,
        }
        return Response(PurgeReportSerializer(data).data)

    @extend_schema(responses=MarkerSerializer(many=True))
    @action(detail=True)
    def markers(self, request: Request, code: str) -> Response:
        """The recording's markers in time order: rage and dead clicks, errors,
        page changes, custom events... (recordings/ingest/signal_scan.py)."""
        recording = self.get_object()
        markers = recording.markers.in_time_order()
        return Response(MarkerSerializer(markers, many=True).data)


def only_management_endpoints(
    endpoints: list[tuple[str, str, str, Any]], **kwargs: Any
) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular hook: the schema documents /api/v1/, not the capture routes."""
    return [
        e for e in endpoints if e[0].startswith("/api/v1/") and "/ingest/" not in e[0]
    ]


def _set_changed(report: PurgeReport, found: PurgeSet) -> Response:
    detail = (
        f"the filter now finds another set ({found.to_delete} to delete, "
        f"{found.held} on legal hold): count again (dry run) and confirm that one"
    )
    data = {"error": SET_CHANGED, "detail": detail, **report.as_dict()}
    return Response({**data, "fingerprint": found.fingerprint}, status=409)


def purge_sync_max() -> int:
    """Above this many recordings, a delete by filter runs as a Celery task."""
    return int(settings.REPLAYHUB_PURGE_SYNC_MAX)


def add_filter_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: the filter document's schema, for API clients."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(openapi_components())
    return result
