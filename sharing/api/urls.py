"""REST API v1 URL layout (mounted at /api/v1/), plus its OpenAPI schema and Swagger UI."""

from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from sharing.api import (
    schema,  # noqa: F401  (registers the token auth scheme with drf-spectacular)
    views,
)

app_name = "api"

_collection = "collections/<str:collection_id>/"
_public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}


def unknown_api_path(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/v1/ answer with a JSON 404, not an HTML page."""
    return JsonResponse({"detail": "no such API endpoint (paths end with a slash)"}, status=404)


urlpatterns = [
    path("collections/", views.CollectionListApi.as_view(), name="collection-list"),
    path(_collection + "submissions/", views.SubmissionCreateApi.as_view(), name="submission-create"),
    path(_collection + "export/stix/", views.CollectionExportStixApi.as_view(), name="export-stix"),
    path(_collection + "export/csv/", views.CollectionExportCsvApi.as_view(), name="export-csv"),
    path(_collection + "export/ips.txt", views.CollectionExportIpsApi.as_view(), name="export-ips"),
    path(_collection + "export/hashes.txt", views.CollectionExportHashesApi.as_view(), name="export-hashes"),
    path("submissions/<str:submission_id>/", views.SubmissionDetailApi.as_view(), name="submission-detail"),
    path("objects/", views.ObjectListApi.as_view(), name="object-list"),
    path("objects/<str:stix_id>/", views.ObjectDetailApi.as_view(), name="object-detail"),
    path("tokens/", views.TokenCollectionApi.as_view(), name="token-list"),
    path("tokens/<str:prefix>/revoke/", views.TokenRevokeApi.as_view(), name="token-revoke"),
    path("", include("sharing.api.accounts_urls")),
    path("", include("sharing.api.matches_urls")),
    path("", include("sharing.api.clusters_urls")),
    path("", include("sharing.api.subscriptions_urls")),
    path("", include("sharing.api.feedback_urls")),
    path("schema/", SpectacularAPIView.as_view(urlconf="sharing.api.schema_urls", **_public), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", **_public), name="docs"),
    re_path(r"^.*$", unknown_api_path),
]
