"""Root URL configuration."""

from __future__ import annotations

from types import ModuleType

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from rest_framework.routers import SimpleRouter

import playlists.urls
import recordings.urls
from replayhub.health import health

Routes = list[URLPattern | URLResolver]


def app_routes(urls: ModuleType) -> tuple[Routes, str]:
    """An app's routes and its viewsets on an /api/v1 router, under its namespace.

    Each app registers its own viewsets (`urls.register(router)`), so its API
    names stay its own (`recordings:recording-detail`) and no app's URLs import
    another's.
    """
    router = SimpleRouter()
    urls.register(router)
    return [*urls.urlpatterns, path("api/v1/", include(router.urls))], urls.app_name


# admin.site is recordings.admin_site.ReplayAdminSite (see recordings.apps).
urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
    path("", include(app_routes(recordings.urls))),
    path("", include(app_routes(playlists.urls))),
]
