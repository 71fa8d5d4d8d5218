"""What posthog-js sends besides recordings: analytics events and persons."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from recordings.models.project import Project


class Event(models.Model):
    """An analytics event posthog-js sent to /e/ (pageviews, clicks, exceptions...).

    Kept for timeline markers and filtering; linked to a recording by session id
    rather than a foreign key, because events often arrive before the first snapshot.
    """

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="events"
    )
    uuid = models.CharField(max_length=100)
    name = models.CharField(max_length=400)
    distinct_id = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict)
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("project", "uuid"), name="recordings_event_project_uuid_uniq"
            ),
        ]
        indexes = [
            # Timeline markers: a recording's events in time order.
            models.Index(
                fields=("project", "session_id", "timestamp"),
                name="recordings_event_session_idx",
            ),
            # Retention: a project's events received before its period began.
            models.Index(
                fields=("project", "created"), name="recordings_event_expiry_idx"
            ),
            # The filter language's event terms: the sessions that did <name>
            # (counted, or followed by another event of a name within N s).
            models.Index(
                fields=("project", "name", "session_id", "timestamp"),
                name="recordings_event_name_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class Person(models.Model):
    """Someone a project's SDK identified: distinct id and person properties."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="people"
    )
    distinct_id = models.CharField(max_length=200)
    properties = models.JSONField(default=dict)
    anon_distinct_ids = models.JSONField(
        default=list, help_text="Anonymous ids this person had before identify()."
    )
    created = models.DateTimeField(default=now, editable=False)
    updated = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint(
                fields=("project", "distinct_id"),
                name="recordings_person_project_distinct_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.distinct_id
