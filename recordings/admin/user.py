"""People in the admin: superusers only, and "active" is the switch that suspends.

ReplayHub's admin site lets people in by role (`access.may_use_replayhub`), so
Django's "staff status" decides nothing here and is not offered: unticking it would
look like suspending someone and do nothing.
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import Field
from django.forms import Field as FormField
from django.forms import ModelForm
from django.http import HttpRequest

from recordings.services.api_keys import api_keys_narrow

SUSPEND_HELP = (
    "Untick to suspend this person: their admin sessions and API keys stop working "
    "at once, in every project, and project admins cannot give them roles. Only "
    "superusers can change it."
)

admin.site.unregister(User)
# Sign-in lockouts (django-axes): superusers see and delete the failed attempts
# (Axes → Access attempts) to unlock someone. Successful sign-ins and a failure log
# are not kept (AXES_DISABLE_ACCESS_LOG), so their empty pages are not offered.
admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)


@admin.register(User)
class ReplayUserAdmin(UserAdmin[User]):
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Access",
            {"fields": ("is_active", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_active")
    list_filter = ("is_active", "is_superuser", "groups")

    def formfield_for_dbfield(
        self, db_field: Field[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> FormField | None:
        if db_field.name == "is_active":
            kwargs["help_text"] = SUSPEND_HELP
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_related(
        self, request: HttpRequest, form: ModelForm[Any], formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        # Left a group or lost superuser status: their keys lose those projects.
        api_keys_narrow(user=form.instance)

    # Whoever edits people decides who gets in: superusers alone, whatever model-wide
    # permissions someone else was given.
    def _superuser(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)
