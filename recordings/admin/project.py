"""Projects in the admin: token and snippet, capture health, members and roles."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join
from django.utils.timezone import now

from recordings import access
from recordings.admin.scoped import ProjectScopedAdmin
from recordings.capture import sdk_config
from recordings.models import Project
from recordings.services.ledger import project_capture_health
from recordings.services.projects import project_create, project_delete, role_grant
from recordings.services.usage import project_cap_enforce, project_usage

_ADD_PROJECT = "recordings.add_project"


class MemberForm(forms.Form):
    """Give a user (by username) or a group (by name) a role, or take it away.

    Only people and groups `access.principals_known_to` the acting user can be
    named; any other name gets the same answer as a name nobody has.
    """

    kind = forms.ChoiceField(choices=[("user", "User"), ("group", "Group")])
    name = forms.CharField(
        max_length=150,
        help_text="Username or group name of someone already on one of your "
        "projects. A superuser gives someone new their first role.",
    )
    role = forms.ChoiceField(
        choices=[*access.Role.choices, ("", "No role (remove)")], required=False
    )

    def __init__(self, *args: Any, known_to: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.users, self.groups = access.principals_known_to(known_to)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        name, kind = data.get("name"), data.get("kind")
        if kind == "user":
            principal: User | Group | None = self.users.filter(username=name).first()
        else:
            principal = self.groups.filter(name=name).first()
        if principal is None and name:
            raise forms.ValidationError(
                f"There is no {kind} called {name!r} on your projects."
            )
        if isinstance(principal, User) and not principal.is_active:
            raise forms.ValidationError(f"{name!r} is not an active user.")
        data["principal"] = principal
        data["role"] = access.Role(data["role"]) if data.get("role") else None
        return data


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin[Project]):
    project_field = ""
    view_codename = access.VIEW_PROJECT
    change_codename = access.CHANGE_PROJECT
    delete_codename = "delete_project"  # in no role: superusers only
    list_display = ("name", "token", "recording_enabled", "recordings_", "created")
    search_fields = ("name", "token")
    readonly_fields = (
        "token",
        "code",
        "created",
        "snippet_",
        "capture_health_",
        "usage_",
    )
    fields = (
        "name",
        "recording_enabled",
        "is_demo",
        "ingest_rate_limit",
        "monthly_minutes_cap",
        "usage_",
        "token",
        "snippet_",
        "capture_health_",
        "code",
        "created",
    )

    change_form_template = "admin/recordings/project/change_form.html"

    def get_readonly_fields(
        self, request: HttpRequest, obj: Project | None = None
    ) -> Any:
        # The demo page shows the demo project's name and token to anyone: only a
        # superuser decides which project that is.
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, "is_demo")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Creating a tenant is not a project role: superusers, or people given the
        # model-wide "add project" permission; the creator becomes its admin.
        user = request.user
        return bool(user.is_active and user.has_perm(_ADD_PROJECT))

    def save_model(
        self, request: HttpRequest, obj: Project, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            assert isinstance(request.user, User)
            project_create(project=obj, creator=request.user)
        # A raised (or lowered) cap takes effect now, not at the next beat check.
        project_cap_enforce(project=obj, now=now())

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[str], list[Any]]:
        # Settings and the privacy audit cannot be deleted one by one, but they only
        # exist as part of their project: whoever may delete the project deletes them.
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        # A project with recordings on legal hold cannot go: name them, refuse.
        held = [
            f"{recording} (on legal hold)"
            for project in objs
            for recording in project.recordings.filter(legal_hold=True)
        ]
        return deleted, counts, set(), [*protected, *held]

    def delete_model(self, request: HttpRequest, obj: Project) -> None:
        project_delete(project=obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Project]
    ) -> None:
        for project in queryset:
            if not self.has_delete_permission(request, project):
                raise PermissionDenied
            project_delete(project=project)

    def get_urls(self) -> list[URLPattern]:
        members = self.admin_site.admin_view(self.members_view)
        return [
            path(
                "<path:object_id>/members/",
                members,
                name="recordings_project_members",
            ),
            *super().get_urls(),
        ]

    def members_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        project = self.get_object(request, object_id)
        if project is None:
            raise Http404("no such project")
        if not self._allowed(request, access.MANAGE_MEMBERS, project):
            raise PermissionDenied
        form = MemberForm(request.POST or None, known_to=request.user)
        if request.method == "POST" and form.is_valid():
            principal, role = form.cleaned_data["principal"], form.cleaned_data["role"]
            role_grant(project=project, principal=principal, role=role)
            what = f"the {role.label.split(':')[0].lower()} role" if role else "no role"
            # In the project's history page, like any other change to it.
            self.log_change(request, project, f"Gave {principal} {what}.")
            self.message_user(request, f"{principal} now has {what} on {project}.")
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": project,
            "title": f"Members of {project}",
            "members": access.project_members(project),
            "form": form,
        }
        return TemplateResponse(
            request, "admin/recordings/project/members.html", context
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return (
            super().get_queryset(request).annotate(recording_count=Count("recordings"))
        )

    @admin.display(description="recordings", ordering="recording_count")
    def recordings_(self, obj: Project) -> int:
        return getattr(obj, "recording_count", 0)

    @admin.display(description="snippet to paste into your pages")
    def snippet_(self, obj: Project) -> str:
        if obj.pk is None:
            return "Save the project to get its snippet."
        return format_html(
            '<pre class="replayhub-snippet">{}</pre>', sdk_config.snippet(obj)
        )

    @admin.display(description="usage")
    def usage_(self, obj: Project) -> str:
        if obj.pk is None:
            return "–"
        usage = project_usage(project=obj, now=now())
        if obj.over_cap_since is None:
            return usage.describe()
        return format_html(
            '{}. <strong class="replayhub-problem">Capture stopped at the cap since '
            "{} UTC</strong>: raise the cap to resume now, or wait for the next month.",
            usage.describe(),
            f"{obj.over_cap_since:%Y-%m-%d %H:%M}",
        )

    @admin.display(description="missing recordings (last 30 days)")
    def capture_health_(self, obj: Project) -> str:
        if obj.pk is None:
            return "–"
        rows = project_capture_health(project=obj, days=30)
        if not rows:
            return "No sessions yet."
        return format_html(
            "<table><thead><tr><th>SDK version</th><th>sessions with data</th>"
            "<th>without a full snapshot</th><th>missing rate</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (r.lib_version or "unknown", r.total, r.missing, f"{r.rate:.1%}")
                    for r in rows
                ),
            ),
        )
