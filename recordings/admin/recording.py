"""Recordings in the admin: the triage list, the player and its data."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, cast

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from recordings import access, tasks
from recordings.admin import curation, export
from recordings.admin.finding import (
    FilteredChangeList,
    Finding,
    event_names,
    event_property_keys,
    filter_ui_data,
    finding_for,
    legacy_redirect,
    ordering_for,
    project_shares,
    query_string,
    recording_choices,
)
from recordings.admin.scoped import ProjectScopedAdmin
from recordings.admin.tag import tag_chip
from recordings.models import Marker, Project, Recording
from recordings.models.recording import RecordingQuerySet
from recordings.playback import offline, responses, timeline
from recordings.playback.transfer import recordings_export_audit
from recordings.search.language.outline import outline
from recordings.services.purge import PurgeReport, PurgeSet, recordings_purge_set
from recordings.services.storage import recording_purge, recordings_hold

# The player's page runs only ReplayHub's own script files. The replay iframe inherits
# this policy, so a recorded page's inline handlers, `javascript:` URLs and scripts
# never run, even where canvas replay makes rrweb give that iframe `allow-scripts`.
PLAYER_CSP = "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
# The list and its deletion page show values from recorded data (event names,
# browsers, the filter pasted into the URL) to a filter script: the same policy.
LIST_CSP = PLAYER_CSP
# The list's sidebar filter by project (admin.RelatedOnlyFieldListFilter's parameter).
PROJECT_VAR = "project__id__exact"


def _timeline(recording: Recording) -> dict[str, Any]:
    """The player's timeline document, with a compacted window's segments."""
    snapshots = reverse("admin:recordings_recording_snapshots", args=[recording.code])

    def segment_url(window_id: str) -> str:
        return f"{snapshots}?{urlencode({'window': window_id})}"

    windows = responses.segments_timeline(recording=recording, events_url=snapshots)
    return timeline.recording_timeline(
        recording=recording,
        segment_url=segment_url,
        segments={w["window_id"]: w["segments"] for w in windows},
    )


def _accepts_gzip(request: HttpRequest) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


# The player page lists this many markers at most (a recording can hold thousands).
PAGE_MARKERS = 500


def _markers_context(recording: Recording, windows: list[str]) -> dict[str, Any]:
    """The player page's list of markers: when, what, which window (its number)."""
    labels = dict(Marker.Kind.choices)
    found = list(
        recording.markers.in_time_order().values_list(
            "offset_ms", "kind", "label", "window_id"
        )[: PAGE_MARKERS + 1]
    )
    numbers = {window_id: index for index, window_id in enumerate(windows, 1)}
    rows = [
        {
            "ms": offset_ms,
            "seconds": offset_ms // 1000,
            "at": _minutes_seconds(offset_ms),
            "kind": kind,
            "kind_label": labels.get(kind, kind),
            "label": label,
            "window": numbers.get(window_id, ""),
        }
        for offset_ms, kind, label, window_id in found[:PAGE_MARKERS]
    ]
    return {"markers": rows, "markers_cut": len(found) > PAGE_MARKERS}


