"""Capture and SDK routes: posthog-js derives every path from its api_host root.

The management API's viewsets are registered by `register`, on the /api/v1 router
that replayhub/urls.py mounts (so another app's API never goes through this one).
"""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import BaseRouter

from recordings import curation_viewsets, viewsets
from recordings.capture import endpoints, sdk_views

app_name = "recordings"


def register(router: BaseRouter) -> None:
    """Put the management API on `router`: /api/v1/projects/…, /api/v1/recordings/…"""
    router.register("projects", viewsets.ProjectViewSet, basename="project")
    router.register("recordings", viewsets.RecordingViewSet, basename="recording")
    curation = curation_viewsets
    on_recording = f"recordings/(?P<recording_code>{curation.UUID_PATTERN})"
    router.register(
        f"{on_recording}/comments",
        curation.RecordingCommentViewSet,
        basename="recording-comment",
    )
    router.register(
        f"{on_recording}/tags", curation.RecordingTagViewSet, basename="recording-tag"
    )
    router.register("comments", curation.CommentViewSet, basename="comment")
    router.register(
        f"projects/(?P<project_code>{curation.UUID_PATTERN})/tags",
        curation.ProjectTagViewSet,
        basename="project-tag",
    )


urlpatterns = [
    # posthog-js start-up: remote config (script, then JSON fallback) and flags.
    path("array/<str:token>/config.js", sdk_views.remote_config_js, name="config-js"),
    path("array/<str:token>/config", sdk_views.remote_config_json, name="config-json"),
    path("flags/", endpoints.FlagsApi.as_view(), name="flags"),
    path("decide/", endpoints.FlagsApi.as_view(), name="decide"),
    # posthog-js bundles: /static/array.js, /static/<version>/lazy-recorder.js, ...
    re_path(
        r"^static/(?P<version>\d+\.\d+\.\d+[^/]*)/(?P<name>[^/]+)$",
        sdk_views.posthog_asset,
        name="posthog-asset-versioned",
    ),
    re_path(r"^static/(?P<name>[^/]+)$", sdk_views.posthog_asset, name="posthog-asset"),
    # Recording and event capture.
    path("s/", endpoints.SnapshotCaptureApi.as_view(), name="snapshots"),
    path("e/", endpoints.EventCaptureApi.as_view(), name="events"),
    path("i/v0/e/", endpoints.EventCaptureApi.as_view(), name="events-v0"),
    path("batch/", endpoints.EventCaptureApi.as_view(), name="events-batch"),
    path("api/v1/ingest/rrweb/", endpoints.IngestApi.as_view(), name="ingest-rrweb"),
    # The management API's OpenAPI schema (of every app's viewsets), and its docs.
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/v1/docs/",
        SpectacularSwaggerView.as_view(url_name="recordings:api-schema"),
        name="api-docs",
    ),
    # The page a new user records themselves on (the health check is replayhub's).
    path("demo/", sdk_views.demo, name="demo"),
]
