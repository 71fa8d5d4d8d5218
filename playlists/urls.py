"""Playlists and share links: the public share pages and, on the /api/v1 router,
their management API (`register`)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import BaseRouter

from playlists import views, viewsets

app_name = "playlists"


def register(router: BaseRouter) -> None:
    """/api/v1/playlists/…, /api/v1/share-links/…, and a recording's share-links/."""
    router.register("playlists", viewsets.PlaylistViewSet, basename="playlist")
    router.register("share-links", viewsets.ShareLinkViewSet, basename="share-link")
    router.register(
        r"recordings/(?P<recording_code>[0-9a-fA-F-]{32,36})/share-links",
        viewsets.RecordingShareLinkViewSet,
        basename="recording-share-link",
    )


urlpatterns = [
    # Public, no login: the token is the key (only its hash is stored).
    path("share/<str:token>/", views.share_page, name="share"),
    path("share/<str:token>/events/", views.share_events, name="share-events"),
    path(
        "share/<str:token>/recordings/<uuid:code>/events/",
        views.share_recording_events,
        name="share-recording-events",
    ),
]
