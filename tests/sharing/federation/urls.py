"""Test URLconf: the project's URLs plus the subscription API under /api/v1/ (until it is included)."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/v1/", include(("sharing.api.subscriptions_urls", "api"), namespace="federation-api")),
    *project_urlpatterns,
]
