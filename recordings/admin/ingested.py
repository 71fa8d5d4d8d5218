"""Rows capture writes, for looking things up: events, session ledgers, people.

Nobody adds or edits them by hand; people with the delete permission on the project
may delete them.
"""

from __future__ import annotations

from django.contrib import admin
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
        "has_full_snapshot",
        "recording_",
    )
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        "has_full_snapshot",
        "last_refusal",
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
