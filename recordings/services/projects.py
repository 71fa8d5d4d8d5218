"""Project workflows: creating and deleting a project, and giving roles on it.

Who may do what is recordings.access (policy); these change it.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.db import models, transaction
from guardian.shortcuts import assign_perm, remove_perm

from recordings.access import ROLE_PERMISSIONS, Role, qualified
from recordings.models import Project
from recordings.services.api_keys import api_keys_narrow
from recordings.services.storage import RecordingOnHold, recording_purge


def role_grant(*, project: Project, principal: User | Group, role: Role | None) -> None:
    """Give `principal` exactly `role` on `project` (None takes every role away).

    Only this project's permissions change: no user flag is touched, so a role here
    never reopens access a superuser closed (`may_use_replayhub` follows the roles).
    """
    wanted = set(ROLE_PERMISSIONS[role]) if role else set()
    with transaction.atomic():
        for codename in set(ROLE_PERMISSIONS[Role.ADMIN]) - wanted:
            remove_perm(qualified(codename), principal, project)
        for codename in wanted:
            assign_perm(qualified(codename), principal, project)
        if role is None:
            for user in _key_holders(principal, project):
                api_keys_narrow(user=user)


def _key_holders(principal: User | Group, project: Project) -> models.QuerySet[User]:
    """The users behind `principal` whose API keys reach `project`."""
    holders = User.objects.filter(api_keys__projects=project).distinct()
    if isinstance(principal, User):
        return holders.filter(pk=principal.pk)
    return holders.filter(groups=principal)


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
