"""Personal keys for the management API, limited to chosen projects."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from recordings.models.project import Project

API_KEY_PREFIX = "rhk_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys are 32 random bytes, so a plain SHA-256 is enough: there is nothing to
    # brute-force that a slow hash would protect (unlike a password).
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self, at: dt.datetime) -> ApiKeyQuerySet:
        return self.filter(revoked__isnull=True).exclude(expires__lte=at)


class ApiKey(models.Model):
    """A personal key for the management API, limited to chosen projects.

    It acts for its user, never beyond: a request may do what the user's role allows,
    on the key's projects only, and only reads when the key is read-only. Only a hash
    is stored; the key is shown once, when it is created.
    """

    class Access(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, help_text="What the key is for.")
    projects = models.ManyToManyField(
        Project, related_name="api_keys", help_text="The only projects it can reach."
    )
    access = models.CharField(max_length=10, choices=Access, default=Access.READ)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The key's first characters."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=now, editable=False)
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, at: dt.datetime) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > at)
