"""Browser-test fixtures: Debian's Chromium through Playwright, and the test origins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop in this thread; the ORM calls the test
    # makes between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield launched
            launched.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def origins(live_server: Any, settings: Any) -> dict[str, str]:
    port = urlsplit(live_server.url).port
    hosts = {name: f"http://{name}.test:{port}" for name in ("shop", "ingest", "admin")}
    settings.ALLOWED_HOSTS = [".test", "127.0.0.1", "localhost"]
    settings.REPLAYHUB_DEMO_API_HOST = hosts["ingest"]
    return hosts
