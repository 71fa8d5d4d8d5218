"""Management API permission: each action needs one permission on its project."""

from __future__ import annotations

from typing import Any, Protocol

from django.contrib.auth.models import User
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from recordings import access
from recordings.models import ApiKey, Project


class ProjectScopedView(Protocol):
    action: str | None
    # action name -> project permission codename (see recordings.access)
    action_permissions: dict[str, str]

    def project_of(self, obj: Any) -> Project: ...


def request_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class MayUseReplayHub(BasePermission):
    """The admin's sign-in rule (`access.may_use_replayhub`), for API sessions too."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request_key(request) is not None:
            return True  # ApiKeyAuthentication has asked the same rule of its user
        return access.may_use_replayhub(request.user)


class ProjectPermission(MayUseReplayHub):
    """Allows an action when the user holds its permission on the object's project.

    Lists are already limited to readable projects by the views' querysets, so an
    outsider gets 404, not 403, for another project's object. A read-only key may
    only read.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        key = request_key(request)
        if key and key.access == ApiKey.Access.READ:
            # A POST that only reads (a search with its filter in the body) is a read.
            reads = getattr(view, "read_only_actions", ())
            return request.method in SAFE_METHODS or view.action in reads
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        scoped: ProjectScopedView = view
        codename = scoped.action_permissions.get(scoped.action or "")
        if codename is None:
            return False  # an action nobody mapped is refused, not let through
        project = scoped.project_of(obj)
        key = request_key(request)
        if key and not key.projects.filter(pk=project.pk).exists():
            return False
        return access.can(request.user, codename, project)


def acting_user(request: Request) -> User:
    """The request's user, once a permission here has let it in (always a User)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionError("the permission classes let in only users")
    return user
