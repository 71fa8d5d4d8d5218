"""Privacy settings: reading them for a project, changing them with an audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils.timezone import now

from privacy.models import PrivacyAuditEntry, PrivacySettings
from recordings.models import Project


def privacy_for(project: Project) -> PrivacySettings:
    """The project's settings; defaults (saved) for a project that has none yet."""
    try:
        # Loaded with select_related("privacy") on hot paths. django-stubs does not
        # always see this reverse one-to-one across apps (it does with every app
        # loaded, as in `mypy .`), hence the ignore.
        cached: PrivacySettings = project.privacy  # type: ignore[attr-defined,unused-ignore]
        return cached
    except PrivacySettings.DoesNotExist:
        settings, _ = PrivacySettings.objects.get_or_create(project=project)
        return settings


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a field value for the audit log."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


@transaction.atomic
def privacy_settings_update(
    *,
    settings: PrivacySettings,
    actor: User | AnonymousUser | None,
    before: dict[str, Any],
) -> PrivacyAuditEntry | None:
    """Save settings already changed in memory, and record what changed and who.

    `before` holds the field values as they were; unchanged fields leave no trace,
    and a save that changes nothing writes no audit entry.
    """
    changes = {
        name: [_plain(old), _plain(getattr(settings, name))]
        for name, old in before.items()
        if old != getattr(settings, name)  # Decimal("1.000") == Decimal("1")
    }
    settings.updated = now()
    settings.save()
    if not changes:
        return None
    user = actor if isinstance(actor, User) else None
    return PrivacyAuditEntry.objects.create(
        project=settings.project,
        actor=user,
        actor_name=user.get_username() if user else "",
        changes=changes,
    )


def audited_fields() -> list[str]:
    return [
        f.name
        for f in PrivacySettings._meta.concrete_fields
        if f.name not in {"id", "project", "updated"}
    ]
