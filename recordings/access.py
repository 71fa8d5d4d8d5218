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
leaves their keys for good (`api_keys_narrow`), so a role given back later does not
reopen an old key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils.timezone import now
from guardian.shortcuts import (
    assign_perm,
    get_groups_with_perms,
    get_objects_for_user,
    get_perms,
    get_users_with_perms,
    remove_perm,
)

from recordings.models import (
    API_KEY_PREFIX,
    ApiKey,
    Project,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
    hash_api_key,
    new_api_key,
)
from recordings.services.storage import RecordingOnHold, recording_purge

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


def _qualified(codename: str) -> str:
    return f"recordings.{codename}"


def projects_for(user: AnyUser, codename: str) -> models.QuerySet[Project]:
    """The projects on which `user` holds `codename`, directly or through a group."""
    if not user.is_active:
        return Project.objects.none()
    return get_objects_for_user(
        user, _qualified(codename), klass=Project, accept_global_perms=False
    )


def may_use_replayhub(user: AnyUser) -> bool:
    """Whether `user` may sign in to the admin and use the API at all (see above)."""
    if not isinstance(user, User) or not user.is_active:
        return False
    if user.is_superuser or projects_for(user, VIEW_PROJECT).exists():
        return True
    # Someone a superuser allowed to create projects, before they have made one.
    return user.has_perm(_qualified(ADD_PROJECT))


def can(user: AnyUser, codename: str, project: Project) -> bool:
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.has_perm(_qualified(codename), project)


def role_grant(*, project: Project, principal: User | Group, role: Role | None) -> None:
    """Give `principal` exactly `role` on `project` (None takes every role away).

    Only this project's permissions change: no user flag is touched, so a role here
    never reopens access a superuser closed (`may_use_replayhub` follows the roles).
    """
    wanted = set(ROLE_PERMISSIONS[role]) if role else set()
    with transaction.atomic():
        for codename in set(_ADMIN) - wanted:
            remove_perm(_qualified(codename), principal, project)
        for codename in wanted:
            assign_perm(_qualified(codename), principal, project)
        if role is None:
            for user in _key_holders(principal, project):
                api_keys_narrow(user=user)


def _key_holders(principal: User | Group, project: Project) -> models.QuerySet[User]:
    """The users behind `principal` whose API keys reach `project`."""
    holders = User.objects.filter(api_keys__projects=project).distinct()
    if isinstance(principal, User):
        return holders.filter(pk=principal.pk)
    return holders.filter(groups=principal)


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


def project_create(*, project: Project, creator: User) -> Project:
    """Save a new project; its creator becomes its admin."""
    with transaction.atomic():
        project.save()
        if not creator.is_superuser:
            role_grant(project=project, principal=creator, role=Role.ADMIN)
    return project


def project_delete(*, project: Project) -> None:
    """Delete a project with everything in it, its blobs included.

    Refused (RecordingOnHold) before anything is deleted when a recording is on
    legal hold.
    """
    held = project.recordings.filter(legal_hold=True).first()
    if held is not None:
        raise RecordingOnHold(held)
    for recording in project.recordings.all():
        recording_purge(recording=recording)
    project.delete()


def api_key_create(*, key: ApiKey, projects: Iterable[Project]) -> str:
    """Save a new key for `key.user`, limited to `projects`; return its secret.

    The secret is returned only this once. Only projects the user can see may be in
    the scope: a key never reaches further than its owner.
    """
    projects = list(projects)
    allowed = set(projects_for(key.user, VIEW_PROJECT).values_list("pk", flat=True))
    outside = [p.name for p in projects if p.pk not in allowed]
    if outside:
        raise PermissionDenied(f"no access to project(s): {', '.join(outside)}")
    secret = new_api_key()
    key.prefix = secret[: len(API_KEY_PREFIX) + 6]
    key.key_hash = hash_api_key(secret)
    with transaction.atomic():
        key.save()
        key.projects.set(projects)
    return secret


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked is None:
        key.revoked = now()
        key.save(update_fields=["revoked"])


# last_used is for people deciding which keys to revoke: minute precision is enough,
# and it spares a write on every request.
_TOUCH_EVERY = dt.timedelta(minutes=1)


def api_key_touch(*, key: ApiKey) -> None:
    at = now()
    if key.last_used is None or at - key.last_used >= _TOUCH_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used=at)
        key.last_used = at


def api_key_lookup(secret: str) -> ApiKey | None:
    """The key with this secret, revoked or not (the caller says which is refused)."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    return (
        ApiKey.objects.select_related("user")
        .filter(key_hash=hash_api_key(secret))
        .first()
    )


def _reachable(user: User) -> models.QuerySet[Project]:
    """Projects `user` holds a role on, directly or through a group, active or not.

    Unlike `projects_for`, a suspension is not a lost role: keys keep their scope
    and work again when a superuser reactivates the person.
    """
    if user.is_superuser:
        return Project.objects.all()
    perm = {
        "permission__codename": VIEW_PROJECT,
        "permission__content_type__app_label": "recordings",
    }
    direct = ProjectUserObjectPermission.objects.filter(user=user, **perm)
    grouped = ProjectGroupObjectPermission.objects.filter(group__user=user, **perm)
    return Project.objects.filter(
        models.Q(pk__in=direct.values("content_object"))
        | models.Q(pk__in=grouped.values("content_object"))
    )


def api_keys_narrow(*, user: User) -> int:
    """Take every project `user` can no longer reach out of their keys, for good.

    Requests never reach past the user's current roles anyway (`key_projects_for`);
    this makes the loss stick, so giving the role back later does not silently
    reopen an old key, and the key's page lists only what it can still reach.
    Returns how many (key, project) pairs went.
    """
    scopes = ApiKey.projects.through.objects.filter(apikey__user=user)
    deleted, _ = scopes.exclude(project__in=_reachable(user)).delete()
    return deleted


def key_projects_for(
    user: AnyUser, key: ApiKey | None, codename: str
) -> models.QuerySet[Project]:
    """`projects_for`, narrowed to the key's scope when the request came with one."""
    projects = projects_for(user, codename)
    if key is not None:
        projects = projects.filter(pk__in=key.projects.values("pk"))
    return projects
