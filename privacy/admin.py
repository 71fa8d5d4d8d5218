"""Privacy settings in the admin, audited; the audit log itself is read-only."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from privacy import services
from privacy.models import PrivacyAuditEntry, PrivacySettings
from privacy.tasks import recordings_redact as recordings_redact_task
from recordings import access
from recordings.admin.scoped import ProjectScopedAdmin


@admin.register(PrivacySettings)
class PrivacySettingsAdmin(ProjectScopedAdmin[PrivacySettings]):
    # Anyone on the project may read what is masked; only its admins change it.
    view_codename = access.VIEW_PROJECT
    change_codename = access.MANAGE_PRIVACY
    add_codename = access.MANAGE_PRIVACY
    delete_codename = None
    list_display = (
        "project",
        "mask_all_inputs",
        "mask_all_text",
        "sample_rate",
        "updated",
    )
    list_select_related = ("project",)
    readonly_fields = ("updated",)
    fieldsets = (
        (None, {"fields": ("project",)}),
        (
            "Masking",
            {
                "fields": (
                    "mask_all_inputs",
                    "mask_all_text",
                    "mask_selectors",
                    "block_selectors",
                    "unmask_selectors",
                    "scrub_card_numbers",
                    "scrub_patterns",
                )
            },
        ),
        (
            "Capture",
            {
                "fields": (
                    "record_cross_origin_iframes",
                    "console_log_capture",
                    "network_timing_capture",
                    "network_record_headers",
                    "network_record_body",
                    "store_ip_addresses",
                    "respect_do_not_track",
                )
            },
        ),
        (
            "Recording rules",
            {
                "fields": (
                    "sample_rate",
                    "minimum_duration_ms",
                    "linked_flag",
                    "url_triggers",
                    "url_blocklist",
                    "excluded_people",
                )
            },
        ),
        ("Retention", {"fields": ("retention_days",)}),
        (None, {"fields": ("updated",)}),
    )

    def get_readonly_fields(
        self, request: HttpRequest, obj: PrivacySettings | None = None
    ) -> Any:
        # A project's settings stay its own: the project is fixed once created.
        return (*self.readonly_fields, "project") if obj else self.readonly_fields

    def save_model(
        self,
        request: HttpRequest,
        obj: PrivacySettings,
        form: ModelForm[Any],
        change: bool,
    ) -> None:
        before = {name: form.initial.get(name) for name in services.audited_fields()}
        if not change:
            before = {name: None for name in before}
        services.privacy_settings_update(
            settings=obj, actor=request.user, before=before
        )

    actions = ("apply_rules_to_stored_recordings",)

    @admin.action(
        description="Apply current rules to stored recordings", permissions=["change"]
    )
    def apply_rules_to_stored_recordings(
        self, request: HttpRequest, queryset: QuerySet[PrivacySettings]
    ) -> None:
        # Only projects whose settings this user may change, whatever was ticked.
        allowed = [s for s in queryset if self.has_change_permission(request, s)]
        actor_id = request.user.pk if request.user.is_authenticated else None
        for settings in allowed:
            transaction.on_commit(
                functools.partial(
                    recordings_redact_task.delay, settings.project_id, actor_id
                )
            )
        self.message_user(
            request,
            f"Applying the current rules to the stored recordings of "
            f"{len(allowed)} project(s) in the background; the privacy audit log "
            "records what changed when it is done.",
        )


@admin.register(PrivacyAuditEntry)
class PrivacyAuditEntryAdmin(ProjectScopedAdmin[PrivacyAuditEntry]):
    view_codename = access.MANAGE_PRIVACY
    delete_codename = None  # an audit trail nobody can edit away
    list_display = ("created", "project", "actor_name", "changed_")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("project",)
    ordering = ("-created",)
    readonly_fields = ("project", "actor", "actor_name", "changes", "created")

    @admin.display(description="changed")
    def changed_(self, obj: PrivacyAuditEntry) -> str:
        return ", ".join(
            f"{name}: {old!r} → {new!r}" for name, (old, new) in obj.changes.items()
        )
