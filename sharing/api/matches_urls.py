"""REST API v1 routes for local matches (node-private data; mounted under /api/v1/)."""

from django.urls import path

from sharing.api import matches_api

urlpatterns = [
    path("matches/", matches_api.MatchListApi.as_view(), name="match-list"),
    path("match-states/", matches_api.MatchStateListApi.as_view(), name="match-state-list"),
    path(
        "match-states/<int:state_id>/release/",
        matches_api.MatchStateReleaseApi.as_view(),
        name="match-state-release",
    ),
    path("alerts/", matches_api.AlertListApi.as_view(), name="alert-list"),
    path("alerts/<int:alert_id>/", matches_api.AlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<int:alert_id>/decision/", matches_api.AlertDecisionApi.as_view(), name="alert-decision"),
]
