"""Playlists (saved filters and pinned recordings) and share links.

A playlist belongs to a project. Who sees it: its owner, the users and groups it
is shared with (guardian object permissions on the playlist: `view_playlist`),
and the project's admins; who curates it: its owner and project editors it is
shared with (`change_playlist`). See playlists/access.py.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from recordings.models import Project, Recording, hash_api_key

SHARE_TOKEN_PREFIX = "rhs_"
# A share link's view limit at most: far beyond any real audience, well inside the
# column (PostgreSQL's integer stops at 2**31 - 1; a larger value was a 500).
MAX_SHARE_VIEWS = 1_000_000


class Playlist(models.Model):
    """Recordings worth watching together: a saved filter, pins, or both."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="playlists"
    )
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="playlists",
    )
    filter = models.JSONField(
        null=True,
        blank=True,
        help_text="A filter document (docs/filter-language.md): recordings it finds "
        "join the playlist by themselves. Empty: only the pinned recordings.",
    )
    created = models.DateTimeField(default=now, editable=False)
    updated = models.DateTimeField(default=now)

    class Meta:
        ordering = ("name",)
        indexes = [
            # A project's playlists, by name (the admin list and the API).
            models.Index(fields=("project", "name"), name="playlists_project_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class PlaylistPin(models.Model):
    """A recording pinned to a playlist by someone, with an optional note."""

    playlist = models.ForeignKey(
        Playlist, on_delete=models.CASCADE, related_name="pins"
    )
    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="pins"
    )
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    note = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("playlist", "recording"), name="playlists_pin_uniq"
            ),
        ]
        indexes = [
            # The filter language's `in_playlist` term: a recording's playlists.
            models.Index(
                fields=("recording", "playlist"), name="playlists_pin_rec_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recording_id} in {self.playlist_id}"


class PlaylistVisit(models.Model):
    """When a user last opened a playlist: what is new since is counted from it."""

    playlist = models.ForeignKey(
        Playlist, on_delete=models.CASCADE, related_name="visits"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    last_opened = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("user", "playlist"), name="playlists_visit_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} opened {self.playlist_id}"


class PlaylistUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Playlist, on_delete=models.CASCADE)


class PlaylistGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Playlist, on_delete=models.CASCADE)


# Share tokens are random as API keys are (24 bytes here): the same plain SHA-256.
hash_share_token = hash_api_key


def new_share_token() -> str:
    return SHARE_TOKEN_PREFIX + secrets.token_urlsafe(24)


class ShareLink(models.Model):
    """A read-only public link to one recording or one playlist.

    Only the token's hash is stored (as API keys are); the token is shown once.
    """

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="share_links"
    )
    recording = models.ForeignKey(
        Recording,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="share_links",
    )
    playlist = models.ForeignKey(
        Playlist,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="share_links",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(
        max_length=12, editable=False, help_text="The token's start, to recognise it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created = models.DateTimeField(default=now, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    max_views = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SHARE_VIEWS)],
        help_text="Stop working after this many views.",
    )
    view_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(recording__isnull=False, playlist__isnull=True)
                | models.Q(recording__isnull=True, playlist__isnull=False),
                name="playlists_sharelink_one_target",
            ),
        ]

    def __str__(self) -> str:
        target = "recording" if self.recording_id else "playlist"
        return f"{self.token_prefix}… ({target})"


class ShareLinkView(models.Model):
    """One view of a share link: when, and what browser (IP only if the project
    stores IP addresses)."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="views")
    viewed_at = models.DateTimeField(default=now)
    user_agent = models.CharField(max_length=512, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ("-viewed_at",)

    def __str__(self) -> str:
        return f"{self.link} viewed {self.viewed_at:%Y-%m-%d %H:%M}"
