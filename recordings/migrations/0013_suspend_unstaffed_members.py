"""Keep out whoever staff status kept out, now that sign-in follows roles.

Until now the admin let in `is_active and is_staff`, and granting a role set
`is_staff`; a superuser who unticked it for someone meant "keep them out". From now on
a role (or the model-wide "add project" permission) is what lets an active user in,
and `is_staff` is read nowhere (recordings.access.may_use_replayhub). So that nobody
gains access through the upgrade, every active non-superuser without staff status
whom the new rule would let in is suspended (`is_active` off); a superuser
reactivates them on their user page. Nobody else changes.

Reversing it changes nothing: which users this suspended is not recorded, and they
stay suspended (the old rule keeps them out as well).
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import Q


def suspend_unstaffed_members(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    User = apps.get_model("auth", "User")
    UserRole = apps.get_model("recordings", "ProjectUserObjectPermission")
    GroupRole = apps.get_model("recordings", "ProjectGroupObjectPermission")
    view = {"permission__codename": "view_project"}
    admitted = (
        Q(pk__in=UserRole.objects.filter(**view).values("user_id"))
        | Q(groups__in=GroupRole.objects.filter(**view).values("group_id"))
        | Q(
            user_permissions__codename="add_project",
            user_permissions__content_type__app_label="recordings",
        )
        | Q(
            groups__permissions__codename="add_project",
            groups__permissions__content_type__app_label="recordings",
        )
    )
    candidates = User.objects.filter(is_active=True, is_staff=False, is_superuser=False)
    ids = set(candidates.filter(admitted).values_list("pk", flat=True))
    User.objects.filter(pk__in=ids).update(is_active=False)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("recordings", "0012_sessionledger_clock_skew"),
    ]

    operations = [
        migrations.RunPython(suspend_unstaffed_members, migrations.RunPython.noop),
    ]
