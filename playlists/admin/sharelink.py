"""Share links in the admin: who made which, their state and views, revoking.

Links are made from the player's and the playlist's pages (`share_link_page`), by
those who may curate the project; the token shows once, on the page that made it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from playlists import access as playlist_access
from playlists import services
from playlists.models import MAX_SHARE_VIEWS, Playlist, ShareLink
from privacy.policy import privacy_for
from recordings import access
from recordings.admin.scoped import ProjectScopedAdmin
from recordings.models import Recording

# Served by the public share view (another app's urls); built here by its path.
PUBLIC_PATH = "/share/{token}/"


class ShareLinkForm(forms.Form):
    days = forms.IntegerField(min_value=1, initial=services.DEFAULT_SHARE_DAYS)
    max_views = forms.IntegerField(
        min_value=1,
        max_value=MAX_SHARE_VIEWS,
        required=False,
        help_text="Empty: as many as it gets.",
    )


def links_go_along(
    deleted: tuple[list[Any], dict[Any, Any], set[str], list[Any]],
) -> tuple[list[Any], dict[Any, Any], set[str], list[Any]]:
    """`get_deleted_objects`, with a target's share links going along with it.

    Nobody deletes a share link by itself (revoking keeps its view log), so the
    admin would otherwise refuse to delete any recording or playlist that has one.
    """
    objs, counts, perms, protected = deleted
    return objs, counts, perms - {str(ShareLink._meta.verbose_name)}, protected


def share_link_page(
    request: HttpRequest,
    site: AdminSite,
    target: Recording | Playlist,
    back: str,
    opts: Any,
) -> HttpResponse:
    """The small form that makes a share link, and the link once, after it."""
    if not playlist_access.may_share(request.user, target):
        raise PermissionDenied  # as the API answers (playlists.access)
    form = ShareLinkForm(request.POST or None)
    url = ""
    if request.method == "POST" and form.is_valid():
        assert isinstance(request.user, User)
        try:
            _, token = services.share_link_create(
                target=target,
                user=request.user,
                days=form.cleaned_data["days"],
                max_views=form.cleaned_data["max_views"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            url = request.build_absolute_uri(PUBLIC_PATH.format(token=token))
            form = ShareLinkForm()
    context = {
        **site.each_context(request),
        "opts": opts,
        "title": f"Share {target}",
        "target": target,
        "form": form,
        "url": url,
        "back": back,
        "max_days": privacy_for(target.project).share_link_max_days,
    }
    return TemplateResponse(request, "admin/playlists/sharelink/create.html", context)


@admin.register(ShareLink)
class ShareLinkAdmin(ProjectScopedAdmin[ShareLink]):
    list_display = (
        "__str__",
        "target_",
        "project",
        "created_by",
        "created",
        "expires_at",
        "state_",
        "view_count",
    )
    # project__privacy: each row's state asks whether the project allows links.
    list_select_related = (
        "project__privacy",
        "recording",
        "playlist",
        "created_by",
    )
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    actions = ("revoke_selected",)
    ordering = ("-created",)
    fields = (
        "token_prefix",
        "project",
        "target_",
        "created_by",
        "created",
        "expires_at",
        "max_views",
        "view_count",
        "revoked_at",
        "state_",
        "views_",
    )
    readonly_fields = fields
    view_codename = access.VIEW_RECORDINGS
    change_codename = None  # read-only; revoking is the one change
    add_codename = None  # made from the player's and the playlist's pages
    delete_codename = None  # revoked, never deleted: the view log stays

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShareLink]:
        links = super().get_queryset(request)
        if request.user.is_superuser:
            return links
        # Links to playlists the user does not see (and their view logs) stay hidden;
        # their pages answer as for a link that does not exist.
        return playlist_access.share_links_visible_to(request.user, links)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, access.CURATE, None)

    @admin.display(description="target")
    def target_(self, obj: ShareLink) -> str:
        if obj.recording is not None:
            return f"recording {obj.recording.session_id}"
        return f"playlist {obj.playlist}"

    @admin.display(description="state")
    def state_(self, obj: ShareLink) -> str:
        return services.share_link_state(obj)

    @admin.display(description="views")
    def views_(self, obj: ShareLink) -> str:
        views = obj.views.all()[:200]
        if not views:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} · {} · {}</li>",
                (
                    (f"{v.viewed_at:%Y-%m-%d %H:%M}", v.ip_address or "—", v.user_agent)
                    for v in views
                ),
            ),
        )

    @admin.action(description="Revoke selected share links", permissions=["revoke"])
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[ShareLink]
    ) -> None:
        links = list(queryset.select_related("project"))
        if not all(self._allowed(request, access.CURATE, link) for link in links):
            raise PermissionDenied
        for link in links:
            services.share_link_revoke(link=link)
        self.message_user(
            request, f"{len(links)} share link(s) revoked.", messages.SUCCESS
        )
