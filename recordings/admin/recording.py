"""Recordings in the admin: the triage list, the player and its data."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from recordings import playback, services
from recordings.admin.scoped import ProjectScopedAdmin
from recordings.models import Recording, RecordingQuerySet

# The player's page runs only ReplayHub's own script files. The replay iframe inherits
# this policy, so a recorded page's inline handlers, `javascript:` URLs and scripts
# never run, even where canvas replay makes rrweb give that iframe `allow-scripts`.
PLAYER_CSP = "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"


def _accepts_gzip(request: HttpRequest) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


class LostDataFilter(admin.SimpleListFilter):
    title = "lost data"
    parameter_name = "lost"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Batches lost"), ("no", "Nothing lost")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            recordings = cast(RecordingQuerySet, queryset)
            return recordings.with_lost_data(self.value() == "yes")
        return queryset


class HasConsoleErrorsFilter(admin.SimpleListFilter):
    title = "console errors"
    parameter_name = "errors"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "With errors"), ("no", "Without errors")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(console_error_count__gt=0)
        if self.value() == "no":
            return queryset.filter(console_error_count=0)
        return queryset


# The player page lists this many markers at most (a recording can hold thousands).
PAGE_MARKERS = 500


def _markers_context(recording: Recording, windows: list[str]) -> dict[str, Any]:
    """The player page's list of markers: when, what, which window (its number)."""
    found = list(recording.markers.in_time_order()[: PAGE_MARKERS + 1])
    numbers = {window_id: index for index, window_id in enumerate(windows, 1)}
    rows = [
        {
            "at": _minutes_seconds(marker.offset_ms),
            "kind": marker.kind,
            "kind_label": marker.get_kind_display(),
            "label": marker.label,
            "window": numbers.get(marker.window_id, ""),
        }
        for marker in found[:PAGE_MARKERS]
    ]
    return {"markers": rows, "markers_cut": len(found) > PAGE_MARKERS}


