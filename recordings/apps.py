from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"


class ReplayAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with ReplayHub's site (who may sign in follows roles)."""

    default = False  # named in INSTALLED_APPS; not this module's default config
    default_site = "recordings.admin_site.ReplayAdminSite"
