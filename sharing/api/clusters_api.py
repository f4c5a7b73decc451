"""REST API v1 for hydra clusters (DOMAIN §4.3): node-private data, operator `admin` tokens only.

Clusters list this node's own customer accounts, which never leave the provider (§4.3.6,
§4.4), so the rule is the one of matches and alerts: only an admin-scoped token of the node's
operator organisation may read them or record a review.
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from indicators.cluster_service import REVIEW_STATUSES
from indicators.models import AccountCluster, AccountClusterMember
from sharing.api.errors import ApiError
from sharing.api.feedback_api import FeedbackReportSerializer
from sharing.api.node_private import NodePrivateApi
from sharing.api.views import errors
from sharing.cluster_report import cluster_report_prepare
from sharing.feedback_outbound import FeedbackError
from sharing.net import client_ip
from sharing.numbers import natural_number
from sharing.review import cluster_decision_review

MAX_MEMBERS = 10_000  # members listed in one detail response; `size` always has the total


class ClusterSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="stable across linking runs")
    size = serializers.IntegerField(help_text="member accounts")
    link_counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="link type -> member accounts tied to another member by it (DOMAIN §4.3.2–4.3.3)",
    )
    indicator_hits = serializers.IntegerField(help_text="members matched by an active indicator")
    max_alert_score = serializers.FloatField(allow_null=True)
    narrow_score_median = serializers.FloatField(allow_null=True)
    top_template_share = serializers.FloatField(allow_null=True)
    is_candidate = serializers.BooleanField(help_text="hydra-cluster candidate (DOMAIN §4.3.5)")
    candidate_reason = serializers.CharField(allow_blank=True)
    status = serializers.CharField(help_text=" | ".join(REVIEW_STATUSES))
    reviewer = serializers.CharField(source="reviewer.get_username", allow_null=True, default=None)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    review_note = serializers.CharField(allow_blank=True)
    first_seen = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ClusterMemberSerializer(serializers.Serializer):
    account = serializers.IntegerField(source="account_id", help_text="local account pk")
    account_id = serializers.CharField(source="account.account_id", help_text="the provider's account id")
    alert_score = serializers.FloatField(source="score", allow_null=True)


@extend_schema_serializer(component_name="ClusterDetail")
class ClusterDetailSerializer(ClusterSerializer):
    members = ClusterMemberSerializer(
        many=True, help_text=f"highest alert score first, at most {MAX_MEMBERS}"
    )
    members_truncated = serializers.BooleanField(
        help_text="true when the cluster has more members than listed"
    )


class ClusterPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = ClusterSerializer(many=True)


class ClusterReviewSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=REVIEW_STATUSES, help_text=" | ".join(REVIEW_STATUSES))
    note = serializers.CharField(allow_blank=True, required=False, default="", max_length=5000)


class ClusterReportInputSerializer(serializers.Serializer):
    indicator_id = serializers.CharField(
        max_length=300, required=False, default="", allow_blank=True,
        help_text="the triggering indicator; default: the subscribed one that matched most members",
    )  # fmt: skip


class ClusterReportsSerializer(serializers.Serializer):
    reports = FeedbackReportSerializer(many=True, help_text="to the hub's collection, then to its inbox")


class _ClustersApi(NodePrivateApi):
    private_data = "clusters"


def _filters(clusters: QuerySet, params) -> QuerySet:
    candidate = params.get("candidate")
    if candidate:
        if candidate not in ("true", "false"):
            raise ApiError(400, "candidate must be true or false")
        clusters = clusters.filter(is_candidate=candidate == "true")
    if params.get("status"):
        statuses = [s for s in params["status"].split(",") if s]
        unknown = set(statuses) - set(REVIEW_STATUSES)
        if unknown:
            raise ApiError(
                400, f"unknown status {sorted(unknown)[0]!r}; expected {', '.join(REVIEW_STATUSES)}"
            )
        clusters = clusters.filter(status__in=statuses)
    if params.get("min_size"):
        min_size = natural_number(params["min_size"])
        if min_size is None:
            raise ApiError(400, "min_size must be a non-negative integer")
        clusters = clusters.filter(size__gte=min_size)
    return clusters


CLUSTER_ID = OpenApiParameter("cluster_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class ClusterListApi(_ClustersApi):
    @extend_schema(
        operation_id="clusters_list",
        summary="Hydra clusters of this node's accounts, largest first (admin scope)",
        description="Node-private: needs an admin-scoped token of the node operator. Linked hourly "
        "over a rolling window (DOMAIN §4.3); follow `next`.",
        parameters=[
            OpenApiParameter(
                "candidate", OpenApiTypes.BOOL, description="only candidates (true) or non-candidates"
            ),
            OpenApiParameter("status", OpenApiTypes.STR, description="comma-separated review statuses"),
            OpenApiParameter("min_size", OpenApiTypes.INT, description="at least this many accounts"),
            OpenApiParameter(
                "page_size", OpenApiTypes.INT, description="1 … TAXII_MAX_PAGE_SIZE (default 100)"
            ),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="opaque: follow `next`"),
        ],
        responses={200: ClusterPageSerializer, **errors(400, 403)},
    )
    def get(self, request):
        clusters = _filters(AccountCluster.objects.select_related("reviewer"), request.query_params)
        after = self.cursor_numbers(2)  # (size, id) of the previous page's last cluster
        if after is not None:
            size, pk = after
            clusters = clusters.filter(Q(size__lt=size) | Q(size=size, pk__gt=pk))
        limit = self.page_size()
        rows = list(clusters.order_by("-size", "pk")[: limit + 1])
        link = self.next_link(rows[limit - 1].size, rows[limit - 1].pk) if len(rows) > limit else None
        return Response({"next": link, "results": ClusterSerializer(rows[:limit], many=True).data})


def _cluster_or_404(cluster_id: int) -> AccountCluster:
    cluster = AccountCluster.objects.select_related("reviewer").filter(pk=cluster_id).first()
    if cluster is None:
        raise ApiError(404, "no such cluster")
    return cluster


def _detail(cluster: AccountCluster) -> dict:
    members = list(
        AccountClusterMember.objects.filter(cluster=cluster)
        .select_related("account")
        .annotate(score=F("account__alert__score"))
        .order_by(F("score").desc(nulls_last=True), "account_id")[: MAX_MEMBERS + 1]
    )
    data = ClusterSerializer(cluster).data
    data["members"] = ClusterMemberSerializer(members[:MAX_MEMBERS], many=True).data
    data["members_truncated"] = len(members) > MAX_MEMBERS
    return data


class ClusterDetailApi(_ClustersApi):
    @extend_schema(
        operation_id="clusters_retrieve",
        summary="One hydra cluster with its member accounts (admin scope)",
        description="Node-private: the member list never leaves this node (DOMAIN §4.3.6).",
        parameters=[CLUSTER_ID],
        responses={200: ClusterDetailSerializer, **errors(403, 404)},
    )
    def get(self, request, cluster_id: int):
        return Response(_detail(_cluster_or_404(cluster_id)))


class ClusterReviewApi(_ClustersApi):
    @extend_schema(
        operation_id="clusters_review",
        summary="Record a review decision on a hydra cluster (admin scope)",
        description="`confirmed`, `dismissed`, or `new` to reopen. Advisory only: nothing is enforced "
        "automatically. Relinking keeps the decision; audited as `cluster.review`.",
        parameters=[CLUSTER_ID],
        request=ClusterReviewSerializer,
        responses={200: ClusterDetailSerializer, **errors(400, 403, 404)},
    )
    def post(self, request, cluster_id: int):
        cluster = _cluster_or_404(cluster_id)
        data = ClusterReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cluster_decision_review(
            cluster=cluster,
            status=data.validated_data["status"],
            note=data.validated_data["note"],
            token=request.auth,
            ip_address=client_ip(request),
        )
        return Response(_detail(cluster))


class ClusterReportApi(_ClustersApi):
    @extend_schema(
        operation_id="clusters_report",
        summary="Prepare the reports of a confirmed hydra cluster to its hub (admin scope)",
        description="DOMAIN §4.3.6. Two drafts, nothing sent: for the hub's collection an "
        "infrastructure object (account count rounded), new indicators for identifiers only the "
        "cluster's accounts share and their relationships; for its inbox a sighting of the "
        "triggering indicator whose count is its bucket's lower bound. Refused (400) unless the "
        "cluster is confirmed and its members are those reviewed. Send each with "
        "`POST /api/v1/feedback/reports/{id}/send/`.",
        parameters=[CLUSTER_ID],
        request=ClusterReportInputSerializer,
        responses={201: ClusterReportsSerializer, **errors(400, 403, 404)},
    )
    def post(self, request, cluster_id: int):
        cluster = _cluster_or_404(cluster_id)
        data = ClusterReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            reports = cluster_report_prepare(
                cluster=cluster, indicator=data.validated_data["indicator_id"], user=request.auth.created_by
            )
        except FeedbackError as exc:
            raise ApiError(400, str(exc)) from None
        return Response({"reports": FeedbackReportSerializer(reports, many=True).data}, status=201)
