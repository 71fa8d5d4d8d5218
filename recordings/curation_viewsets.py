"""The management API of what people add to recordings: comments and tags.

Routes hang under the recording they are about (/recordings/{code}/comments/,
/recordings/{code}/tags/); the recording comes from the projects the caller may
read, so another project's is 404, and the action's permission is asked of its
project as everywhere (`ScopedViewSet.action_permissions`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from recordings import access
from recordings.models import Comment, Project, Recording, Tag
from recordings.permissions import acting_user
from recordings.serializers import (
    CommentEditSerializer,
    CommentSerializer,
    TagRequestSerializer,
    TagSerializer,
)
from recordings.services.curation import (
    comment_create,
    comment_edit,
    recording_untag,
    recordings_tag,
    tag_get_or_create,
)
from recordings.viewsets import ScopedViewSet

UUID_PATTERN = "[0-9a-fA-F-]{32,36}"
_NESTED_ERRORS = {404: ["not_found"]}


def invalid(exc: DjangoValidationError) -> serializers.ValidationError:
    """A model's full_clean refusal as the API's 400 (`invalid`, per field)."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    return serializers.ValidationError(detail)


class RecordingNestedViewSet(ScopedViewSet):
    """Under /recordings/{recording_code}/: the recording, scoped and checked."""

    def recording(self) -> Recording:
        projects = self.readable_projects(access.VIEW_RECORDINGS)
        recording = get_object_or_404(
            Recording.objects.filter(project__in=projects).select_related("project"),
            code=self.kwargs["recording_code"],
        )
        self.check_object_permissions(self.request, recording)
        return recording

    def project_of(self, obj: Recording) -> Project:
        return obj.project


class RecordingCommentViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, RecordingNestedViewSet
):
    """A recording's comments in time order; viewers may comment."""

    queryset = Comment.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = CommentSerializer
    action_permissions = {"list": access.VIEW_RECORDINGS, "create": access.COMMENT}
    action_errors = {"list": _NESTED_ERRORS, "create": {400: ["invalid"]}}

    def get_queryset(self) -> QuerySet[Comment]:
        if getattr(self, "swagger_fake_view", False):
            return Comment.objects.none()
        recording = self.recording()
        return recording.comments.select_related("author", "recording")

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        try:
            serializer.instance = comment_create(
                recording=self.recording(),
                author=acting_user(self.request),
                text=data["text"],
                offset_ms=data["offset_ms"],
                window_id=data.get("window_id", ""),
            )
        except DjangoValidationError as exc:
            raise invalid(exc) from exc


class CommentViewSet(
    mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ScopedViewSet
):
    """One comment: its author edits it; its author or a project admin deletes it."""

    queryset = Comment.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = CommentSerializer
    lookup_field = "pk"
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "patch", "delete", "head", "options"]
    action_permissions = {
        "retrieve": access.VIEW_RECORDINGS,
        "partial_update": access.COMMENT,
        "destroy": access.COMMENT,
    }
    action_errors = {"partial_update": {400: ["invalid"]}}

    def get_queryset(self) -> QuerySet[Comment]:
        projects = self.readable_projects(access.VIEW_RECORDINGS)
        return Comment.objects.filter(recording__project__in=projects).select_related(
            "author", "recording__project"
        )

    def project_of(self, obj: Comment) -> Project:
        return obj.recording.project

    @extend_schema(request=CommentEditSerializer, responses=CommentSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change the text of your own comment."""
        comment = self.get_object()
        if comment.author_id != request.user.pk:
            raise PermissionDenied("only its author edits a comment")
        body = CommentEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            comment_edit(comment=comment, text=body.validated_data["text"])
        except DjangoValidationError as exc:
            raise invalid(exc) from exc
        return Response(CommentSerializer(comment).data)

    def perform_destroy(self, instance: Comment) -> None:
        user = self.request.user
        project = instance.recording.project
        if instance.author_id != user.pk and not access.can(
            user, access.CHANGE_PROJECT, project
        ):
            raise PermissionDenied("only its author or a project admin deletes it")
        instance.delete()


class ProjectTagViewSet(mixins.ListModelMixin, ScopedViewSet):
    """A project's tag vocabulary, by name."""

    queryset = Tag.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = TagSerializer
    action_permissions = {"list": access.VIEW_RECORDINGS}
    action_errors = {"list": _NESTED_ERRORS}

    def get_queryset(self) -> QuerySet[Tag]:
        if getattr(self, "swagger_fake_view", False):
            return Tag.objects.none()
        project = get_object_or_404(
            self.readable_projects(access.VIEW_RECORDINGS),
            code=self.kwargs["project_code"],
        )
        self.check_object_permissions(self.request, project)
        return project.tags.all()

    def project_of(self, obj: Project) -> Project:
        return obj


class RecordingTagViewSet(mixins.ListModelMixin, RecordingNestedViewSet):
    """A recording's tags; editors put them on and take them off."""

    queryset = Tag.objects.none()  # the schema's model; get_queryset scopes
    serializer_class = TagSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    action_permissions = {
        "list": access.VIEW_RECORDINGS,
        "create": access.CURATE,
        "destroy": access.CURATE,
    }
    action_errors = {"list": _NESTED_ERRORS, "create": {400: ["invalid"]}}

    def get_queryset(self) -> QuerySet[Tag]:
        if getattr(self, "swagger_fake_view", False):
            return Tag.objects.none()
        return Tag.objects.filter(taggings__recording=self.recording())

    @extend_schema(request=TagRequestSerializer, responses={201: TagSerializer})
    def create(self, request: Request, recording_code: str) -> Response:
        """Tag the recording (the project's tag of that name, made when new)."""
        recording = self.recording()
        body = TagRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            tag = tag_get_or_create(
                project=recording.project, name=body.validated_data["name"]
            )
        except DjangoValidationError as exc:
            raise invalid(exc) from exc
        recordings_tag(recordings=[recording], tag=tag, user=acting_user(request))
        return Response(TagSerializer(tag).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, recording_code: str, name: str) -> Response:
        """Take the tag off the recording (the tag stays in the vocabulary)."""
        recording = self.recording()
        tag = get_object_or_404(
            Tag.objects.filter(project=recording.project), name__iexact=name
        )
        if not recording_untag(recording=recording, tag=tag):
            raise Http404("the recording does not have this tag")
        return Response(status=status.HTTP_204_NO_CONTENT)
