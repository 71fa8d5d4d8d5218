"""Per-project ingest rate limits, counted where every web process sees one count:
in Redis when the cache is Redis, else in the database (the embedded default)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from recordings.models import IngestRateWindow, Project

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# posthog-js honours Retry-After only up to 30 s (wire-protocol.md §6).
MAX_RETRY_AFTER = 30


class IngestRateLimit:
    """A fixed one-minute window of batches per project.

    Over the limit the batch is not refused for good: the caller answers 503 with
    Retry-After, which posthog-js retries, so a burst is delayed rather than lost.
    """

    def limit_for(self, project: Project) -> int:
        if project.ingest_rate_limit is not None:
            return project.ingest_rate_limit
        limit: int = settings.REPLAYHUB_INGEST_RATE_PER_MINUTE
        return limit

    def retry_after(self, project: Project) -> int | None:
        """Seconds to wait when the project is over its limit, else None."""
        limit = self.limit_for(project)
        if limit <= 0:
            return None  # 0 means unlimited
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        count = self._count(project, window)
        if count is None or count <= limit:
            return None
        left = WINDOW_SECONDS - int(now % WINDOW_SECONDS)
        return max(1, min(left, MAX_RETRY_AFTER))

    def _count(self, project: Project, window: int) -> int | None:
        try:
            if not _cache_counts_atomically():
                return IngestRateWindow.objects.hit(
                    project_id=project.pk, minute=window
                )
            key = f"replayhub:ingest-rate:{project.pk}:{window}"
            cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
            return cache.incr(key)
        except ValueError:
            return None  # evicted between add and incr: let this one through
        except Exception:
            # A broken cache must not lose recordings: fail open, loudly.
            logger.exception("ingest rate limit unavailable; batch let through")
            return None


# Cache backends whose incr() is one atomic step on a server all processes share.
# The others (the database's and the file cache read, add and write back; the
# local-memory cache is per process) would let each web process count apart.
_ATOMIC_CACHES = (
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
)


def _cache_counts_atomically() -> bool:
    return settings.CACHES["default"]["BACKEND"] in _ATOMIC_CACHES
