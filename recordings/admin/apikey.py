"""Personal API keys: each user makes and revokes their own; the secret shows once."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import ManyToManyField, QuerySet
from django.forms import ModelForm, ModelMultipleChoiceField
from django.http import HttpRequest
from django.utils.timezone import now

from recordings import access
from recordings.models import ApiKey
from recordings.services.api_keys import api_key_create, api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = (
        "name",
        "prefix",
        "user",
        "access",
        "projects_",
        "created",
        "last_used",
        "state_",
    )
    list_select_related = ("user",)
    fields = ("name", "projects", "access", "expires")
    readonly_fields = ("prefix", "created", "last_used", "revoked")
    actions = ("revoke_selected",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        keys = super().get_queryset(request).prefetch_related("projects")
        if request.user.is_superuser:
            return keys
        return keys.filter(user__pk=request.user.pk or 0)

    def _own(self, request: HttpRequest, obj: ApiKey | None) -> bool:
        user = request.user
        if not user.is_active:
            return False
        return obj is None or user.is_superuser or obj.user_id == user.pk

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._own(request, None)

    def has_view_permission(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> bool:
        return self._own(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._own(request, None)

    def has_change_permission(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> bool:
        return False  # a key's scope is fixed: make a new one, revoke the old

    def has_delete_permission(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> bool:
        return self._own(request, obj)

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> Any:
        if obj is None:
            return ()
        return (*self.fields, *self.readonly_fields)

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        if db_field.name == "projects":
            kwargs["queryset"] = access.projects_for(request.user, access.VIEW_PROJECT)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: ModelForm[Any], change: bool
    ) -> None:
        assert isinstance(request.user, User) and not change
        obj.user = request.user
        secret = api_key_create(key=obj, projects=form.cleaned_data["projects"])
        self.message_user(
            request,
            f"Your new API key is {secret} — copy it now, it is not shown again. "
            "Send it as “Authorization: Bearer <key>”.",
            messages.WARNING,
        )

    def save_related(
        self, request: HttpRequest, form: ModelForm[Any], formsets: Any, change: bool
    ) -> None:
        pass  # api_key_create has set the projects, after checking them

    @admin.display(description="projects")
    def projects_(self, obj: ApiKey) -> str:
        return ", ".join(p.name for p in obj.projects.all())

    @admin.display(description="state")
    def state_(self, obj: ApiKey) -> str:
        if obj.revoked:
            return "revoked"
        return "usable" if obj.is_usable(now()) else "expired"

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = [key for key in queryset if self._own(request, key)]
        for key in keys:
            api_key_revoke(key=key)
        self.message_user(request, f"{len(keys)} API key(s) revoked.")
