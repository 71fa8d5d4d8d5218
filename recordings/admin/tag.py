"""A project's tag vocabulary: everyone on it reads it, editors manage it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from recordings import access
from recordings.admin.scoped import ProjectScopedAdmin
from recordings.models import Tag


def tag_chip(tag: Tag) -> str:
    """A tag as a small coloured label (the list, the player, the playlists)."""
    return format_html(
        '<span class="replayhub-tag" style="background:{}">{}</span>',
        tag.colour,
        tag.name,
    )


@admin.register(Tag)
class TagAdmin(ProjectScopedAdmin[Tag]):
    list_display = ("chip_", "name", "colour", "project", "recordings_")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("project",)
    search_fields = ("name",)
    fields = ("project", "name", "colour")
    view_codename = access.VIEW_RECORDINGS
    change_codename = access.CURATE
    delete_codename = access.CURATE
    add_codename = access.CURATE

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(recordings_n=Count("taggings"))

    def get_readonly_fields(self, request: HttpRequest, obj: Tag | None = None) -> Any:
        # A tag stays in its project: its recordings are that project's.
        return ("project",) if obj is not None else ()

    @admin.display(description="tag")
    def chip_(self, obj: Tag) -> str:
        return tag_chip(obj)

    @admin.display(description="recordings", ordering="recordings_n")
    def recordings_(self, obj: Tag) -> int:
        return getattr(obj, "recordings_n", 0)
