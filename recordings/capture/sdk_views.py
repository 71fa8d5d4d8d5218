"""Plain Django views: what posthog-js loads at start-up, and the demo page."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from recordings.capture import sdk_config
from recordings.models import Project

logger = logging.getLogger(__name__)


def _cors(response: HttpResponseBase) -> HttpResponseBase:
    # Loaded cross-origin with crossorigin="anonymous": without this header the
    # browser refuses the script and posthog-js records nothing.
    response["Access-Control-Allow-Origin"] = "*"
    return response


# posthog-js loads config.js as a <script>: an unknown token gets a 404 (the SDK
# then tries /config, as with any server without config.js) with a body that is
# harmless JavaScript. It never echoes the token, which could close the comment.
UNKNOWN_TOKEN_JS = "/* ReplayHub: unknown project token */\n"
UNKNOWN_TOKEN = {"error": "invalid_token", "detail": "unknown project token"}


def _config_response(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "public, max-age=60"
    return _cors(response)


@require_GET
def remote_config_js(request: HttpRequest, token: str) -> HttpResponseBase:
    project = Project.objects.for_token(token).first()
    if project is None:
        unknown = HttpResponse(
            UNKNOWN_TOKEN_JS, content_type="text/javascript", status=404
        )
        return _config_response(unknown)
    script = sdk_config.remote_config_script(project)
    return _config_response(HttpResponse(script, content_type="text/javascript"))


@require_GET
def remote_config_json(request: HttpRequest, token: str) -> HttpResponseBase:
    project = Project.objects.for_token(token).first()
    if project is None:
        return _config_response(JsonResponse(UNKNOWN_TOKEN, status=404))
    return _config_response(JsonResponse(sdk_config.remote_config(project)))


@require_GET
def posthog_asset(
    request: HttpRequest, name: str, version: str = ""
) -> HttpResponseBase:
    """posthog-js's own bundles from the npm package, at the paths the SDK asks for."""
    path = sdk_config.posthog_asset(name)
    if path is None:
        raise Http404(f"no posthog-js bundle named {name!r}")
    installed = sdk_config.posthog_version()
    if version and version != installed:
        logger.warning(
            "SDK %s asked for %s; serving posthog-js %s", version, name, installed
        )
    response = FileResponse(path.open("rb"), content_type="text/javascript")
    # A versioned path never changes; the unversioned array.js does on upgrade.
    immutable = version and version == installed
    response["Cache-Control"] = (
        "public, max-age=31536000, immutable" if immutable else "public, max-age=300"
    )
    return _cors(response)


def _posthog_init(
    project: Project, api_host: str, request: HttpRequest
) -> dict[str, Any]:
    init: dict[str, Any] = {"token": project.token, "api_host": api_host}
    init["session_recording"] = {}
    if request.GET.get("client_masking") == "off":
        # Shows the server-side firewall at work: the browser sends clear text.
        init["session_recording"] = {"maskAllInputs": False}
    return init


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """A page that records itself with posthog-js pointed at this server.

    Anyone may load it, so it names no project but the one a superuser marked as
    the demo project (whatever the query string says), and it is there only while
    REPLAYHUB_DEMO_PAGE is on (off by default in production mode).
    """
    if not settings.REPLAYHUB_DEMO_PAGE:
        raise Http404("the demo page is off")
    project = Project.objects.filter(is_demo=True, recording_enabled=True).first()
    api_host = settings.REPLAYHUB_DEMO_API_HOST or request.build_absolute_uri("/")
    api_host = api_host.rstrip("/")
    context = {
        "project": project,
        "api_host": api_host,
        "posthog_init": _posthog_init(project, api_host, request) if project else {},
    }
    return render(
        request, "recordings/demo.html", context, status=200 if project else 404
    )
