"""REST API v1 routes for feedback aggregates (mounted under /api/v1/)."""

from django.urls import path

from sharing.api import feedback_api as views

urlpatterns = [
    path("feedback/", views.OriginatorFeedbackApi.as_view(), name="feedback-list"),
    path("feedback/reports/", views.FeedbackReportListApi.as_view(), name="feedback-report-list"),
    path(
        "feedback/reports/<str:report_id>/", views.FeedbackReportDetailApi.as_view(), name="feedback-report"
    ),
    path(
        "feedback/reports/<str:report_id>/send/",
        views.FeedbackReportSendApi.as_view(),
        name="feedback-report-send",
    ),
    path("objects/<str:stix_id>/feedback/", views.IndicatorFeedbackApi.as_view(), name="object-feedback"),
]
