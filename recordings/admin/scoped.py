"""One permission policy for every model admin: rows belong to projects."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import ForeignKey, Model, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from recordings import access
from recordings.models import Project

M = TypeVar("M", bound=Model)


class ProjectScopedAdmin(admin.ModelAdmin[M]):
    """Shows a model's rows only to people holding a permission on their project.

    Each admin names the project permission for viewing, changing, deleting and
    adding; `None` means nobody may, superusers included (rows that capture writes are
    never edited by hand). Superusers otherwise hold every permission.
    """

    # ORM path from the model to its Project; "" when the model is Project itself.
    project_field = "project"
    view_codename: str = access.VIEW_RECORDINGS
    change_codename: str | None = None
    delete_codename: str | None = access.DELETE_RECORDINGS
    add_codename: str | None = None

    def project_of(self, obj: M) -> Project:
        if not self.project_field:
            assert isinstance(obj, Project)
            return obj
        project = getattr(obj, self.project_field)
        assert isinstance(project, Project)
        return project

    def projects(self, request: HttpRequest, codename: str) -> QuerySet[Project]:
        """Projects where the user holds `codename`, cached for the request."""
        cache: dict[str, QuerySet[Project]] = request.__dict__.setdefault(
            "_replayhub_projects", {}
        )
        if codename not in cache:
            cache[codename] = access.projects_for(request.user, codename)
        return cache[codename]

    def _scope(self, request: HttpRequest, queryset: QuerySet[M]) -> QuerySet[M]:
        if request.user.is_superuser:
            return queryset
        lookup = f"{self.project_field}__in" if self.project_field else "pk__in"
        projects = self.projects(request, self.view_codename).values("pk")
        return queryset.filter(**{lookup: projects})

    def get_queryset(self, request: HttpRequest) -> QuerySet[M]:
        return self._scope(request, super().get_queryset(request))

    def _allowed(
        self, request: HttpRequest, codename: str | None, obj: M | None
    ) -> bool:
        user = request.user
        # The site let the user in (access.may_use_replayhub); is_staff means nothing.
        if codename is None or not user.is_active:
            return False
        if user.is_superuser:
            return True
        if obj is None:
            return self.projects(request, codename).exists()
        return access.can(user, codename, self.project_of(obj))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.view_codename, None)

    def has_view_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self._allowed(request, self.view_codename, obj)

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self._allowed(request, self.change_codename, obj)

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self._allowed(request, self.delete_codename, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.add_codename, None)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        # A project picker offers only the projects the user may add rows to, so the
        # form neither leaks other tenants' names nor accepts them.
        if db_field.related_model is Project and not request.user.is_superuser:
            codename = self.add_codename or self.change_codename
            kwargs["queryset"] = (
                self.projects(request, codename) if codename else Project.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
