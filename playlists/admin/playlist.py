"""Playlists in the admin: the list with counts, the form, and the playlist's page.

Who sees, curates and deletes a playlist is `playlists.access`'s to say; the admin
only asks it. A viewer gets the read-only page of the playlists shared with them.
"""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import (
    display_for_field,
    display_for_value,
    label_for_field,
    lookup_field,
)
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField, ModelForm
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.timezone import now
from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

from playlists import access as playlist_access
from playlists import services
from playlists.admin.sharelink import links_go_along, share_link_page
from playlists.models import Playlist
from recordings import access
from recordings.models import (
    Project,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
    Recording,
)
from recordings.search.language import (
    FilterInvalid,
    decode_json_document,
    parse_document,
)
from recordings.search.moments import first_moments

# The playlist's page lists this many of its recordings.
PAGE_RECORDINGS = 100
SHARE_FIELDS = (
    "share_view_users",
    "share_edit_users",
    "share_view_groups",
    "share_edit_groups",
)


def _members(user: Any) -> QuerySet[User]:
    """People holding a role on a project `user` may curate in: whom to share with."""
    projects = access.projects_for(user, access.CURATE)
    rows = ProjectUserObjectPermission.objects.filter(
        content_object__in=projects, permission__codename=access.VIEW_RECORDINGS
    )
    return User.objects.filter(pk__in=rows.values("user"), is_active=True)


def _groups(user: Any) -> QuerySet[Group]:
    projects = access.projects_for(user, access.CURATE)
    rows = ProjectGroupObjectPermission.objects.filter(
        content_object__in=projects, permission__codename=access.VIEW_RECORDINGS
    )
    return Group.objects.filter(pk__in=rows.values("group"))


class FilterField(forms.JSONField):
    """The filter's JSON text, read as the recording list reads `?filter=`.

    Django's JSONField recurses once per level to read and to show the text again
    (990 `[` were a 500), and shows it unescaped, which a lone surrogate written
    as `\\ud800` cannot be in a page: here the text is read within the filter
    language's bounds, and shown escaped when it must be.
    """

    def to_python(self, value: Any) -> Any:
        if self.disabled or not isinstance(value, str) or not value.strip():
            return super().to_python(value)
        try:
            return decode_json_document(value)
        except FilterInvalid as exc:
            raise ValidationError(problem_lines(exc)) from exc

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            return decode_json_document(data)
        except FilterInvalid:
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        if isinstance(value, InvalidJSONInput) or text.isascii():
            return text
        try:
            text.encode()
        except UnicodeEncodeError:  # a lone surrogate: shown as its escape
            return json.dumps(value, cls=self.encoder)
        return text


def problem_lines(invalid: FilterInvalid) -> list[str]:
    return [f"{p.pointer or '/'}: {p.message}" for p in invalid.problems]


