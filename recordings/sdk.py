"""What ReplayHub tells posthog-js, and the posthog-js files it serves to browsers."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings

from recordings.models import Project

SNAPSHOT_ENDPOINT = "/s/"
EVENTS_ENDPOINT = "/i/v0/e/"
_ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*\.js")


def remote_config(project: Project) -> dict[str, Any]:
    """The RemoteConfig posthog-js fetches at start-up (wire-protocol.md §3)."""
    return {
        "token": project.token,
        # Without gzip-js here the SDK falls back to uncompressed JSON bodies, which
        # are bigger and cost a CORS preflight per request.
        "supportedCompression": ["gzip-js", "base64"],
        "hasFeatureFlags": False,
        "capturePerformance": {"network_timing": True, "web_vitals": False},
        "analytics": {"endpoint": EVENTS_ENDPOINT},
        "autocapture_opt_out": False,
        "autocaptureExceptions": True,
        "captureDeadClicks": True,
        "elementsChainAsString": True,
        "heatmaps": False,
        "surveys": False,
        "productTours": False,
        "siteApps": [],
        "sessionRecording": _session_recording(project),
    }


def _session_recording(project: Project) -> dict[str, Any] | bool:
    # `false` (not a missing key) makes the SDK stop and discard its buffer.
    if not project.recording_enabled:
        return False
    return {
        "endpoint": SNAPSHOT_ENDPOINT,
        "consoleLogRecordingEnabled": True,
        "recordCanvas": False,
        # Timings only: headers and bodies carry tokens and PII, so they stay opt-in.
        "networkPayloadCapture": {"recordHeaders": False, "recordBody": False},
        "masking": {"maskAllInputs": True},
        "urlTriggers": [],
        "urlBlocklist": [],
        "eventTriggers": [],
    }


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
