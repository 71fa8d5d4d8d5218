"""Output shapes of the management API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from recordings import access
from recordings.models import Comment, Marker, Project, Recording, Tag
from recordings.models.curation import COMMENT_MAX
from recordings.models.recording import SIGNAL_COLUMNS


class ProjectSerializer(serializers.ModelSerializer[Project]):
    recording_count = serializers.IntegerField(read_only=True)
    role = serializers.SerializerMethodField(
        help_text="The caller's own role on the project (superusers: null)."
    )

    class Meta:
        model = Project
        fields = (
            "code",
            "name",
            "token",
            "recording_enabled",
            "created",
            "recording_count",
            "role",
        )

    def get_role(self, obj: Project) -> str | None:
        role = access.role_of(self.context["request"].user, obj)
        return role.value if role else None


# What happened in the recording (recordings/ingest/signal_scan.py): every signal,
# the counted columns first, then those kept otherwise (a property, cleaned URLs, the
# environment and where from).
SIGNAL_FIELDS = (
    *SIGNAL_COLUMNS,
    "inactive_ms",
    "slowest_request_url",
    "last_url",
    "urls",
    "browser",
    "browser_version",
    "os",
    "device_type",
    "viewport_width",
    "viewport_height",
    "country",
    "signals_at",
)


class RecordingSerializer(serializers.ModelSerializer[Recording]):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    problems = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Why it may not play well; empty when it plays.",
    )
    player_url = serializers.SerializerMethodField()
    inactive_ms = serializers.IntegerField(
        read_only=True, help_text="Duration without user input."
    )
    expires_at = serializers.SerializerMethodField(
        help_text="When retention deletes it; null while on legal hold."
    )

    class Meta:
        model = Recording
        fields = (
            "code",
            "project",
            "session_id",
            "distinct_id",
            "started_at",
            "ended_at",
            "duration_ms",
            "click_count",
            "keypress_count",
            "console_error_count",
            "first_url",
            "has_full_snapshot",
            "event_count",
            "size_bytes",
            "lib",
            "lib_version",
            "compacted",
            "lost_changes",
            "legal_hold",
            "expires_at",
            "problems",
            "player_url",
            *SIGNAL_FIELDS,
        )

    def get_expires_at(self, obj: Recording) -> dt.datetime | None:
        return obj.expires_at()

    def get_player_url(self, obj: Recording) -> str:
        url = reverse("admin:recordings_recording_play", args=[obj.code])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def to_representation(self, instance: Recording) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["problems"] = instance.problems()
        return data


class RecordingExportSerializer(RecordingSerializer):
    """The `recording` of an export document: every column a re-import restores."""

    class Meta(RecordingSerializer.Meta):
        fields = (
            *RecordingSerializer.Meta.fields,
            "max_gap_ms",
            "window_checks",
            "checked_gap_ms",
            "largest_event_bytes",
            "last_batch_at",
            "user_agent",
            "feature_flags",
            "created",
        )  # type: ignore[assignment]


class RecordingDetailSerializer(RecordingSerializer):
    windows = serializers.SerializerMethodField(
        help_text="Window (tab) ids, in the order they started."
    )

    class Meta(RecordingSerializer.Meta):
        fields = (*RecordingSerializer.Meta.fields, "windows")  # type: ignore[assignment]

    def get_windows(self, obj: Recording) -> list[str]:
        return obj.window_ids()


class MarkerSerializer(serializers.ModelSerializer[Marker]):
    class Meta:
        model = Marker
        fields = ("kind", "timestamp", "offset_ms", "window_id", "label", "details")


class PurgeRequestSerializer(serializers.Serializer[Any]):
    """A delete by filter: the filter document and whether only to count."""

    filter = serializers.JSONField(
        help_text="A filter document (the `RecordingFilter` schema)."
    )
    dry_run = serializers.BooleanField(
        default=True,
        help_text="Only count (the default); false deletes.",
    )
    expected = serializers.CharField(
        required=False,
        max_length=80,
        help_text="The `fingerprint` of the set a dry run counted: the delete "
        "removes that set, or nothing (409 `set_changed`) if the filter now finds "
        "another.",
    )


class PurgeReportSerializer(serializers.Serializer[Any]):
    """What a delete by filter found and did."""

    matched = serializers.IntegerField(help_text="Recordings the filter found.")
    deleted = serializers.IntegerField(help_text="Recordings deleted now.")
    held = serializers.IntegerField(help_text="Kept: on legal hold.")
    failed = serializers.IntegerField(
        help_text="Not deleted: storage failed; they are still there."
    )
    gone = serializers.IntegerField(
        help_text="Found, but deleted by someone else before this delete got to them."
    )
    dry_run = serializers.BooleanField()
    queued = serializers.BooleanField(
        help_text="Too many to delete in the request: a background task deletes "
        "exactly the recordings counted here."
    )
    fingerprint = serializers.CharField(
        help_text="Names the set counted: pass it as `expected` to delete it."
    )


class CommentSerializer(serializers.ModelSerializer[Comment]):
    """A comment at a moment of a recording: `offset_ms` from its start."""

    recording: serializers.SlugRelatedField[Recording] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Comment
        fields = (
            "id",
            "recording",
            "author",
            "text",
            "offset_ms",
            "window_id",
            "created",
            "edited",
        )
        read_only_fields = ("id", "created", "edited")


class CommentEditSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(max_length=COMMENT_MAX)


class TagSerializer(serializers.ModelSerializer[Tag]):
    class Meta:
        model = Tag
        fields = ("name", "colour", "created")


class TagRequestSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=50)
