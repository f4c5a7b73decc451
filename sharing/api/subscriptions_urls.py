"""REST API v1 routes for federation subscriptions (node configuration; mounted under /api/v1/)."""

from django.urls import path

from sharing.api import subscriptions_api as views

urlpatterns = [
    path("subscriptions/", views.SubscriptionListApi.as_view(), name="subscription-list"),
    path(
        "subscriptions/<str:subscription_id>/",
        views.SubscriptionDetailApi.as_view(),
        name="subscription-detail",
    ),
    path(
        "subscriptions/<str:subscription_id>/poll/",
        views.SubscriptionPollApi.as_view(),
        name="subscription-poll",
    ),
]
