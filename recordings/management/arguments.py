"""What the management commands' arguments name, looked up once for all of them."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from recordings.models import Project


def project_named(value: str) -> Project:
    """The project a `--project` argument names: its code, or else its name."""
    try:
        found = Project.objects.filter(code=uuid.UUID(value)).first()
    except ValueError:
        found = Project.objects.filter(name=value).first()
    if found is None:
        raise CommandError(f"no project {value!r} (give its code or its name)")
    return found
