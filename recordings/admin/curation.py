"""What people add to recordings, in the admin: tags, comments, who watched.

The recording admin's player page and list call these; `recordings.access` says who
may do what (viewers comment, editors tag, people edit their own comments, project
admins delete any), `recordings.services` does the writes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from recordings import access
from recordings.models import (
    Comment,
    Project,
    Recording,
    RecordingTag,
    RecordingView,
    Tag,
)
from recordings.services.curation import (
    comment_create,
    comment_edit,
    recording_untag,
    recording_view_record,
    recordings_tag,
    tag_get_or_create,
)

TAG_NAME_MAX = 50


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _ms(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


# --- the list -----------------------------------------------------------------------


def list_annotate(
    recordings: QuerySet[Recording], request: HttpRequest
) -> QuerySet[Recording]:
    """The list's page, with its tags and whether the user watched each."""
    viewed = RecordingView.objects.filter(
        recording=OuterRef("pk"), user__pk=request.user.pk or 0
    )
    taggings = RecordingTag.objects.select_related("tag").order_by("tag__name")
    return recordings.annotate(seen=Exists(viewed)).prefetch_related(
        Prefetch("taggings", queryset=taggings)
    )


def tag_selected(
    model_admin: ModelAdmin[Recording],
    request: HttpRequest,
    queryset: QuerySet[Recording],
) -> HttpResponse | None:
    """The "Tag selected recordings…" action: a page to pick or type a tag, then
    the tag on every selected recording (each project gets its own tag)."""
    recordings = list(queryset.select_related("project"))
    projects = {r.project for r in recordings}
    if not all(access.can(request.user, access.CURATE, p) for p in projects):
        raise PermissionDenied
    name = " ".join(request.POST.get("tag_name", "").split())[:TAG_NAME_MAX]
    if request.POST.get("apply") and name:
        tagged = 0
        for project, group in _by_project(recordings).items():
            tag = tag_get_or_create(project=project, name=name)
            tagged += recordings_tag(recordings=group, tag=tag, user=_user(request))
        model_admin.message_user(
            request, f"Tagged {tagged} recording(s) “{name}”.", messages.SUCCESS
        )
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Tag the selected recordings",
        "recordings": recordings,
        "vocabulary": Tag.objects.filter(project__in=projects)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct(),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": "tag_selected",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(
        request, "admin/recordings/recording/tag_selected.html", context
    )


def _by_project(recordings: list[Recording]) -> dict[Project, list[Recording]]:
    groups: dict[Project, list[Recording]] = defaultdict(list)
    for recording in recordings:
        groups[recording.project].append(recording)
    return groups


# --- the player page ----------------------------------------------------------------


def player_context(request: HttpRequest, recording: Recording) -> dict[str, Any]:
    """Tags, comments and watchers for the player page (the view is recorded)."""
    user = _user(request)
    recording_view_record(recording=recording, user=user)
    project = recording.project
    is_admin = access.can(user, access.CHANGE_PROJECT, project)
    comments = [
        {
            "comment": c,
            "at": _ms(c.offset_ms),
            "seconds": c.offset_ms // 1000,
            "may_edit": c.author_id == user.pk,
            "may_delete": c.author_id == user.pk or is_admin,
        }
        for c in recording.comments.select_related("author")
    ]
    watchers = None
    if project.show_who_watched:
        watchers = list(recording.views.select_related("user").order_by("-last_viewed"))
    return {
        "tags": [t.tag for t in recording.taggings.select_related("tag")],
        "vocabulary": Tag.objects.filter(project=project).values_list(
            "name", flat=True
        ),
        "may_tag": access.can(user, access.CURATE, project),
        "may_comment": access.can(user, access.COMMENT, project),
        "comments": comments,
        "watchers": watchers,
        "start_seconds": _seconds(request.GET.get("t", "")),
        "playlist_code": _code(request.GET.get("playlist", "")),
    }


def comment_markers(recording: Recording) -> list[dict[str, Any]]:
    """The recording's comments as rows of the player's markers list."""
    return [
        {
            "ms": c.offset_ms,
            "at": _ms(c.offset_ms),
            "kind": "comment",
            "kind_label": "Comment",
            "label": f"{c.author or 'someone'}: {c.text[:80]}",
            "window": "",
            "seconds": c.offset_ms // 1000,
        }
        for c in recording.comments.select_related("author")
    ]


def _seconds(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _code(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return ""


def _back(recording: Recording, request: HttpRequest, seconds: int | None) -> str:
    url = reverse("admin:recordings_recording_play", args=[recording.code])
    query: dict[str, str] = {"t": str(seconds)} if seconds is not None else {}
    code = _code(request.POST.get("playlist", ""))
    if code:
        query["playlist"] = code
    return f"{url}?{urlencode(query)}" if query else url


def comments_post(request: HttpRequest, recording: Recording) -> HttpResponse:
    """Add, edit (one's own) or delete (one's own; admins: any) a comment."""
    if request.method != "POST":
        return HttpResponseRedirect(_back(recording, request, None))
    user = _user(request)
    op = request.POST.get("op", "add")
    if op == "add":
        if not access.can(user, access.COMMENT, recording.project):
            raise PermissionDenied
        try:
            comment = comment_create(
                recording=recording,
                author=user,
                text=request.POST.get("text", ""),
                offset_ms=_seconds(request.POST.get("offset_ms", "")) or 0,
                window_id=request.POST.get("window_id", "")[:200],
            )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return HttpResponseRedirect(_back(recording, request, None))
        return HttpResponseRedirect(
            _back(recording, request, comment.offset_ms // 1000)
        )
    comment = get_object_or_404(
        Comment, recording=recording, pk=_seconds(request.POST.get("comment", "")) or 0
    )
    if op == "edit" and comment.author_id == user.pk:
        comment_edit(comment=comment, text=request.POST.get("text", ""))
    elif op == "delete" and (
        comment.author_id == user.pk
        or access.can(user, access.CHANGE_PROJECT, recording.project)
    ):
        comment.delete()
    else:
        raise PermissionDenied
    return HttpResponseRedirect(_back(recording, request, comment.offset_ms // 1000))


def tags_post(request: HttpRequest, recording: Recording) -> HttpResponse:
    """Put a tag (picked or typed) on the recording, or take one off: editors."""
    if request.method != "POST":
        return HttpResponseRedirect(_back(recording, request, None))
    user = _user(request)
    if not access.can(user, access.CURATE, recording.project):
        raise PermissionDenied
    if request.POST.get("op") == "remove":
        tag = get_object_or_404(
            Tag,
            project=recording.project,
            pk=_seconds(request.POST.get("tag", "")) or 0,
        )
        recording_untag(recording=recording, tag=tag)
    else:
        name = " ".join(request.POST.get("name", "").split())[:TAG_NAME_MAX]
        if name:
            tag = tag_get_or_create(project=recording.project, name=name)
            recordings_tag(recordings=[recording], tag=tag, user=user)
    return HttpResponseRedirect(_back(recording, request, None))
