"""Who may do what on which project: roles stored as guardian object permissions.

Projects are the tenant boundary. A role is a named bundle of per-project permissions
(see `Project.Meta.permissions`), assigned to a user or a group with guardian. Every
read path (admin querysets, API querysets, the player, exports) asks this module which
projects a user may reach for one permission; every write asks `can()`.

Only object permissions count: a model-wide permission on `Project` does not open every
project (guardian's `accept_global_perms` is off everywhere), so the one way to see all
projects is to be a superuser.

Whether a person may use ReplayHub at all (sign in to the admin, use the API with a
session or a key) is one rule, `may_use_replayhub`: an active user who is a superuser,
holds a role on at least one project (directly or through a group), or was given the
model-wide "add project" permission by a superuser. It is asked on every request, so
it follows the roles: losing the last role ends every way in at once. `is_staff` plays
no part (Django's admin reads it; ReplayHub's admin site does not), so granting a role
never changes a flag that could reopen access elsewhere. The one switch that suspends
a person is `is_active`, which only superusers may change (the user admin is theirs
alone): an inactive user's sessions stop resolving and their keys are refused. The
`is_staff` values already stored stay unused; migration 0013 suspended the people
they used to keep out, so nobody got in through the change.

An API key acts for its user on its own projects only, and never past the user's
current roles (`key_projects_for`, per request); a project the user loses also
leaves their keys for good (`api_keys_narrow`, recordings.services.api_keys), so a
role given back later does not reopen an old key. The workflows that change roles,
projects and keys are recordings.services.projects and recordings.services.api_keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.db import models
from guardian.shortcuts import (
    get_groups_with_perms,
    get_objects_for_user,
    get_perms,
    get_users_with_perms,
)

from recordings.models import (
    ApiKey,
    Project,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
)

AnyUser = AbstractBaseUser | AnonymousUser


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer: watch recordings, comment"
    EDITOR = "editor", "Editor: also curate playlists, tag"
    ADMIN = "admin", "Admin: also privacy, rules, retention, deletion, tokens, members"


VIEW_PROJECT = "view_project"
VIEW_RECORDINGS = "view_recordings"
COMMENT = "comment_recordings"
CURATE = "curate_recordings"
CHANGE_PROJECT = "change_project"
MANAGE_PRIVACY = "manage_privacy"
DELETE_RECORDINGS = "delete_recordings"
MANAGE_MEMBERS = "manage_members"
# Model-wide, not a role: superusers give it to people who may create projects.
ADD_PROJECT = "add_project"

_VIEWER = (VIEW_PROJECT, VIEW_RECORDINGS, COMMENT)
_EDITOR = (*_VIEWER, CURATE)
_ADMIN = (*_EDITOR, CHANGE_PROJECT, MANAGE_PRIVACY, DELETE_RECORDINGS, MANAGE_MEMBERS)
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.VIEWER: _VIEWER,
    Role.EDITOR: _EDITOR,
    Role.ADMIN: _ADMIN,
}
# Strongest first: a principal's role is the first whose permissions it all holds.
_ROLES_STRONGEST_FIRST = (Role.ADMIN, Role.EDITOR, Role.VIEWER)


def qualified(codename: str) -> str:
    return f"recordings.{codename}"


def projects_for(user: AnyUser, codename: str) -> models.QuerySet[Project]:
    """The projects on which `user` holds `codename`, directly or through a group."""
    if not user.is_active:
        return Project.objects.none()
    return get_objects_for_user(
        user, qualified(codename), klass=Project, accept_global_perms=False
    )


def may_use_replayhub(user: AnyUser) -> bool:
    """Whether `user` may sign in to the admin and use the API at all (see above)."""
    if not isinstance(user, User) or not user.is_active:
        return False
    if user.is_superuser or projects_for(user, VIEW_PROJECT).exists():
        return True
    # Someone a superuser allowed to create projects, before they have made one.
    return user.has_perm(qualified(ADD_PROJECT))


def can(user: AnyUser, codename: str, project: Project) -> bool:
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.has_perm(qualified(codename), project)


def role_from_perms(codenames: set[str]) -> Role | None:
    for role in _ROLES_STRONGEST_FIRST:
        if set(ROLE_PERMISSIONS[role]) <= codenames:
            return role
    return None


def role_of(principal: User | Group, project: Project) -> Role | None:
    """The role assigned to `principal` itself (a user's groups are not counted)."""
    return role_from_perms(set(get_perms(principal, project)))


@dataclass(frozen=True)
class Member:
    principal: User | Group
    role: Role | None

    @property
    def is_group(self) -> bool:
        return isinstance(self.principal, Group)


def project_members(project: Project) -> list[Member]:
    """Users and groups holding a role (or stray permissions) on `project`."""
    # With attach_perms=True both return {principal: [codename, ...]}.
    users = cast(
        dict[User, list[str]],
        get_users_with_perms(project, attach_perms=True, with_group_users=False),
    )
    groups = cast(
        dict[Group, list[str]], get_groups_with_perms(project, attach_perms=True)
    )
    members = [Member(u, role_from_perms(set(p))) for u, p in users.items()]
    members += [Member(g, role_from_perms(set(p))) for g, p in groups.items()]
    return sorted(members, key=lambda m: (m.is_group, str(m.principal)))


def principals_known_to(
    user: AnyUser,
) -> tuple[models.QuerySet[User], models.QuerySet[Group]]:
    """The users and groups `user` may give a role to by name.

    A superuser: everyone. Anyone else: who already holds a role (or permissions)
    on a project whose members `user` manages, that is, the names their Members
    pages show them anyway. Naming anyone else answers exactly as naming nobody,
    so a project admin cannot probe which people other tenants have.
    """
    if isinstance(user, User) and user.is_active and user.is_superuser:
        return User.objects.all(), Group.objects.all()
    managed = projects_for(user, MANAGE_MEMBERS)
    users = ProjectUserObjectPermission.objects.filter(content_object__in=managed)
    groups = ProjectGroupObjectPermission.objects.filter(content_object__in=managed)
    return (
        User.objects.filter(pk__in=users.values("user")),
        Group.objects.filter(pk__in=groups.values("group")),
    )


def key_projects_for(
    user: AnyUser, key: ApiKey | None, codename: str
) -> models.QuerySet[Project]:
    """`projects_for`, narrowed to the key's scope when the request came with one."""
    projects = projects_for(user, codename)
    if key is not None:
        projects = projects.filter(pk__in=key.projects.values("pk"))
    return projects
