"""What ReplayHub tells posthog-js, and the posthog-js files it serves to browsers."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings

from privacy.models import PrivacySettings, split_lines, split_selectors
from privacy.policy import privacy_for
from recordings.models import Project

SNAPSHOT_ENDPOINT = "/s/"
EVENTS_ENDPOINT = "/i/v0/e/"
_ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*\.js")


def remote_config(project: Project) -> dict[str, Any]:
    """The RemoteConfig posthog-js fetches at start-up (wire-protocol.md §3)."""
    privacy = privacy_for(project)
    return {
        "token": project.token,
        # Without gzip-js here the SDK falls back to uncompressed JSON bodies, which
        # are bigger and cost a CORS preflight per request.
        "supportedCompression": ["gzip-js", "base64"],
        "hasFeatureFlags": False,
        "capturePerformance": {
            "network_timing": privacy.network_timing_capture,
            "web_vitals": False,
        },
        "analytics": {"endpoint": EVENTS_ENDPOINT},
        "autocapture_opt_out": False,
        "autocaptureExceptions": True,
        "captureDeadClicks": True,
        "elementsChainAsString": True,
        "heatmaps": False,
        "surveys": False,
        "productTours": False,
        "siteApps": [],
        "sessionRecording": _session_recording(project, privacy),
    }


def _session_recording(
    project: Project, privacy: PrivacySettings
) -> dict[str, Any] | bool:
    # `false` (not a missing key) makes the SDK stop and discard its buffer.
    if not project.recording_enabled or project.over_cap_since is not None:
        return False
    return {
        "endpoint": SNAPSHOT_ENDPOINT,
        "consoleLogRecordingEnabled": privacy.console_log_capture,
        "recordCanvas": False,
        "networkPayloadCapture": {
            "recordHeaders": privacy.network_record_headers,
            "recordBody": privacy.network_record_body,
        },
        "masking": _masking(privacy),
        "sampleRate": _sample_rate(privacy),
        "minimumDurationMilliseconds": privacy.minimum_duration_ms or None,
        "linkedFlag": privacy.linked_flag or None,
        "urlTriggers": _url_rules(privacy.url_triggers),
        "urlBlocklist": _url_rules(privacy.url_blocklist),
        "eventTriggers": [],
    }


def _masking(privacy: PrivacySettings) -> dict[str, Any]:
    masked = split_selectors(privacy.mask_selectors)
    blocked = split_selectors(privacy.block_selectors)
    return {
        "maskAllInputs": privacy.mask_all_inputs,
        # rrweb masks the text of every element a selector matches: "*" is all text.
        "maskTextSelector": "*" if privacy.mask_all_text else ", ".join(masked) or None,
        "blockSelector": ", ".join(blocked) or None,
    }


def _sample_rate(privacy: PrivacySettings) -> str | None:
    # The SDK takes a numeric string; null records every session.
    rate = privacy.sample_rate
    return None if rate >= 1 else f"{rate:.3f}"


def _url_rules(lines: str) -> list[dict[str, str]]:
    return [{"url": pattern, "matching": "regex"} for pattern in split_lines(lines)]


def remote_config_script(project: Project) -> str:
    """config.js: registers the config under the token, as posthog-js expects."""
    config = json.dumps({"config": remote_config(project), "siteApps": []})
    token = json.dumps(project.token)
    return (
        "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"window._POSTHOG_REMOTE_CONFIG[{token}]={config};}})();\n"
    )


def posthog_dist() -> Path:
    return Path(settings.NODE_MODULES_DIR) / "posthog-js" / "dist"


@functools.cache
def posthog_version() -> str:
    package = Path(settings.NODE_MODULES_DIR) / "posthog-js" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return ""


def posthog_asset(name: str) -> Path | None:
    """A posthog-js bundle (array.js, lazy-recorder.js...) by name, if it exists.

    The name is checked against a strict pattern before touching the file system, so a
    request can never reach outside the package's dist folder.
    """
    if not _ASSET_NAME.fullmatch(name) or ".." in name:
        return None
    path = posthog_dist() / name
    return path if path.is_file() else None


def snippet(project: Project) -> str:
    """The HTML a site pastes into its pages to record with posthog-js."""
    base = settings.REPLAYHUB_BASE_URL
    token = json.dumps(project.token)
    return (
        f'<script src="{base}/static/array.js" crossorigin="anonymous"></script>\n'
        "<script>\n"
        f"  posthog.init({token}, {{\n"
        f'    api_host: "{base}",\n'
        "    person_profiles: 'identified_only',\n"
        "  })\n"
        "</script>"
    )
