"""`GET /healthz`: readiness of the web process (database, cache, Celery broker)."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from replayhub.celery import app as celery_app

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("replayhub:health", "ok", timeout=10)
    if cache.get("replayhub:health") != "ok":
        raise RuntimeError("cache did not return what was stored")


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


HEALTH_CHECKS = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, the cache and the Celery broker answer."""
    report = {"status": "ok"}
    for name, check in HEALTH_CHECKS.items():
        try:
            check()
        except Exception:
            logger.exception("health check: %s unreachable", name)
            report[name] = report["status"] = "error"
        else:
            report[name] = "ok"
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
