"""The project's privacy settings reach the real SDK through the remote config."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from privacy.models import PrivacySettings
from recordings.models import Project, Recording
from recordings.services.storage import recording_events
from tests.e2e.browser import wait_for

pytestmark = pytest.mark.e2e


def visit_and_interact(browser: Any, url: str) -> list[str]:
    """Load the demo page, click and type; return the paths posted to /s/."""
    context = browser.new_context()
    page = context.new_page()
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if "/s/" in r.url else None)
    page.goto(url)
    page.wait_for_function("() => window.posthog && window.posthog.__loaded")
    page.mouse.move(150, 150)
    page.locator("button.add").first.click()
    page.locator("#search").press_sequentially("kettle", delay=30)
    page.wait_for_timeout(7000)  # the recorder flushes every 2 s, the queue every 3 s
    context.close()
    return posted


@pytest.mark.django_db(transaction=True)
def test_a_sample_rate_of_zero_records_nothing(
    browser: Any, origins: dict[str, str]
) -> None:
    project = Project.objects.create(name="Sampled out", is_demo=True)
    PrivacySettings.objects.create(project=project, sample_rate=Decimal(0))
    posted = visit_and_interact(browser, f"{origins['shop']}/demo/")
    assert posted == []
    assert not Recording.objects.filter(project=project).exists()


@pytest.mark.django_db(transaction=True)
def test_the_masking_options_reach_the_sdk(
    browser: Any, origins: dict[str, str]
) -> None:
    project = Project.objects.create(name="Masked", is_demo=True)
    PrivacySettings.objects.create(
        project=project, mask_all_text=True, block_selectors=".products"
    )
    visit_and_interact(browser, f"{origins['shop']}/demo/")
    recording = wait_for(
        lambda: Recording.objects.filter(project=project).first(), 20, "a recording"
    )
    events = recording_events(recording=recording)
    tags = {e["data"]["tag"]: e["data"]["payload"] for e in events if e["type"] == 5}
    # posthog-js records the config it received and the rrweb options it used.
    masking = tags["$remote_config_received"]["masking"]
    assert masking["maskTextSelector"] == "*"
    assert masking["blockSelector"] == ".products"
    options = tags["$session_options"]["sessionRecordingOptions"]
    assert options["maskTextSelector"] == "*"
    assert options["blockSelector"] == ".products"
    # And the page text arrived masked: the heading is stars, not words.
    stored = str(events)
    assert "ReplayHub demo shop" not in stored
    assert "Teapot" not in stored  # inside the blocked product grid
