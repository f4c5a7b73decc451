"""The URLconf the OpenAPI schema is generated from: the REST API only, not TAXII or the web UI."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("sharing.api.urls"))]