class PlaylistForm(ModelForm[Playlist]):
    share_view_users = forms.ModelMultipleChoiceField(
        User.objects.none(), required=False, label="Shared with (to watch)"
    )
    share_edit_users = forms.ModelMultipleChoiceField(
        User.objects.none(),
        required=False,
        label="Shared with (to curate)",
        help_text="Editors of the project among them may rename, pin and share.",
    )
    share_view_groups = forms.ModelMultipleChoiceField(
        Group.objects.none(), required=False, label="Groups (to watch)"
    )
    share_edit_groups = forms.ModelMultipleChoiceField(
        Group.objects.none(), required=False, label="Groups (to curate)"
    )

    class Meta:
        model = Playlist
        fields = ("name", "description", "project", "filter")
        field_classes = {"filter": FilterField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.update(_share_initial(self.instance))

    def clean_filter(self) -> Any:
        data = self.cleaned_data.get("filter")
        if data in (None, "", {}):
            return None
        try:
            services.playlist_document(data)
        except FilterInvalid as exc:
            raise ValidationError(problem_lines(exc)) from exc
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        project = cleaned.get("project") or getattr(self.instance, "project", None)
        if project is None:
            return cleaned
        for name in ("share_view_users", "share_edit_users"):
            for user in cleaned.get(name) or ():
                if not access.can(user, access.VIEW_RECORDINGS, project):
                    self.add_error(name, f"{user} has no role on {project}.")
        return cleaned


class PlaylistChangeList(ChangeList):
    """The list, with every shown playlist's counts from one call for the page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        playlists = list(self.result_list)
        assert isinstance(request.user, User)
        counts = services.playlists_counts(playlists=playlists, user=request.user)
        for playlist in playlists:
            playlist.counts = counts.get(playlist.pk)


@admin.register(Playlist)
class PlaylistAdmin(admin.ModelAdmin[Playlist]):
    form = PlaylistForm
    list_display = ("name", "project", "owner", "recordings_", "new_", "updated")
    list_select_related = ("project", "owner")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "description")
    ordering = ("-updated",)
    change_form_template = "admin/playlists/playlist/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "description", "project", "filter")}),
        ("Sharing", {"fields": SHARE_FIELDS}),
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PlaylistChangeList

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/share-link/",
                self.admin_site.admin_view(self.share_link_view),
                name="playlists_playlist_share_link",
            ),
            *super().get_urls(),
        ]

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[str], list[Any]]:
        return links_go_along(super().get_deleted_objects(objs, request))

    def share_link_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        playlist = self.get_object(request, object_id)
        if playlist is None:
            raise Http404("no such playlist")
        back = reverse("admin:playlists_playlist_change", args=[playlist.pk])
        return share_link_page(request, self.admin_site, playlist, back, self.opts)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Playlist]:
        if request.user.is_superuser:
            return super().get_queryset(request)
        visible = playlist_access.playlists_visible_to(request.user)
        return super().get_queryset(request).filter(pk__in=visible.values("pk"))

    # --- permissions: playlists.access decides ---------------------------------------

    def _creator(self, request: HttpRequest) -> bool:
        user = request.user
        if not user.is_active:
            return False
        return user.is_superuser or access.projects_for(user, access.CURATE).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(
        self, request: HttpRequest, obj: Playlist | None = None
    ) -> bool:
        user = request.user
        if not user.is_active:
            return False
        if obj is None:
            return (
                user.is_superuser
                or access.projects_for(user, access.VIEW_RECORDINGS).exists()
            )
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._creator(request)

    def has_change_permission(
        self, request: HttpRequest, obj: Playlist | None = None
    ) -> bool:
        if obj is None:
            return self._creator(request)
        return request.user.is_superuser or playlist_access.may_curate(
            request.user, obj
        )

    def has_delete_permission(
        self, request: HttpRequest, obj: Playlist | None = None
    ) -> bool:
        if obj is None:
            return self._creator(request)
        return request.user.is_superuser or playlist_access.may_delete(
            request.user, obj
        )

    # --- the form ------------------------------------------------------------------

    def get_readonly_fields(
        self, request: HttpRequest, obj: Playlist | None = None
    ) -> Any:
        # Pins belong to the project's recordings: a playlist stays in its project.
        return ("project",) if obj is not None else ()

    def get_fieldsets(self, request: HttpRequest, obj: Playlist | None = None) -> Any:
        if obj is not None and not self.has_change_permission(request, obj):
            return ((None, {"fields": ("name", "description", "project", "filter")}),)
        return self.fieldsets

    def get_form(
        self,
        request: HttpRequest,
        obj: Playlist | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        users, groups = _members(request.user), _groups(request.user)
        if request.user.is_superuser:
            users, groups = User.objects.filter(is_active=True), Group.objects.all()
        for name in SHARE_FIELDS:
            if name in form.base_fields:
                field = form.base_fields[name]
                field.queryset = users if "users" in name else groups  # type: ignore[attr-defined]
        return form

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        raw = request.GET.get("filter")
        if raw:  # "Save as playlist" on the recording list
            try:
                initial["filter"] = decode_json_document(raw)
            except FilterInvalid:
                initial.pop("filter", None)
        return initial

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.related_model is Project and not request.user.is_superuser:
            kwargs["queryset"] = access.projects_for(request.user, access.CURATE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: Playlist, form: Any, change: bool
    ) -> None:
        assert isinstance(request.user, User)
        if not change:
            created = services.playlist_create(
                project=obj.project,
                owner=request.user,
                name=obj.name,
                description=obj.description,
                filter=obj.filter,
            )
            obj.pk, obj.code = created.pk, created.code
            return
        obj.updated = now()
        obj.save()

    def save_related(
        self, request: HttpRequest, form: Any, formsets: Any, change: bool
    ) -> None:
        playlist: Playlist = form.instance
        cleaned = form.cleaned_data
        for kind in ("users", "groups"):
            view = set(cleaned.get(f"share_view_{kind}") or ())
            edit = set(cleaned.get(f"share_edit_{kind}") or ())
            _share(playlist, view, edit, kind)

    # --- the list ------------------------------------------------------------------

    @admin.display(description="recordings")
    def recordings_(self, obj: Playlist) -> int | str:
        counts = getattr(obj, "counts", None)
        return "—" if counts is None else counts.total

    @admin.display(description="new since I last opened")
    def new_(self, obj: Playlist) -> int | str:
        counts = getattr(obj, "counts", None)
        return "—" if counts is None else counts.new

    # --- the playlist's page -------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        playlist = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if playlist is not None and self.has_view_permission(request, playlist):
            context.update(self._page_context(request, playlist))
            if request.method == "GET" and isinstance(request.user, User):
                services.playlist_visit(playlist=playlist, user=request.user)
        return super().change_view(request, object_id, form_url, context)

    def _page_context(self, request: HttpRequest, playlist: Playlist) -> dict[str, Any]:
        user = request.user if isinstance(request.user, User) else None
        recordings = services.playlist_recordings(playlist=playlist, user=user)
        shown = list(recordings.select_related("project")[: PAGE_RECORDINGS + 1])
        # A playlist of a filter opens each recording where the filter matched.
        document = parse_document(playlist.filter) if playlist.filter else None
        moments = first_moments(document, shown[:PAGE_RECORDINGS])
        recording_admin = self.admin_site._registry[Recording]
        names = [
            n
            for n in recording_admin.list_display
            if isinstance(n, str) and n != "project"
        ]
        return {
            "playlist_columns": [
                label_for_field(n, Recording, recording_admin) for n in names
            ],
            "playlist_rows": [
                _row(recording, names, recording_admin, playlist, moments)
                for recording in shown[:PAGE_RECORDINGS]
            ],
            "playlist_cut": len(shown) > PAGE_RECORDINGS,
            "playlist_may_share": playlist_access.may_share(request.user, playlist),
        }


def _row(
    recording: Recording,
    names: list[str],
    model_admin: Any,
    playlist: Playlist,
    moments: dict[int, int],
) -> dict[str, Any]:
    cells = []
    for name in names:
        field, attr, value = lookup_field(name, recording, model_admin)
        if field is not None:
            cells.append(display_for_field(value, field, "—"))
        else:
            boolean = getattr(attr, "boolean", False)
            cells.append(display_for_value(value, "—", boolean))
    url = reverse("admin:recordings_recording_play", args=[recording.code])
    query = {"playlist": str(playlist.code)}
    if recording.pk in moments:
        query["t"] = str(moments[recording.pk] // 1000)
    link = format_html('<a href="{}?{}">▶</a>', url, urlencode(query))
    return {"link": link, "cells": cells}


def _share_initial(playlist: Playlist) -> dict[str, list[Any]]:
    """Who the playlist is shared with, as the form's initial values."""
    users = cast(
        dict[User, list[str]],
        get_users_with_perms(playlist, attach_perms=True, with_group_users=False),
    )
    groups = cast(
        dict[Group, list[str]], get_groups_with_perms(playlist, attach_perms=True)
    )
    initial: dict[str, list[Any]] = {name: [] for name in SHARE_FIELDS}
    for user, perms in users.items():
        how = "edit" if "change_playlist" in perms else "view"
        initial[f"share_{how}_users"].append(user.pk)
    for group, perms in groups.items():
        how = "edit" if "change_playlist" in perms else "view"
        initial[f"share_{how}_groups"].append(group.pk)
    return initial


def _share(playlist: Playlist, view: set[Any], edit: set[Any], kind: str) -> None:
    if kind == "users":
        before = get_users_with_perms(playlist, with_group_users=False)
    else:
        before = get_groups_with_perms(playlist)
    for principal in set(before) - view - edit:
        playlist_access.playlist_unshare(playlist=playlist, principal=principal)
    for principal in view - edit:
        playlist_access.playlist_share(playlist=playlist, principal=principal)
    for principal in edit:
        playlist_access.playlist_share(
            playlist=playlist, principal=principal, can_edit=True
        )
