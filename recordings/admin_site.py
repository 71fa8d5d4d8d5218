"""ReplayHub's admin site: who may sign in follows `access.may_use_replayhub`.

Django's own site lets in `is_active and is_staff`; here the one rule that also
governs the API decides, so the admin and the API never disagree about a person.

It lives outside `recordings/admin/` on purpose: Django imports the default site's
class lazily, the first time any app registers a model admin; from inside the package
whose `__init__` registers model admins, that import would run twice and the second
site would drop the first one's registrations.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from recordings import access


class MemberLoginForm(AdminAuthenticationForm):
    """The admin's login form, for anyone `may_use_replayhub` lets in."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        # The same words for a wrong password, a suspended person and one with no
        # role: the form does not tell which accounts exist.
        "invalid_login": (
            "Please enter the correct %(username)s and password of an account with "
            "a role on a project. Note that both fields may be case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user: Any) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)  # skip the is_staff test
        if not access.may_use_replayhub(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class ReplayAdminSite(AdminSite):
    site_header = "ReplayHub"
    site_title = "ReplayHub"
    index_title = "Session replay"
    login_form = MemberLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        # Asked several times a request (the view, its context, the app list).
        cache = request.__dict__
        if "_replayhub_may_use" not in cache:
            cache["_replayhub_may_use"] = access.may_use_replayhub(request.user)
        allowed: bool = cache["_replayhub_may_use"]
        return allowed


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes' answer to a sign-in while locked out: the admin's login page
    saying so, 429 (AXES_LOCKOUT_CALLABLE)."""
    context = {
        **admin.site.each_context(request),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": settings.REPLAYHUB_LOGIN_COOLOFF_MINUTES,
    }
    response = TemplateResponse(
        request, "admin/login_locked_out.html", context, status=429
    )
    return response.render()
