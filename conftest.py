"""pytest configuration shared by every test module."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_project_cache(settings: Any) -> None:
    # Tests reuse one capture token for projects that come and go with each test's
    # transaction, and switch projects off with .update(): capture must look them
    # up each time. tests/recordings/test_project_cache.py turns the cache on.
    settings.REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_erasure_settle_wait(settings: Any) -> None:
    # With no capture cache (above) there is nothing to wait for.
    settings.REPLAYHUB_ERASURE_SETTLE_SECONDS = 0