def _minutes_seconds(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


class SignalFilter(admin.SimpleListFilter):
    """Recordings with (or without) at least one of a signal."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", f"With {self.title}"), ("no", f"Without {self.title}")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(**{f"{self.field}__gt": 0})
        if self.value() == "no":
            return queryset.filter(**{self.field: 0})
        return queryset


class HasRageClicksFilter(SignalFilter):
    title = "rage clicks"
    parameter_name = "rage"
    field = "rage_click_count"


class HasDeadClicksFilter(SignalFilter):
    title = "dead clicks"
    parameter_name = "dead"
    field = "dead_click_count"


class HasErrorClicksFilter(SignalFilter):
    title = "error clicks"
    parameter_name = "error_clicks"
    field = "error_click_count"


class HasNetworkErrorsFilter(SignalFilter):
    title = "network 5xx"
    parameter_name = "net5xx"
    field = "network_5xx_count"


class RecordingChangeList(ChangeList):
    def url_for_result(self, result: Model) -> str:
        # Rows open the player; recordings are addressed by their public code.
        assert isinstance(result, Recording)
        return reverse("admin:recordings_recording_play", args=[result.code])


@admin.register(Recording)
class RecordingAdmin(ProjectScopedAdmin[Recording]):
    list_display = (
        "started_at",
        "playable_",
        "duration_",
        "click_count",
        "errors_",
        "rage_click_count",
        "dead_click_count",
        "active_",
        "browser_",
        "first_url_",
        "distinct_id",
        "project",
    )
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        HasConsoleErrorsFilter,
        HasRageClicksFilter,
        HasDeadClicksFilter,
        HasErrorClicksFilter,
        HasNetworkErrorsFilter,
        "browser",
        "device_type",
        "has_full_snapshot",
        LostDataFilter,
        "legal_hold",
    )
    actions = ("place_legal_hold", "lift_legal_hold")
    list_select_related = ("project",)
    search_fields = ("session_id", "distinct_id", "first_url")
    ordering = ("-started_at",)
    date_hierarchy = "started_at"
    change_form_template = "admin/recordings/recording/change_form.html"
    readonly_fields = [f.name for f in Recording._meta.fields if f.name != "id"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RecordingChangeList

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Recording | None:
        try:
            code = uuid.UUID(object_id)
        except ValueError:
            return None
        return self.get_queryset(request).filter(code=code).first()

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/play/",
                view(self.player_view),
                name="recordings_recording_play",
            ),
            path(
                "<path:object_id>/snapshots/",
                view(self.snapshots_view),
                name="recordings_recording_snapshots",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="plays")
    def playable_(self, obj: Recording) -> str:
        problems = obj.problems()
        if not problems:
            return format_html('<span title="{}">✓</span>', "plays well")
        return format_html(
            '<span class="replayhub-problem" title="{}">⚠ {}</span>',
            "; ".join(problems),
            problems[0].split(":")[0],
        )

    @admin.display(description="duration", ordering="duration_ms")
    def duration_(self, obj: Recording) -> str:
        seconds = obj.duration_ms // 1000
        return f"{seconds // 60}:{seconds % 60:02d}"

    @admin.display(description="errors", ordering="console_error_count")
    def errors_(self, obj: Recording) -> int:
        return obj.console_error_count

    @admin.display(description="active", ordering="active_ms")
    def active_(self, obj: Recording) -> str:
        return _minutes_seconds(obj.active_ms)

    @admin.display(description="browser", ordering="browser")
    def browser_(self, obj: Recording) -> str:
        return " ".join(filter(None, (obj.browser, obj.device_type))) or "—"

    @admin.display(description="first URL", ordering="first_url")
    def first_url_(self, obj: Recording) -> str:
        return obj.first_url if len(obj.first_url) <= 80 else obj.first_url[:79] + "…"

    def _viewable(self, request: HttpRequest, object_id: str) -> Recording:
        recording = self.get_object(request, object_id)
        if recording is None:
            raise Http404("no such recording")
        if not self.has_view_permission(request, recording):
            raise PermissionDenied
        return recording

    def player_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recording = self._viewable(request, object_id)
        windows = recording.window_ids()
        window = request.GET.get("window") or (windows[0] if windows else "")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Recording {recording.session_id}",
            "recording": recording,
            "windows": windows,
            "window": window,
            "events_url": reverse(
                "admin:recordings_recording_snapshots", args=[recording.code]
            ),
            "active": dt.timedelta(seconds=recording.active_ms // 1000),
            **_markers_context(recording, windows),
        }
        response = TemplateResponse(
            request, "admin/recordings/recording/player.html", context
        )
        response["Content-Security-Policy"] = PLAYER_CSP
        return response

    def snapshots_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recording = self._viewable(request, object_id)
        return playback.events_response(
            recording=recording,
            window_id=request.GET.get("window") or None,
            as_stored=_accepts_gzip(request),
        )

    def delete_model(self, request: HttpRequest, obj: Recording) -> None:
        services.recording_purge(recording=obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> None:
        # The bulk action already refused when any selected row is not deletable;
        # checking each again keeps that promise here too, for any other caller.
        for recording in queryset:
            if not self.has_delete_permission(request, recording):
                raise PermissionDenied
            services.recording_purge(recording=recording)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[str], list[Any]]:
        # Recordings on legal hold are "protected": the confirmation page names
        # them and refuses, as Django does for a protected foreign key.
        deleted, counts, perms, protected = super().get_deleted_objects(objs, request)
        held = [f"{r} (on legal hold)" for r in objs if r.legal_hold]
        return deleted, counts, perms, [*protected, *held]

    @admin.action(
        description="Place selected recordings on legal hold", permissions=["delete"]
    )
    def place_legal_hold(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> None:
        self._hold(request, queryset, hold=True)

    @admin.action(
        description="Lift the legal hold of selected recordings",
        permissions=["delete"],
    )
    def lift_legal_hold(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> None:
        self._hold(request, queryset, hold=False)

    def _hold(
        self, request: HttpRequest, queryset: QuerySet[Recording], *, hold: bool
    ) -> None:
        # Holds belong to whoever may delete: each selected row's project decides.
        recordings = list(queryset.select_related("project"))
        if not all(self.has_delete_permission(request, r) for r in recordings):
            raise PermissionDenied
        actor = request.user if isinstance(request.user, User) else None
        changed = services.recordings_hold(
            recordings=recordings, hold=hold, actor=actor
        )
        verb = "placed on" if hold else "lifted from"
        self.message_user(
            request, f"Legal hold {verb} {changed} recording(s).", messages.SUCCESS
        )
