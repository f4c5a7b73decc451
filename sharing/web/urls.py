"""Web UI routes (server-rendered pages for reviewers and admins). ``home`` is the dashboard."""

from django.urls import path

from sharing.web.views import account, alerts, clusters, directory, feedback, objects, review, subscriptions

app_name = "web"

urlpatterns = [
    path("review/", review.queue, name="queue"),
    path("review/decide/", review.queue_bulk, name="queue-bulk"),
    path("submissions/<uuid:submission_id>/", review.submission_detail, name="submission"),
    path("submissions/<uuid:submission_id>/approve/", review.submission_approve, name="submission-approve"),
    path("submissions/<uuid:submission_id>/reject/", review.submission_reject, name="submission-reject"),
    path("submissions/items/<int:item_id>/approve/", review.item_approve, name="item-approve"),
    path("submissions/items/<int:item_id>/reject/", review.item_reject, name="item-reject"),
    path("objects/", objects.object_list, name="objects"),
    path("objects/<int:pk>/", objects.object_detail, name="object-detail"),
    path("objects/<int:pk>/release/", objects.quarantine_release_view, name="object-release"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:pk>/", alerts.alert_detail, name="alert"),
    path("alerts/<int:pk>/decide/", alerts.alert_decide_view, name="alert-decide"),
    path("accounts/<int:pk>/", alerts.account_detail, name="account"),
    path("clusters/", clusters.cluster_list, name="clusters"),
    path("clusters/<int:pk>/", clusters.cluster_detail, name="cluster"),
    path("clusters/<int:pk>/review/", clusters.cluster_review_view, name="cluster-review"),
    path("clusters/<int:pk>/report/", clusters.cluster_report_view, name="cluster-report"),
    path("feedback/", feedback.feedback_overview, name="feedback"),
    path("feedback/new/", feedback.feedback_new, name="feedback-new"),
    path("feedback/originated/", feedback.feedback_originated, name="feedback-originated"),
    path("feedback/<int:pk>/", feedback.feedback_report, name="feedback-report"),
    path("feedback/<int:pk>/send/", feedback.feedback_report_send, name="feedback-report-send"),
    path("feedback/<int:pk>/discard/", feedback.feedback_report_discard, name="feedback-report-discard"),
    path("subscriptions/", subscriptions.subscription_list, name="subscriptions"),
    path("subscriptions/<int:pk>/poll/", subscriptions.subscription_poll, name="subscription-poll"),
    path("organisations/", directory.organisations, name="organisations"),
    path("organisations/new/", directory.organisation_create_view, name="organisation-create"),
    path("organisations/<int:pk>/", directory.organisation_detail, name="organisation"),
    path("organisations/<int:pk>/policy/", directory.organisation_policy, name="organisation-policy"),
    path(
        "organisations/<int:pk>/members/", directory.organisation_member_add, name="organisation-member-add"
    ),
    path(
        "organisations/<int:pk>/members/<int:membership_id>/remove/",
        directory.organisation_member_remove,
        name="organisation-member-remove",
    ),
    path("tokens/", directory.tokens, name="tokens"),
    path("tokens/issue/", directory.token_issue_view, name="token-issue"),
    path("tokens/<int:pk>/revoke/", directory.token_revoke_view, name="token-revoke"),
    path("collections/", directory.collections, name="collections"),
    path("collections/new/", directory.collection_create_view, name="collection-create"),
    path("collections/<uuid:pk>/", directory.collection_detail, name="collection"),
    path("collections/<uuid:pk>/grants/", directory.collection_grant, name="collection-grant"),
    path("audit/", directory.audit_log, name="audit"),
    path("account/security/", account.otp_setup, name="otp-setup"),
    path("account/verify/", account.otp_verify, name="otp-verify"),
]
