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
def _no_filter_choices_cache(settings: Any) -> None:
    # The recording list's pickers would offer values cached by an earlier test
    # (project ids come again after a rollback); tests see each list afresh.
    settings.REPLAYHUB_FILTER_CHOICES_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_erasure_settle_wait(settings: Any) -> None:
    # With no capture cache (above) there is nothing to wait for.
    settings.REPLAYHUB_ERASURE_SETTLE_SECONDS = 0


@pytest.fixture(autouse=True)
def _fixture_clocks_are_not_skewed(settings: Any) -> None:
    # The fixtures were captured on 2026-11-22: replayed later, their sent_at looks
    # like a device clock days behind, and capture would move their event times.
    # Tests comparing stored events with the fixtures' times need them as sent;
    # tests/recordings/test_clock_skew.py puts the default tolerance back.
    settings.REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS = 100 * 365 * 24 * 3600
