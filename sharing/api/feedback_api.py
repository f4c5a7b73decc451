"""REST API v1: what members' feedback says about indicators (hub side, DOMAIN.md §4.4).

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
