"""Projects, the tenant, and guardian's per-project permission tables."""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.utils.timezone import now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


def new_capture_token() -> str:
    # posthog-js shows tokens with a "phc_" prefix; keeping it makes ours look familiar
    # and greppable. 32 url-safe bytes: unguessable, yet public by design (see Project).
    return "phc_" + secrets.token_urlsafe(32)


class ProjectQuerySet(models.QuerySet["Project"]):
    def for_token(self, token: str) -> ProjectQuerySet:
        """The project of a capture token, if any; none for a token no project can
        hold, without asking the database: PostgreSQL refuses a NUL in a query
        (an error, not "no such row"), and a longer token cannot match."""
        max_length = self.model._meta.get_field("token").max_length or 0
        if "\x00" in token or len(token) > max_length:
            return self.none()
        return self.filter(token=token)


class Project(models.Model):
    """A tenant: one site or app whose recordings are kept together.

    The capture token is public (it ships in web pages). It only lets a browser send
    data to this project; it never grants a read.
    """

    name = models.CharField(max_length=200)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token = models.CharField(
        max_length=64, unique=True, default=new_capture_token, editable=False
    )
    recording_enabled = models.BooleanField(
        default=True,
        help_text="When off, the SDK is told not to record and batches are refused.",
    )
    ingest_rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Batches per minute this project may send; empty for the "
        "server default (REPLAYHUB_INGEST_RATE_PER_MINUTE).",
    )
    monthly_minutes_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Recorded minutes a calendar month (UTC) may hold; at the cap the "
        "SDK is told to stop and batches are refused until the month ends or the "
        "cap is raised. Empty for no cap.",
    )
    over_cap_since = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the project reached its cap this month; empty while under.",
    )
    show_who_watched = models.BooleanField(
        default=False,
        help_text="Show everyone on the project who watched each recording. Off: "
        "each person sees only whether they watched it themselves.",
    )
    created = models.DateTimeField(default=now, editable=False)
    is_demo = models.BooleanField(
        "demo project",
        default=False,
        help_text="The project the public demo page (/demo/) records into, showing "
        "its name and capture token to anyone. At most one; superusers only.",
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        constraints = [
            # The demo page records into one project, named by this flag alone.
            models.UniqueConstraint(
                fields=["is_demo"],
                condition=models.Q(is_demo=True),
                name="recordings_project_one_demo_uniq",
                violation_error_message="Another project is the demo project already.",
            ),
        ]
        # Held per project through guardian (see recordings/access.py for the roles
        # that bundle them); change_project covers the name, switches and token.
        permissions = [
            ("view_recordings", "Can watch the project's recordings"),
            ("comment_recordings", "Can comment on the project's recordings"),
            ("curate_recordings", "Can curate playlists and tag recordings"),
            ("manage_privacy", "Can change privacy settings and recording rules"),
            ("delete_recordings", "Can delete the project's recordings"),
            ("manage_members", "Can give people roles on the project"),
        ]

    def __str__(self) -> str:
        return self.name


# guardian's direct foreign-key tables: faster than its generic ones, and deleting a
# project cascades its permissions (no orphaned rows pointing at a reused pk).
class ProjectUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)
