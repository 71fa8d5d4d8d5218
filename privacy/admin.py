"""Privacy settings in the admin, audited; the audit log itself is read-only."""

from __future__ import annotations

import functools
from typing import Any

from django import forms
from django.conf import settings as django_settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from privacy import erasure, exclusion, services
from privacy.models import ErasureRequest, PrivacyAuditEntry, PrivacySettings
from privacy.tasks import erasure_start
from privacy.tasks import recordings_redact as recordings_redact_task
from recordings import access
from recordings import tasks as recording_tasks
from recordings.admin.scoped import ProjectScopedAdmin
from recordings.services.purge import PurgeSet, recordings_purge_set


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
    readonly_fields = ("updated", "recorded_before_")
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
                    "recorded_before_",
                )
            },
        ),
        ("Retention", {"fields": ("retention_days",)}),
        ("Share links", {"fields": ("share_links_allowed", "share_link_max_days")}),
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

    @admin.display(description="recorded before")
    def recorded_before_(self, obj: PrivacySettings | None) -> str:
        # Rules apply to what comes next; deleting the past is this page's choice.
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("admin:privacy_privacysettings_delete_excluded", args=[obj.pk])
        return format_html(
            "Recording rules apply to what comes next. "
            '<a href="{}">Delete the recordings of people these rules exclude…</a>',
            url,
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/delete-excluded/",
                self.admin_site.admin_view(self.delete_excluded_view),
                name="privacy_privacysettings_delete_excluded",
            ),
            *super().get_urls(),
        ]

    def delete_excluded_view(
        self, request: HttpRequest, object_id: str
    ) -> HttpResponse:
        """Count the recordings of people the rules exclude (legal holds kept),
        and delete exactly those once confirmed; audited."""
        privacy = self._deleting_for(request, object_id)
        recordings = exclusion.excluded_recordings(privacy.project)
        found = recordings_purge_set(recordings=recordings)
        back = reverse("admin:privacy_privacysettings_change", args=[privacy.pk])
        changed = False
        if request.method == "POST":
            changed = request.POST.get("fingerprint") != found.fingerprint
            if not changed:
                self._delete_excluded(request, privacy, found)
                return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Delete the recordings of people these rules exclude",
            "privacy": privacy,
            "found": found,
            "changed": changed,
            "back": back,
        }
        return TemplateResponse(
            request, "admin/privacy/privacysettings/delete_excluded.html", context
        )

    def _deleting_for(self, request: HttpRequest, object_id: str) -> PrivacySettings:
        """The settings, if the user may change them and delete the project's
        recordings."""
        privacy = self.get_object(request, object_id)
        if privacy is None:
            raise Http404("no such privacy settings")
        if not self.has_change_permission(request, privacy) or not access.can(
            request.user, access.DELETE_RECORDINGS, privacy.project
        ):
            raise PermissionDenied
        return privacy

    def _delete_excluded(
        self,
        request: HttpRequest,
        privacy: PrivacySettings,
        found: PurgeSet,
    ) -> None:
        background = found.to_delete > django_settings.REPLAYHUB_PURGE_SYNC_MAX
        report = recording_tasks.recordings_purge_confirmed(
            found=found,
            actor=request.user if isinstance(request.user, User) else None,
            details={"rules": privacy.excluded_people, "via": "admin"},
            action=exclusion.ACTION,
            background=background,
        )
        if background:
            text = f"Deleting {found.to_delete} recording(s) in the background"
        else:
            text = f"Deleted {report.deleted} recording(s)"
        self.message_user(
            request,
            f"{text} of people the rules exclude; {found.held} on legal hold kept.",
            messages.SUCCESS,
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


class ErasureRequestForm(forms.ModelForm[ErasureRequest]):
    distinct_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One distinct id a line. Their person's anonymous ids are found "
        "and erased too.",
    )
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Only count what would be deleted. Untick to erase for good.",
    )

    class Meta:
        model = ErasureRequest
        fields = ("project",)

    def clean_distinct_ids(self) -> list[str]:
        ids = erasure.clean_distinct_ids(self.cleaned_data["distinct_ids"])
        if not ids:
            raise forms.ValidationError("Name at least one distinct id.")
        return ids


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ProjectScopedAdmin[ErasureRequest]):
    """GDPR erasure: a dry run first, then the real thing; receipts stay."""

    view_codename = access.DELETE_RECORDINGS
    add_codename = access.DELETE_RECORDINGS
    change_codename = None  # a receipt is not edited
    delete_codename = None  # nor deleted
    list_display = ("created", "project", "status", "subjects", "receipt_", "by_")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter), "status")
    list_select_related = ("project",)
    readonly_fields = (
        "project",
        "status",
        "subjects",
        "receipt",
        "requested_by_name",
        "created",
        "completed",
    )
    fields = readonly_fields

    def get_form(
        self,
        request: HttpRequest,
        obj: ErasureRequest | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm[ErasureRequest]]:
        if obj is None:  # the add form: what to erase, not the receipt
            kwargs["form"] = ErasureRequestForm
            kwargs["fields"] = ("project", "distinct_ids", "dry_run")
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(
        self, request: HttpRequest, obj: ErasureRequest | None = None
    ) -> Any:
        return ("project", "distinct_ids", "dry_run") if obj is None else self.fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: ErasureRequest | None = None
    ) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(
        self,
        request: HttpRequest,
        obj: ErasureRequest,
        form: ModelForm[Any],
        change: bool,
    ) -> None:
        actor = request.user if isinstance(request.user, User) else None
        created = erasure.erasure_request(
            project=obj.project,
            distinct_ids=form.cleaned_data["distinct_ids"],
            actor=actor,
            dry_run=form.cleaned_data["dry_run"],
        )
        if created.status == ErasureRequest.Status.PENDING:
            transaction.on_commit(functools.partial(erasure_start, created.pk))
        obj.pk = created.pk
        obj.refresh_from_db()

    @admin.display(description="receipt")
    def receipt_(self, obj: ErasureRequest) -> str:
        if not obj.receipt:
            return "—"
        counts = ", ".join(f"{name}: {value}" for name, value in obj.receipt.items())
        return f"would delete {counts}" if obj.status == obj.Status.DRY_RUN else counts

    @admin.display(description="requested by")
    def by_(self, obj: ErasureRequest) -> str:
        return obj.requested_by_name or "—"
