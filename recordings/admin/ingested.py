"""Rows capture writes, for looking things up: events, session ledgers, people.

Nobody adds or edits them by hand; people with the delete permission on the project
may delete them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from recordings.admin.scoped import ProjectScopedAdmin
from recordings.models import Event, Person, Recording, SessionLedger


@admin.register(Event)
class EventAdmin(ProjectScopedAdmin[Event]):
    list_display = ("timestamp", "name", "distinct_id", "session_id", "project")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter), "name")
    list_select_related = ("project",)
    search_fields = ("name", "distinct_id", "session_id")
    ordering = ("-timestamp",)
    show_full_result_count = False


class DroppedUnknownEventsFilter(admin.SimpleListFilter):
    """Sessions whose SDK sent events ReplayHub does not know: time to upgrade."""

    title = "unknown events dropped"
    parameter_name = "dropped"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[SessionLedger]
    ) -> QuerySet[SessionLedger]:
        if self.value() == "yes":
            return queryset.exclude(events_dropped={})
        if self.value() == "no":
            return queryset.filter(events_dropped={})
        return queryset


@admin.register(SessionLedger)
class SessionLedgerAdmin(ProjectScopedAdmin[SessionLedger]):
    """ "Why is this recording missing?": look a session or person up, data or not."""

    list_display = (
        "last_seen",
        "session_id",
        "distinct_id",
        "verdict_",
        "batches_accepted",
        "batches_duplicate",
        "batches_refused",
        "last_refusal",
        "dropped_",
        "lib_version",
        "has_full_snapshot",
        "recording_",
    )
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        "has_full_snapshot",
        "last_refusal",
        DroppedUnknownEventsFilter,
    )
    list_select_related = ("project",)
    search_fields = ("=session_id", "=distinct_id")
    search_help_text = "Exact session id or distinct id."
    ordering = ("-last_seen",)
    show_full_result_count = False
    readonly_fields = [f.name for f in SessionLedger._meta.fields if f.name != "id"]

    @admin.display(description="what happened")
    def verdict_(self, obj: SessionLedger) -> str:
        return obj.verdict()

    @admin.display(description="unknown events dropped")
    def dropped_(self, obj: SessionLedger) -> str:
        counts = sorted(obj.events_dropped.items())
        return ", ".join(f"{kind} \u00d7{count}" for kind, count in counts) or "-"

    @admin.display(description="recording")
    def recording_(self, obj: SessionLedger) -> str:
        recording = Recording.objects.filter(
            project_id=obj.project_id, session_id=obj.session_id
        ).first()
        if recording is None:
            return "none"
        return format_html('<a href="{}">play</a>', recording.player_url())


@admin.register(Person)
class PersonAdmin(ProjectScopedAdmin[Person]):
    list_display = ("distinct_id", "project", "updated")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("project",)
    search_fields = ("=distinct_id",)
    ordering = ("-updated",)
    readonly_fields = [f.name for f in Person._meta.fields if f.name != "id"]
