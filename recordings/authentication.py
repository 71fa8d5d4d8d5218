"""Management API authentication: personal API keys sent as a bearer token."""

from __future__ import annotations

from typing import Any

from django.utils.timezone import now
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from recordings import access
from recordings.models import ApiKey
from recordings.services.api_keys import api_key_lookup, api_key_touch


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer rhk_…`: the request acts as the key's user."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        key = api_key_lookup(parts[1].decode(errors="replace"))
        if key is None:
            raise AuthenticationFailed("Unknown API key.")
        if key.revoked is not None:
            raise AuthenticationFailed("This API key was revoked.")
        if not key.is_usable(now()):
            raise AuthenticationFailed("This API key has expired.")
        if not key.user.is_active:
            raise AuthenticationFailed("This API key's user is suspended.")
        if not access.may_use_replayhub(key.user):
            # The same rule as the admin's sign-in: a key dies with its user's roles.
            raise AuthenticationFailed("This API key's user holds no role any more.")
        api_key_touch(key=key)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request with no credentials.
        return 'Bearer realm="replayhub"'


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "recordings.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API key (rhk_…), made in the admin under "
            "API keys. It acts as its user, on the projects it was given only, and "
            "only reads unless it was made read-and-write.",
        }
