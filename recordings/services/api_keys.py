"""API key workflows: a key made, revoked, used, looked up, and narrowed to what
its user can still reach (see recordings.access for what a key may do)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils.timezone import now

from recordings.access import VIEW_PROJECT, projects_for
from recordings.models import (
    API_KEY_PREFIX,
    ApiKey,
    Project,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
    hash_api_key,
    new_api_key,
)


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
