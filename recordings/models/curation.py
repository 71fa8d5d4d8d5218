"""What people add to recordings: tags, comments at a moment, and who watched."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.timezone import now

from recordings.models.project import Project
from recordings.models.recording import Recording

COMMENT_MAX = 5000


class Tag(models.Model):
    """A word of a project's tag vocabulary ("checkout", "bug", "needs design")."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)
    colour = models.CharField(
        max_length=7,
        default="#6b7280",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour like #1f9d55.")],
    )
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=("project", "name"), name="recordings_tag_project_name_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RecordingTag(models.Model):
    """A tag on a recording, with who put it there and when."""

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="taggings"
    )
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="taggings")
    tagged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("recording", "tag"), name="recordings_tagging_uniq"
            ),
        ]
        indexes = [
            # The filter language's `tag` term: recordings with a tag.
            models.Index(
                fields=("tag", "recording"), name="recordings_tagging_tag_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag} on {self.recording_id}"


class Comment(models.Model):
    """A note at a moment of a recording, shown as a marker on its timeline."""

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recording_comments",
    )
    text = models.TextField(max_length=COMMENT_MAX)
    offset_ms = models.PositiveBigIntegerField(
        help_text="Milliseconds from the recording's start."
    )
    window_id = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=now, editable=False)
    edited = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("offset_ms", "created")
        indexes = [
            # The player's timeline and the recording page: comments in time order.
            models.Index(
                fields=("recording", "offset_ms"), name="recordings_comment_idx"
            ),
            # The filter language's `commented` term by author ("by me").
            models.Index(
                fields=("author", "recording"), name="recordings_comment_author_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.text[:40]} @ {self.offset_ms} ms"


class RecordingView(models.Model):
    """That a user opened a recording's player: first and last time, how often."""

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="views"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="recording_views",
    )
    first_viewed = models.DateTimeField(default=now)
    last_viewed = models.DateTimeField(default=now)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                # Also the filter language's "viewed by me": a user's viewed recordings.
                fields=("user", "recording"),
                name="recordings_view_user_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} viewed {self.recording_id}"
