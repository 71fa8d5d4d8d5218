"""ReplayHub: self-hosted session replay managed from the Django admin."""

from __future__ import annotations

from replayhub.celery import app as celery_app

__all__ = ("celery_app",)