def _minutes_seconds(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def _problems_message(finding: Finding) -> str:
    count = len(finding.problems)
    # One line: the admin's message list styles every <li> as a message of its own.
    return format_html(
        "The filter was not applied, so no recordings are shown: it has {} "
        "problem{}: {}.",
        count,
        "" if count == 1 else "s",
        format_html_join(
            "; ",
            "<code>{}</code> {}",
            ((p.pointer or "/", p.message) for p in finding.problems),
        ),
    )


class RecordingChangeList(FilteredChangeList):
    def url_for_result(self, result: Model) -> str:
        # Rows open the player; recordings are addressed by their public code.
        assert isinstance(result, Recording)
        url = reverse("admin:recordings_recording_play", args=[result.code])
        moment = self.moments.get(result.pk)
        return url if moment is None else f"{url}?t={moment // 1000}"

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        listed = cast(RecordingQuerySet, queryset).for_list()
        return curation.list_annotate(listed, request)


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
        "tags_",
        "seen_",
        "project",
    )
    # Everything else is found with the filter language (`?filter=`, finding.py):
    # its quick filters took the place of the yes/no list filters.
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    actions: Any = (
        "tag_selected",
        "export_selected",
        "place_legal_hold",
        "lift_legal_hold",
    )
    list_select_related = ("project",)
    search_fields = ("session_id", "distinct_id", "first_url")
    ordering = ("-started_at",)
    change_form_template = "admin/recordings/recording/change_form.html"
    readonly_fields = [f.name for f in Recording._meta.fields if f.name != "id"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RecordingChangeList

    def get_ordering(self, request: HttpRequest) -> Any:
        # The filter document's order, unless a column header overrides it.
        ordering = ordering_for(finding_for(request))
        return super().get_ordering(request) if ordering is None else ordering

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
                # It says itself how long its answers keep (segments may be kept).
                view(self.snapshots_view, cacheable=True),
                name="recordings_recording_snapshots",
            ),
            path(
                "<path:object_id>/timeline/",
                view(self.timeline_view),
                name="recordings_recording_timeline",
            ),
            path(
                "<path:object_id>/offline/",
                view(self.offline_view),
                name="recordings_recording_offline",
            ),
            path(
                "<path:object_id>/comments/",
                view(self.comments_view),
                name="recordings_recording_comments",
            ),
            path(
                "<path:object_id>/tags/",
                view(self.tags_view),
                name="recordings_recording_tags",
            ),
            path(
                "delete-matching/",
                view(self.delete_matching_view),
                name="recordings_recording_delete_matching",
            ),
            path(
                "event-names/",
                view(self.event_names_view),
                name="recordings_recording_event_names",
            ),
            *super().get_urls(),
        ]

    def _visible_projects(self, request: HttpRequest) -> QuerySet[Project] | None:
        """Projects whose recordings the user sees; None for every project."""
        if request.user.is_superuser:
            return None
        return self.projects(request, self.view_codename)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        moved = legacy_redirect(request)
        if moved is not None:
            return HttpResponseRedirect(moved)
        finding = finding_for(request)
        if finding.problems:
            messages.error(request, _problems_message(finding))
        choices = recording_choices(
            self.get_queryset(request), self._visible_projects(request)
        )
        context = {
            "finding": finding,
            "filter_ui": filter_ui_data(finding, choices),
            "save_as_playlist_url": self._save_as_playlist_url(request, finding),
            "delete_matching_url": (
                reverse("admin:recordings_recording_delete_matching")
                + query_string(request)
                if finding.given and self.has_delete_permission(request)
                else ""
            ),
            **(extra_context or {}),
        }
        response = super().changelist_view(request, context)
        response["Content-Security-Policy"] = LIST_CSP
        return response

    def _save_as_playlist_url(self, request: HttpRequest, finding: Finding) -> str:
        # The playlists app's add form (by URL name: recordings never imports it).
        if not finding.given or finding.problems:
            return ""
        if not self._allowed(request, access.CURATE, None):
            return ""
        add = reverse("admin:playlists_playlist_add")
        return f"{add}?{urlencode({'filter': finding.raw})}"

    def event_names_view(self, request: HttpRequest) -> HttpResponse:
        """The event names the user's projects have seen (for the filter builder);
        with `?name=`, property keys recent events of that name carried."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        projects = self._visible_projects(request)
        name = request.GET.get("name")
        if name:
            return JsonResponse({"keys": event_property_keys(projects, name)})
        return JsonResponse({"names": event_names(projects)})

    def _picked_project(
        self, request: HttpRequest, projects: QuerySet[Project]
    ) -> QuerySet[Project]:
        """Narrowed to the project the list's sidebar filter picked, if any."""
        chosen = request.GET.get(PROJECT_VAR)
        if chosen is None:
            return projects
        return projects.filter(pk=int(chosen)) if chosen.isdigit() else projects.none()

    def delete_matching_view(self, request: HttpRequest) -> HttpResponse:
        """Delete every recording the list's filter matches, after a confirmation
        page counting what goes and what legal holds keep.

        The set is the filter document's in the projects where the user may
        delete (and the one the sidebar picked), as `POST /api/v1/recordings/
        delete/` finds it, with the user ("viewed by me"). The page carries the
        set's fingerprint; a confirmation deletes exactly that set (a large one in
        the background, by id) or, when the filter now finds another, shows the
        new counts instead. The search box is not part of a filter: with a search
        the page refuses rather than delete more than the list showed.
        """
        if not self.has_delete_permission(request):
            raise PermissionDenied
        finding = finding_for(request)
        projects = self._picked_project(
            request, self.projects(request, access.DELETE_RECORDINGS)
        )
        recordings = finding.apply(
            Recording.objects.filter(project__in=projects), request.user
        )
        found = recordings_purge_set(recordings=recordings)
        back = reverse("admin:recordings_recording_changelist") + query_string(request)
        searching = bool(request.GET.get(SEARCH_VAR))
        changed = False
        if request.method == "POST" and not finding.problems and not searching:
            changed = request.POST.get("fingerprint") != found.fingerprint
            if not changed:
                self._purge(request, finding, found)
                return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Delete the recordings matching this filter",
            "finding": finding,
            "searching": searching,
            "report": PurgeReport.of_set(found),
            "to_delete": found.to_delete,
            "fingerprint": found.fingerprint,
            "changed": changed,
            "view_only": self._view_only(request, finding) - found.matched,
            "shares": project_shares(recordings),
            "back": back,
        }
        response = TemplateResponse(
            request, "admin/recordings/recording/delete_matching.html", context
        )
        response["Content-Security-Policy"] = LIST_CSP
        return response

    def _view_only(self, request: HttpRequest, finding: Finding) -> int:
        """How many recordings the filter finds in the list (every visible project)."""
        listed = self.get_queryset(request).filter(
            project__in=self._picked_project(request, Project.objects.all())
        )
        return finding.apply(listed, request.user).count()

    def _purge(self, request: HttpRequest, finding: Finding, found: PurgeSet) -> None:
        # Above this many, the API deletes in the background too (settings).
        background = found.to_delete > settings.REPLAYHUB_PURGE_SYNC_MAX
        report = tasks.recordings_purge_confirmed(
            found=found,
            actor=request.user if isinstance(request.user, User) else None,
            details={
                "filter": outline(finding.data) if finding.given else None,
                "via": "admin",
            },
            background=background,
        )
        if background:
            self.message_user(
                request,
                f"Deleting {found.to_delete} recording(s) matching the filter in "
                f"the background; {found.held} on legal hold are kept.",
                messages.SUCCESS,
            )
        else:
            self._report_purge(request, report)

    def _report_purge(self, request: HttpRequest, report: PurgeReport) -> None:
        level = messages.WARNING if report.failed else messages.SUCCESS
        text = f"Deleted {report.deleted} recording(s) matching the filter"
        if report.held:
            text += f"; kept {report.held} on legal hold"
        if report.failed:
            text += f"; {report.failed} could not be deleted (try again)"
        if report.gone:
            text += f"; {report.gone} had been deleted meanwhile"
        self.message_user(request, text + ".", level)

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

    @admin.display(description="tags")
    def tags_(self, obj: Recording) -> str:
        # The list's prefetch (curation.list_annotate): no query per row.
        return format_html_join(
            " ", "{}", ((tag_chip(t.tag),) for t in obj.taggings.all())
        )

    @admin.display(description="seen", boolean=False)
    def seen_(self, obj: Recording) -> str:
        # Only the user's own views: others' are the player page's, if the project
        # shows who watched.
        return "✓" if getattr(obj, "seen", False) else ""

    def has_curate_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, access.CURATE, None)

    @admin.action(description="Tag selected recordings…", permissions=["curate"])
    def tag_selected(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> HttpResponse | None:
        return curation.tag_selected(self, request, queryset)

    @admin.action(description="Export selected recordings…", permissions=["view"])
    def export_selected(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> HttpResponseBase | None:
        return export.export_selected(self, request, queryset)

    def comments_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return curation.comments_post(request, self._viewable(request, object_id))

    def tags_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return curation.tags_post(request, self._viewable(request, object_id))

    def player_extra_context(
        self, request: HttpRequest, recording: Recording
    ) -> dict[str, Any]:
        """More for the player page; the playlists app adds its part (prev/next,
        share links), as recordings never import it."""
        return {}

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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Recording {recording.session_id}",
            "recording": recording,
            # In the page, not fetched after it: the first segment's request
            # starts as the page is parsed (its <link rel=preload>).
            "timeline": _timeline(recording),
            "active": dt.timedelta(seconds=recording.active_ms // 1000),
            **_markers_context(recording, windows),
            **curation.player_context(request, recording),
            **self.player_extra_context(request, recording),
        }
        context["markers"] = sorted(
            [*context["markers"], *curation.comment_markers(recording)],
            key=lambda row: row["ms"],
        )
        response = TemplateResponse(
            request, "admin/recordings/recording/player.html", context
        )
        response["Content-Security-Policy"] = PLAYER_CSP
        return response

    def timeline_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The player's timeline document (recordings/playback/timeline.py)."""
        return JsonResponse(_timeline(self._viewable(request, object_id)))

    def offline_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """The recording as one HTML file that plays from disk (offline.py); an
        export, audited as one when the recording is on legal hold."""
        recording = self._viewable(request, object_id)
        response = offline.offline_response(recording)
        if response.status_code == 200:  # not when storage answered 503
            recordings_export_audit(
                recordings=[recording],
                actor=request.user if isinstance(request.user, User) else None,
                file_format="html",
                via="admin",
            )
        return response

    def snapshots_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        started = time.perf_counter()
        recording = self._viewable(request, object_id)
        if "segment" in request.GET:
            response = self._segment(request, recording)
        else:
            response = responses.events_response(
                recording=recording,
                window_id=request.GET.get("window") or None,
                as_stored=_accepts_gzip(request),
            )
            add_never_cache_headers(response)  # as admin_view does for other pages
        # The view's own time, for the browser's Resource Timing
        # (bench/playback/player.py).
        elapsed = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = f"view;dur={elapsed:.1f}"
        return response

    def _segment(self, request: HttpRequest, recording: Recording) -> HttpResponse:
        """`?window=<id>&segment=<n>[&v=<version>]`: one segment of a window
        (responses.segments_timeline lists them)."""
        window_id = request.GET.get("window")
        number = request.GET["segment"]
        if window_id is None or not number.isdigit() or len(number) > 6:
            return JsonResponse(
                {"error": "invalid_segment", "detail": "give window and segment"},
                status=400,
            )
        return responses.segment_response(
            recording=recording,
            window_id=window_id,
            number=int(number),
            as_stored=_accepts_gzip(request),
            version=request.GET.get("v"),
            if_none_match=request.headers.get("If-None-Match", ""),
        )

    def delete_model(self, request: HttpRequest, obj: Recording) -> None:
        recording_purge(recording=obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> None:
        # The bulk action already refused when any selected row is not deletable;
        # checking each again keeps that promise here too, for any other caller.
        for recording in queryset:
            if not self.has_delete_permission(request, recording):
                raise PermissionDenied
            recording_purge(recording=recording)

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
        changed = recordings_hold(recordings=recordings, hold=hold, actor=actor)
        verb = "placed on" if hold else "lifted from"
        self.message_user(
            request, f"Legal hold {verb} {changed} recording(s).", messages.SUCCESS
        )
