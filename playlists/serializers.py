"""Shapes of the playlists and share links API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from playlists.models import MAX_SHARE_VIEWS, Playlist, ShareLink
from playlists.services import DEFAULT_SHARE_DAYS, share_link_state
from recordings.models import Project


class PlaylistSerializer(serializers.ModelSerializer[Playlist]):
    """A playlist; `count` and `new` (since you last opened it) come from the view,
    computed for the whole page at once."""

    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    count = serializers.SerializerMethodField(help_text="Recordings it holds.")
    new = serializers.SerializerMethodField(
        help_text="Recordings added or found since you last opened it."
    )

    class Meta:
        model = Playlist
        fields = (
            "code",
            "project",
            "name",
            "description",
            "owner",
            "filter",
            "created",
            "updated",
            "count",
            "new",
        )

    def get_count(self, obj: Playlist) -> int | None:
        counts = self.context.get("counts", {}).get(obj.pk)
        return counts.total if counts else None

    def get_new(self, obj: Playlist) -> int | None:
        counts = self.context.get("counts", {}).get(obj.pk)
        return counts.new if counts else None


class PlaylistWriteSerializer(serializers.Serializer[Any]):
    """A new playlist (`project` required) or changes to one (`project` ignored)."""

    project = serializers.UUIDField(required=False, help_text="The project's code.")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    filter = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="A filter document (the `RecordingFilter` schema); null: pins only.",
    )


class PinRequestSerializer(serializers.Serializer[Any]):
    recordings = serializers.ListField(
        child=serializers.UUIDField(), min_length=1, max_length=1000
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class PinReportSerializer(serializers.Serializer[Any]):
    pinned = serializers.IntegerField(help_text="Recordings newly pinned.")


class ShareLinkRequestSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(
        min_value=1,
        default=DEFAULT_SHARE_DAYS,
        help_text="How long it works; at most the project's share link limit.",
    )
    max_views = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SHARE_VIEWS,
        required=False,
        allow_null=True,
        help_text="null: no limit.",
    )


class ShareLinkSerializer(serializers.ModelSerializer[ShareLink]):
    """A share link, never its token (only its hash is kept)."""

    recording = serializers.SlugRelatedField(  # type: ignore[var-annotated]
        slug_field="code", read_only=True
    )
    playlist = serializers.SlugRelatedField(  # type: ignore[var-annotated]
        slug_field="code", read_only=True
    )
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    state = serializers.SerializerMethodField(
        help_text='"ok", or why it no longer opens: revoked, expired, used up, '
        '"forbidden by the project", "creator lost access" (a playlist whose filter '
        'says "me", once its creator can no longer see it)'
    )

    class Meta:
        model = ShareLink
        fields = (
            "id",
            "token_prefix",
            "recording",
            "playlist",
            "created_by",
            "created",
            "expires_at",
            "revoked_at",
            "max_views",
            "view_count",
            "state",
        )

    def get_state(self, obj: ShareLink) -> str:
        return share_link_state(obj)


class NewShareLinkSerializer(ShareLinkSerializer):
    """A link just made: with its token and address, shown this once."""

    token = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True, help_text="The public page.")

    class Meta(ShareLinkSerializer.Meta):
        fields = (*ShareLinkSerializer.Meta.fields, "token", "url")  # type: ignore[assignment]
