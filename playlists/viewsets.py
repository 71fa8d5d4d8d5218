"""The management API of playlists and share links (/api/v1/playlists/, …).

Playlists are scoped like recordings (the projects the caller may read, narrowed
to an API key's), then to the playlists the caller sees (playlists.access): an
invisible playlist is 404. Curating and deleting ask playlists.access too.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from playlists import access as playlist_access
from playlists import services
from playlists.models import Playlist, ShareLink
from playlists.serializers import (
    NewShareLinkSerializer,
    PinReportSerializer,
    PinRequestSerializer,
    PlaylistSerializer,
    PlaylistWriteSerializer,
    ShareLinkRequestSerializer,
    ShareLinkSerializer,
)
from privacy.policy import privacy_for
from recordings import access
from recordings.curation_viewsets import RecordingNestedViewSet, invalid
from recordings.models import Project, Recording
from recordings.permissions import ProjectPermission, acting_user
from recordings.search.language import FilterInvalid, Problem
from recordings.serializers import RecordingSerializer
from recordings.viewsets import FilterRejected, ScopedViewSet

_UUID = "[0-9a-fA-F-]{32,36}"


class ShareLinksForbidden(APIException):
    status_code = 403
    default_code = "share_links_forbidden"
    default_detail = "this project's privacy settings forbid share links"


_SHARE_ERRORS = {
    400: ["invalid"],
    403: ["permission_denied", ShareLinksForbidden.default_code],
}


def checked_filter(data: Any) -> None:
    """400 `invalid_filter` (with its problems) unless `data` may be a playlist's."""
    try:
        services.playlist_document(data)
    except FilterInvalid as exc:
        raise FilterRejected(exc) from exc
    except DjangoValidationError as exc:
        problem = Problem("/where", " ".join(exc.messages))
        raise FilterRejected(FilterInvalid([problem])) from exc


def share_link_made(
    request: Request, target: Recording | Playlist, body: dict[str, Any]
) -> Response:
    """201 with the new link and its token, which is never shown again."""
    if not playlist_access.may_share(acting_user(request), target):
        raise PermissionDenied("who curates it makes its links")  # as the admin
    if not privacy_for(target.project).share_links_allowed:
        raise ShareLinksForbidden()
    try:
        link, token = services.share_link_create(
            target=target,
            user=acting_user(request),
            days=body["days"],
            max_views=body.get("max_views"),
        )
    except DjangoValidationError as exc:
        raise invalid(exc) from exc
    url = request.build_absolute_uri(reverse("playlists:share", args=[token]))
    data = {**ShareLinkSerializer(link).data, "token": token, "url": url}
    return Response(data, status=status.HTTP_201_CREATED)


class PlaylistPermission(ProjectPermission):
    """The project permission, then the playlist's own: who curates, who deletes."""

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if not super().has_object_permission(request, view, obj):
            return False
        if view.action == "destroy":
            return playlist_access.may_delete(request.user, obj)
        if view.action in view.curate_actions:
            return playlist_access.may_curate(request.user, obj)
        return True


class PlaylistViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet,
):
    """Playlists you see: yours, those shared with you, and (project admins) all."""

    queryset = Playlist.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = PlaylistSerializer
    permission_classes = [PlaylistPermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "list": access.VIEW_RECORDINGS,
        "retrieve": access.VIEW_RECORDINGS,
        "recordings": access.VIEW_RECORDINGS,
        "partial_update": access.CURATE,
        "destroy": access.CURATE,
        "pin": access.CURATE,
        "unpin": access.CURATE,
        "share": access.CURATE,
    }
    curate_actions = ("partial_update", "pin", "unpin", "share")
    action_errors = {
        "create": {
            400: ["invalid", FilterRejected.default_code],
            404: ["not_found"],
        },
        "partial_update": {400: ["invalid", FilterRejected.default_code]},
        "pin": {400: ["invalid"]},
        "share": _SHARE_ERRORS,
    }

    def get_queryset(self) -> QuerySet[Playlist]:
        projects = self.readable_projects(access.VIEW_RECORDINGS)
        visible = playlist_access.playlists_visible_to(self.request.user)
        return visible.filter(project__in=projects).select_related("project", "owner")

    def project_of(self, obj: Playlist) -> Project:
        return obj.project

    def serialized(self, playlists: list[Playlist]) -> Any:
        """The playlists with their counts, computed for all of them at once."""
        counts = services.playlists_counts(
            playlists=playlists, user=acting_user(self.request)
        )
        return PlaylistSerializer(playlists, many=True, context={"counts": counts}).data

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.serialized(list(page or [])))

    def retrieve(self, request: Request, code: str) -> Response:
        return Response(self.serialized([self.get_object()])[0])

    @extend_schema(request=PlaylistWriteSerializer, responses={201: PlaylistSerializer})
    def create(self, request: Request) -> Response:
        """A new playlist in `project`, yours; editors and admins make them."""
        body = PlaylistWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = self.readable_projects(access.VIEW_RECORDINGS).filter(
            code=data.get("project")
        )
        if "project" not in data:
            raise serializers.ValidationError({"project": ["required"]})
        if not project.exists():
            raise Http404("no such project")  # as for any project you cannot read
        if not playlist_access.may_create(request.user, project.get()):
            raise PermissionDenied("editors and admins make playlists")
        if data.get("filter") is not None:
            checked_filter(data["filter"])
        try:
            playlist = services.playlist_create(
                project=project.get(),
                owner=acting_user(request),
                name=data["name"],
                description=data.get("description", ""),
                filter=data.get("filter"),
            )
        except DjangoValidationError as exc:
            raise invalid(exc) from exc
        return Response(self.serialized([playlist])[0], status=status.HTTP_201_CREATED)

    @extend_schema(request=PlaylistWriteSerializer, responses=PlaylistSerializer)
    def partial_update(self, request: Request, code: str) -> Response:
        """Rename it, describe it, change its filter."""
        playlist = self.get_object()
        body = PlaylistWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = {k: v for k, v in body.validated_data.items() if k != "project"}
        if changes.get("filter") is not None:
            checked_filter(changes["filter"])
        try:
            services.playlist_update(playlist=playlist, **changes)
        except DjangoValidationError as exc:
            raise invalid(exc) from exc
        return Response(self.serialized([playlist])[0])

    @extend_schema(responses=RecordingSerializer(many=True))
    @action(detail=True)
    def recordings(self, request: Request, code: str) -> Response:
        """Its recordings, pinned or found, in its filter's order; opening them
        resets what counts as new for you."""
        playlist = self.get_object()
        found = services.playlist_recordings(
            playlist=playlist, user=acting_user(request)
        )
        page = self.paginate_queryset(found.select_related("project__privacy"))
        services.playlist_visit(playlist=playlist, user=acting_user(request))
        data = RecordingSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(request=PinRequestSerializer, responses=PinReportSerializer)
    @action(detail=True, methods=["post"], url_path="pins")
    def pin(self, request: Request, code: str) -> Response:
        """Pin recordings of its project (by code), with an optional note."""
        playlist = self.get_object()
        body = PinRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        codes = set(body.validated_data["recordings"])
        found = list(Recording.objects.filter(project=playlist.project, code__in=codes))
        if len(found) != len(codes):
            unknown = sorted(str(c) for c in codes - {r.code for r in found})
            raise serializers.ValidationError({"recordings": [f"unknown: {unknown}"]})
        pinned = services.playlist_pin(
            playlist=playlist,
            recordings=found,
            user=acting_user(request),
            note=body.validated_data.get("note", ""),
        )
        return Response({"pinned": pinned})

    @extend_schema(responses={204: None})
    @action(
        detail=True,
        methods=["delete"],
        url_path=f"pins/(?P<recording_code>{_UUID})",
        url_name="unpin",
    )
    def unpin(self, request: Request, code: str, recording_code: str) -> Response:
        """Unpin a recording (a filter may still find it)."""
        playlist = self.get_object()
        recording = get_object_or_404(
            Recording, project=playlist.project, code=recording_code
        )
        if not services.playlist_unpin(playlist=playlist, recording=recording):
            raise Http404("the recording is not pinned")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=ShareLinkRequestSerializer, responses={201: NewShareLinkSerializer}
    )
    @action(detail=True, methods=["post"], url_path="share-links", url_name="share")
    def share(self, request: Request, code: str) -> Response:
        """A public read-only link to the playlist; its token is answered once."""
        playlist = self.get_object()
        body = ShareLinkRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return share_link_made(request, playlist, body.validated_data)


class RecordingShareLinkViewSet(RecordingNestedViewSet):
    """Public read-only links to one recording."""

    queryset = ShareLink.objects.none()  # the schema's model
    serializer_class = NewShareLinkSerializer
    action_permissions = {"create": access.CURATE}
    action_errors = {"create": _SHARE_ERRORS}

    @extend_schema(
        request=ShareLinkRequestSerializer, responses={201: NewShareLinkSerializer}
    )
    def create(self, request: Request, recording_code: str) -> Response:
        """A public read-only link to the recording; its token is answered once."""
        recording = self.recording()
        body = ShareLinkRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return share_link_made(request, recording, body.validated_data)


class ShareLinkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Share links of the projects where you curate (never their tokens)."""

    queryset = ShareLink.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = ShareLinkSerializer
    lookup_field = "pk"
    lookup_value_regex = r"\d+"
    action_permissions = {
        "list": access.CURATE,
        "retrieve": access.CURATE,
        "revoke": access.CURATE,
    }

    def get_queryset(self) -> QuerySet[ShareLink]:
        projects = self.readable_projects(access.CURATE)
        links = ShareLink.objects.filter(project__in=projects)
        return (
            playlist_access.share_links_visible_to(self.request.user, links)
            .select_related("project__privacy", "recording", "playlist", "created_by")
            .order_by("-created")
        )

    def project_of(self, obj: ShareLink) -> Project:
        return obj.project

    @extend_schema(request=None, responses=ShareLinkSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        """Stop the link working, for good."""
        link = self.get_object()
        services.share_link_revoke(link=link)
        return Response(ShareLinkSerializer(link).data)
