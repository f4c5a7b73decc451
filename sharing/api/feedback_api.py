"""REST API v1 for feedback (DOMAIN.md §4.4): what members' feedback says about indicators (hub
side), and the reports this node prepares and sends to its source hubs (member side).

The originator of an indicator (and the node operator) gets the aggregates; any other
organisation that may read the indicator gets only a thresholded lower bound; an organisation
that may not read it gets 404, as for the object itself. No response ever says which member
sighted what.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from sharing.api.errors import ApiError
from sharing.api.views import RestApiView, errors
from sharing.feedback_inbox import feedback_view, originator_feedback
from sharing.feedback_outbound import OPINIONS, REVIEW_STATES, FeedbackError, feedback_prepare, feedback_send
from sharing.models import FeedbackReport
from sharing.net import client_ip
from sharing.numbers import natural_number


class OpinionTallySerializer(serializers.Serializer):
    agree = serializers.IntegerField()
    disagree = serializers.IntegerField()
    neutral = serializers.IntegerField()


@extend_schema_serializer(component_name="FeedbackAggregate")
class FeedbackAggregateSerializer(serializers.Serializer):
    indicator_id = serializers.CharField()
    sighted_by_members = serializers.IntegerField(
        help_text="member organisations that sighted it (not as false positive)"
    )
    total_count = serializers.IntegerField(help_text="accounts sighted, summed over members")
    last_seen = serializers.CharField(allow_null=True, help_text="latest last_seen (truncated to the day)")
    false_positive_members = serializers.IntegerField(help_text="members that reported only false positives")
    opinions = OpinionTallySerializer(help_text="each member's newest opinion, counted once")
    disputed = serializers.BooleanField(
        help_text="two or more members disagree, or members disagree with each other"
    )
    dispute_reason = serializers.CharField(allow_blank=True)


@extend_schema_serializer(component_name="FeedbackThreshold")
class FeedbackThresholdSerializer(serializers.Serializer):
    indicator_id = serializers.CharField()
    sighted_by_at_least = serializers.IntegerField(
        allow_null=True, help_text="a lower bound on the members that sighted it; null below the threshold"
    )
    threshold = serializers.IntegerField(help_text="fewer sighting members than this are not disclosed")


class IndicatorFeedbackApi(RestApiView):
    @extend_schema(
        operation_id="objects_feedback_retrieve",
        summary="Members' feedback on an indicator: aggregates for its originator, a threshold for others",
        parameters=[OpenApiParameter("stix_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: FeedbackAggregateSerializer, **errors(403, 404)},
    )
    def get(self, request, stix_id: str):
        self.require_scope("read")
        view = feedback_view(self.organisation, stix_id) if len(stix_id) <= 300 else None
        if view is None:
            raise ApiError(404, "no such indicator")
        serializer = FeedbackAggregateSerializer if view.full else FeedbackThresholdSerializer
        return Response({"scope": "originator" if view.full else "threshold", **serializer(view.data).data})


class OriginatorFeedbackApi(RestApiView):
    @extend_schema(
        operation_id="feedback_list",
        summary="Feedback aggregates on the indicators your organisation originated, disputed first",
        responses={200: FeedbackAggregateSerializer(many=True), **errors(403)},
    )
    def get(self, request):
        self.require_scope("read")
        aggregates = originator_feedback(self.organisation)
        return Response({"results": [FeedbackAggregateSerializer(a.as_dict()).data for a in aggregates]})


# --- Member side: reports this node sends to source hubs (node-private) ---------------------------

REPORT_ID = OpenApiParameter("report_id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_serializer(component_name="FeedbackReport")
class FeedbackReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    indicator_id = serializers.CharField(source="indicator_stix_id")
    subscription = serializers.CharField(source="subscription.name")
    destination = serializers.CharField(
        help_text="inbox (sightings, opinions) or collection (a cluster report's new objects)"
    )
    cluster = serializers.IntegerField(
        source="cluster_id", allow_null=True, help_text="the hydra cluster a cluster report is about"
    )
    review_state = serializers.CharField()
    count = serializers.IntegerField()
    opinion = serializers.CharField(allow_blank=True)
    payload = serializers.CharField(help_text="the exact TAXII envelope sent (or to be sent), as text")
    status = serializers.CharField(help_text="draft, sent or failed")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    remote_status_id = serializers.CharField(allow_blank=True, help_text="the hub's TAXII status id")


class FeedbackReportInputSerializer(serializers.Serializer):
    indicator_id = serializers.CharField(max_length=300)
    review_state = serializers.ChoiceField(choices=list(REVIEW_STATES))
    opinion = serializers.ChoiceField(choices=list(OPINIONS), required=False, default="")
    explanation = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class FeedbackReportApi(RestApiView):
    """Reports are node-private: admin-scoped tokens of this node's operator only."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.require_operator_admin("feedback reports")

    @staticmethod
    def report(report_id: str) -> FeedbackReport:
        pk = natural_number(report_id)
        found = (
            None
            if pk is None
            else FeedbackReport.objects.select_related("subscription").filter(pk=pk).first()
        )
        if found is None:
            raise ApiError(404, "no such feedback report")
        return found


class FeedbackReportListApi(FeedbackReportApi):
    @extend_schema(
        operation_id="feedback_reports_list",
        summary="Reports prepared for source hubs, newest first (operator admin)",
        responses={200: FeedbackReportSerializer(many=True), **errors(403)},
    )
    def get(self, request):
        rows = FeedbackReport.objects.select_related("subscription")[:500]
        return Response(FeedbackReportSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="feedback_reports_create",
        summary="Prepare a count-only report on a subscribed indicator (nothing is sent yet)",
        request=FeedbackReportInputSerializer,
        responses={201: FeedbackReportSerializer, **errors(400, 403)},
    )
    def post(self, request):
        data = FeedbackReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            report = feedback_prepare(
                stix_id=data.validated_data["indicator_id"],
                review_state=data.validated_data["review_state"],
                opinion=data.validated_data["opinion"],
                explanation=data.validated_data["explanation"],
                user=request.auth.created_by,
            )
        except FeedbackError as exc:
            raise ApiError(400, str(exc)) from None
        return Response(FeedbackReportSerializer(report).data, status=201)


class FeedbackReportDetailApi(FeedbackReportApi):
    @extend_schema(
        operation_id="feedback_reports_retrieve",
        summary="One report, with the exact payload",
        parameters=[REPORT_ID],
        responses={200: FeedbackReportSerializer, **errors(403, 404)},
    )
    def get(self, request, report_id: str):
        return Response(FeedbackReportSerializer(self.report(report_id)).data)


class FeedbackReportSendApi(FeedbackReportApi):
    @extend_schema(
        operation_id="feedback_reports_send",
        summary="Send a prepared report to the source hub's inbox over TAXII",
        description="Synchronous. A failed send is kept with its error (status failed) and may be sent "
        "again; the payload never changes.",
        parameters=[REPORT_ID],
        request=None,
        responses={200: FeedbackReportSerializer, **errors(400, 403, 404)},
    )
    def post(self, request, report_id: str):
        report = self.report(report_id)
        try:
            report = feedback_send(report=report, user=request.auth.created_by, ip_address=client_ip(request))
        except FeedbackError as exc:
            raise ApiError(400, str(exc)) from None
        return Response(FeedbackReportSerializer(report).data)
