"""Helpers of the browser tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    pause: Callable[[], None] = lambda: time.sleep(0.25),
) -> Any:
    """Poll until condition() is truthy. Inside a browser step, pass a pause that
    lets Playwright run (time.sleep would stop it from delivering events)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        pause()
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def log_in(page: Any, origin: str, username: str, password: str) -> None:
    """Log in to the admin through its form, as a person would."""
    page.goto(f"{origin}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{origin}/admin/")
