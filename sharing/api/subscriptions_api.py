"""REST API v1: federation subscriptions and their health, for the node operator (never the token)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response

from sharing.api.errors import ApiError
from sharing.api.serializers import CollectionRefSerializer
from sharing.api.views import RestApiView, errors
from sharing.federation import subscription_poll_request
from sharing.models import Subscription
from sharing.net import client_ip
from sharing.numbers import natural_number

SUBSCRIPTION_ID = OpenApiParameter("subscription_id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_serializer(component_name="Subscription")
class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    discovery_url = serializers.CharField()
    api_root_url = serializers.CharField(allow_blank=True, help_text="resolved at the first poll")
    remote_collection_id = serializers.UUIDField()
    collection = serializers.SerializerMethodField(help_text="the local collection objects land in")
    organisation = serializers.CharField(
        source="organisation.name", help_text="the organisation pulled objects are attributed to"
    )
    token_source = serializers.SerializerMethodField(help_text="where the token is kept; never the token")
    poll_interval = serializers.IntegerField(help_text="seconds")
    review = serializers.BooleanField(help_text="pulled objects wait for review")
    inbox_collection_id = serializers.UUIDField(
        allow_null=True, help_text="the remote hub's feedback inbox; null when feedback is not configured"
    )
    member_identity = serializers.CharField(
        allow_blank=True, help_text="this node's identity at the remote hub"
    )
    is_active = serializers.BooleanField()
    is_polling = serializers.SerializerMethodField()
    cursor = serializers.CharField(source="cursor_added_after", allow_blank=True, help_text="added_after")
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
    consecutive_failures = serializers.IntegerField()
    objects_received = serializers.IntegerField()
    next_poll_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    @extend_schema_field(CollectionRefSerializer)
    def get_collection(self, subscription: Subscription) -> dict:
        return {"id": str(subscription.collection_id), "title": subscription.collection.title}

    def get_token_source(self, subscription: Subscription) -> str:
        return f"env:{subscription.token_env}" if subscription.token_env else "encrypted"

    def get_is_polling(self, subscription: Subscription) -> bool:
        return subscription.lease_until is not None and subscription.lease_until > timezone.now()


class SubscriptionApi(RestApiView):
    """Subscriptions are node configuration: admin-scoped tokens of the node's hub operator only.

    A hub-kind organisation that is itself a subscription's source does not count: it stands
    for a remote hub, not for this node's operator.
    """

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.require_operator_admin("subscriptions")

    def subscription(self, subscription_id: str) -> Subscription:
        pk = natural_number(subscription_id)
        if pk is None:
            raise ApiError(404, "no such subscription")
        found = Subscription.objects.select_related("collection", "organisation").filter(pk=pk).first()
        if found is None:
            raise ApiError(404, "no such subscription")
        return found


class SubscriptionListApi(SubscriptionApi):
    @extend_schema(
        operation_id="subscriptions_list",
        summary="Federation subscriptions and their health",
        responses={200: SubscriptionSerializer(many=True), **errors(403)},
    )
    def get(self, request):
        rows = Subscription.objects.select_related("collection", "organisation").order_by("name")
        return Response(SubscriptionSerializer(rows, many=True).data)


class SubscriptionDetailApi(SubscriptionApi):
    @extend_schema(
        operation_id="subscriptions_retrieve",
        summary="One federation subscription and its health",
        parameters=[SUBSCRIPTION_ID],
        responses={200: SubscriptionSerializer, **errors(403, 404)},
    )
    def get(self, request, subscription_id: str):
        return Response(SubscriptionSerializer(self.subscription(subscription_id)).data)


class SubscriptionPollApi(SubscriptionApi):
    @extend_schema_serializer(component_name="SubscriptionPollQueued")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        queued = serializers.BooleanField()

    @extend_schema(
        operation_id="subscriptions_poll",
        summary="Poll a subscription now (enqueued)",
        description="Enqueues one poll, even if the subscription is paused or not yet due. A poll already "
        "running is not doubled: the queued one finds the subscription claimed and does nothing.",
        parameters=[SUBSCRIPTION_ID],
        request=None,
        responses={202: OutputSerializer, **errors(403, 404)},
    )
    def post(self, request, subscription_id: str):
        subscription = self.subscription(subscription_id)
        subscription_poll_request(
            subscription=subscription, token=request.auth, ip_address=client_ip(request)
        )
        return Response({"id": subscription.pk, "queued": True}, status=202)
