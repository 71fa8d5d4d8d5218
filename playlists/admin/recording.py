"""The recording admin, with what playlists add to it.

recordings never imports playlists (an import contract), so this app extends the
recording admin and registers the extension in its place, as it lends the filter
language its `in_playlist` term (apps.py): the "Add selected recordings to
playlist…" action, previous/next in a playlist on the player page, and share links.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from playlists import access as playlist_access
from playlists import services
from playlists.admin.sharelink import links_go_along, share_link_page
from playlists.models import Playlist
from recordings import access
from recordings.admin.recording import RecordingAdmin
from recordings.models import Recording


def curatable_playlists(user: Any, projects: set[Any]) -> list[Playlist]:
    """The user's playlists in these projects they may pin to."""
    visible = playlist_access.playlists_visible_to(user).filter(project__in=projects)
    return [
        p
        for p in visible.select_related("project").order_by("project__name", "name")
        if playlist_access.may_curate(user, p)
    ]


class AddToPlaylistForm(forms.Form):
    playlist = forms.ChoiceField(required=False, label="An existing playlist")
    new_name = forms.CharField(
        required=False, max_length=200, label="Or a new playlist called"
    )

    def __init__(self, *args: Any, playlists: list[Playlist], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.playlists = {str(p.code): p for p in playlists}
        self.fields["playlist"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (code, f"{p.project} · {p.name}") for code, p in self.playlists.items()
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("playlist") and not cleaned.get("new_name", "").strip():
            raise ValidationError("Pick a playlist or name a new one.")
        return cleaned


class CuratedRecordingAdmin(RecordingAdmin):
    actions: Any = (*RecordingAdmin.actions, "add_to_playlist")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/share-link/",
                self.admin_site.admin_view(self.share_link_view),
                name="recordings_recording_share_link",
            ),
            *super().get_urls(),
        ]

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[str], list[Any]]:
        return links_go_along(super().get_deleted_objects(objs, request))

    def share_link_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recording = self._viewable(request, object_id)
        back = reverse("admin:recordings_recording_play", args=[recording.code])
        return share_link_page(request, self.admin_site, recording, back, self.opts)

    def player_extra_context(
        self, request: HttpRequest, recording: Recording
    ) -> dict[str, Any]:
        context = super().player_extra_context(request, recording)
        context["may_share"] = playlist_access.may_share(request.user, recording)
        playlist = self._playlist(request)
        if playlist is not None:
            user = request.user if isinstance(request.user, User) else None
            before, after = services.playlist_neighbours(
                playlist=playlist, recording=recording, user=user
            )
            context["playlist"] = playlist
            context["playlist_previous"] = before
            context["playlist_next"] = after
        return context

    def _playlist(self, request: HttpRequest) -> Playlist | None:
        code = request.GET.get("playlist", "")
        if not code:
            return None
        visible = playlist_access.playlists_visible_to(request.user)
        try:
            return visible.filter(code=code).first()
        except ValidationError:  # not a UUID
            return None

    @admin.action(
        description="Add selected recordings to playlist…", permissions=["curate"]
    )
    def add_to_playlist(
        self, request: HttpRequest, queryset: QuerySet[Recording]
    ) -> HttpResponse | None:
        recordings = list(queryset.select_related("project"))
        projects = {r.project for r in recordings}
        if not all(access.can(request.user, access.CURATE, p) for p in projects):
            raise PermissionDenied
        choices = curatable_playlists(request.user, projects)
        form = AddToPlaylistForm(
            request.POST if request.POST.get("apply") else None, playlists=choices
        )
        if form.is_valid():
            return self._pin(request, form, recordings, projects)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add the selected recordings to a playlist",
            "form": form,
            "recordings": recordings,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": "add_to_playlist",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/recordings/recording/add_to_playlist.html", context
        )

    def _pin(
        self,
        request: HttpRequest,
        form: AddToPlaylistForm,
        recordings: list[Recording],
        projects: set[Any],
    ) -> HttpResponse | None:
        user = request.user
        assert isinstance(user, User)
        playlist = form.playlists.get(form.cleaned_data.get("playlist") or "")
        if playlist is None:
            if len(projects) != 1:
                self.message_user(
                    request,
                    "A new playlist holds one project's recordings: select "
                    "recordings of one project.",
                    messages.ERROR,
                )
                return None
            playlist = services.playlist_create(
                project=next(iter(projects)),
                owner=user,
                name=form.cleaned_data["new_name"].strip(),
            )
        added = services.playlist_pin(
            playlist=playlist, recordings=recordings, user=user
        )
        self.message_user(
            request,
            f"Added {added} recording(s) to “{playlist}”.",
            messages.SUCCESS,
        )
        return None


admin.site.unregister(Recording)
admin.site.register(Recording, CuratedRecordingAdmin)
