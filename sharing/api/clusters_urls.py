"""REST API v1 routes for hydra clusters (node-private data; mounted under /api/v1/)."""

from django.urls import path

from sharing.api import clusters_api

urlpatterns = [
    path("clusters/", clusters_api.ClusterListApi.as_view(), name="cluster-list"),
    path("clusters/<int:cluster_id>/", clusters_api.ClusterDetailApi.as_view(), name="cluster-detail"),
    path("clusters/<int:cluster_id>/review/", clusters_api.ClusterReviewApi.as_view(), name="cluster-review"),
    path("clusters/<int:cluster_id>/report/", clusters_api.ClusterReportApi.as_view(), name="cluster-report"),
]
