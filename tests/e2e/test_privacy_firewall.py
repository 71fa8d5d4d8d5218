"""The promise: a card number typed into a recorded page is never written to storage.

posthog-js records the demo checkout with masking switched OFF on the client; the
person types the test card and an email and the page logs the card to the console.
Afterwards no byte of storage (blobs and live chunk rows, decompressed) or of the
database holds either, and the recording still replays in the admin.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from recordings.models import Project, Recording, SnapshotChunk
from tests.e2e.browser import log_in, wait_for

pytestmark = pytest.mark.e2e

CARD = "4242 4242 4242 4242"
EMAIL = "jane.doe@example.com"
FORBIDDEN = [CARD.encode(), CARD.replace(" ", "").encode(), EMAIL.encode()]


def type_checkout(browser: Any, url: str) -> list[str]:
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(url)
    page.wait_for_function("() => window.posthog && window.posthog.__loaded")
    page.mouse.move(100, 100)
    page.locator("#email").click()
    page.locator("#email").press_sequentially(EMAIL, delay=20)
    page.locator("#card").click()
    page.locator("#card").press_sequentially(CARD, delay=20)
    page.locator("#pay").click()
    page.wait_for_timeout(7000)  # recorder flush (2 s) + request queue (3 s)
    context.close()
    return console


def blob_bytes(blob_dir: Path) -> list[tuple[Path, bytes]]:
    found = []
    for path in blob_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            found.append(
                (path, gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
            )
    return found


def live_row_bytes() -> list[tuple[str, bytes]]:
    """Live chunks' events, decompressed (a database dump shows them gzip'd)."""
    rows = SnapshotChunk.objects.filter(data__isnull=False).values_list("pk", "data")
    return [
        (f"chunk row {pk}", gzip.decompress(bytes(data)))
        for pk, data in rows
        if data is not None
    ]


def database_dump() -> bytes:
    out = io.StringIO()
    call_command("dumpdata", format="json", stdout=out)
    return out.getvalue().encode()


@pytest.mark.django_db(transaction=True)
def test_no_card_number_or_email_reaches_storage(
    browser: Any, origins: dict[str, str], settings: Any, tmp_path: Path
) -> None:
    blob_dir = tmp_path / "blobs"
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "recordings.blobs.AtomicFileSystemStorage",
            "OPTIONS": {"location": str(blob_dir), "allow_overwrite": True},
        },
    }
    project = Project.objects.create(name="Checkout shop", is_demo=True)
    User.objects.create_superuser("alice", "alice@example.org", "correct horse")
    console = type_checkout(browser, f"{origins['shop']}/demo/?client_masking=off")
    # The browser really did see the clear-text card: the client did not mask it.
    assert any(CARD in line for line in console), console

    recording = wait_for(
        lambda: Recording.objects.filter(project=project, keypress_count__gt=0).first(),
        20,
        "the checkout recording",
    )
    stored = [*blob_bytes(blob_dir), *live_row_bytes()]
    assert stored, "nothing was stored"
    for where, data in stored:
        for secret in FORBIDDEN:
            assert secret not in data, f"{secret!r} found in {where}"
    dump = database_dump()
    for secret in FORBIDDEN:
        assert secret not in dump, f"{secret!r} found in the database"

    context = browser.new_context()
    page = context.new_page()
    log_in(page, origins["admin"], "alice", "correct horse")
    page.goto(f"{origins['admin']}{recording.player_url()}")
    replay = page.frame_locator(".replayer-wrapper iframe")
    heading = replay.get_by_role("heading", name="ReplayHub demo shop")
    heading.wait_for(state="attached", timeout=15000)
    # The blocked element never reached storage, so the replay cannot show it.
    assert replay.locator("#secret-note").count() == 0
    context.close()
