"""REST API v1 for local matches and alerts: node-private data, `admin` scope only.

Matches and alerts describe this node's own customer accounts (DOMAIN §4.4: they never leave
the provider). API tokens belong to organisations, and any organisation can hold a token on
this node, so the safe rule is the simplest: only tokens with the ``admin`` scope — issued by
the node operator to its own staff tooling — may read them or record decisions.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from indicators.matching_service import DECISIONS, ReleaseError
from indicators.models import Alert, IndicatorMatchState, Match
from sharing.api.errors import ApiError
from sharing.api.node_private import NodePrivateApi
from sharing.api.views import errors
from sharing.net import client_ip
from sharing.numbers import natural_number
from sharing.review import alert_review, quarantine_release_review


class MatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    indicator_id = serializers.CharField(source="indicator.stix_id")
    indicator_modified = serializers.DateTimeField(source="indicator.modified")
    account = serializers.IntegerField(source="account_id", help_text="local account pk")
    account_id = serializers.CharField(source="account.account_id", help_text="the provider's account id")
    kind = serializers.CharField(help_text="mdx_indicator_kind (given or derived)")
    weight = serializers.FloatField(help_text="DOMAIN §4.2 default weight of this kind of evidence")
    evidence = serializers.JSONField(
        help_text="which table/column or similarity measure matched; no raw values"
    )
    matched_at = serializers.DateTimeField()


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.IntegerField(source="account_id")
    account_id = serializers.CharField(source="account.account_id")
    account_tier = serializers.CharField(source="account.tier")
    score = serializers.FloatField(help_text="noisy-OR over supporting matches, tier prior applied, ≤ 0.99")
    status = serializers.CharField(help_text="new | triaged | confirmed | false-positive | withdrawn")
    reviewer = serializers.CharField(source="reviewer.get_username", allow_null=True, default=None)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="AlertDetail")
class AlertDetailSerializer(AlertSerializer):
    matches = MatchSerializer(many=True)


class MatchStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    indicator_id = serializers.CharField(source="indicator.stix_id")
    indicator_modified = serializers.DateTimeField(source="indicator.modified")
    indicator_name = serializers.CharField(source="indicator.name")
    status = serializers.CharField(help_text=" | ".join(IndicatorMatchState.Status.values))
    matched_count = serializers.IntegerField(help_text="local accounts this version matched")
    last_run_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True, help_text="why it is not evaluable or quarantined")


class MatchStatePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = MatchStateSerializer(many=True)


class MatchPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = MatchSerializer(many=True)


class AlertPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = AlertSerializer(many=True)


class AlertDecisionSerializer(serializers.Serializer):
    status = serializers.CharField(help_text=" | ".join(DECISIONS))
    note = serializers.CharField(allow_blank=True, required=False, default="", max_length=5000)

    def validate_status(self, value: str) -> str:
        if value not in DECISIONS:
            raise serializers.ValidationError(f"must be one of {', '.join(DECISIONS)}")
        return value


PAGE_PARAMS = [
    OpenApiParameter("page_size", OpenApiTypes.INT, description="1 … TAXII_MAX_PAGE_SIZE (default 100)"),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="opaque: follow `next`"),
]
INDICATOR_PARAM = OpenApiParameter("indicator", OpenApiTypes.STR, description="an indicator id (any version)")


class _NodePrivateApi(NodePrivateApi):
    private_data = "matches and alerts"


def _int(value: str, name: str) -> int:
    number = natural_number(value)
    if number is None:
        raise ApiError(400, f"{name} must be an integer")
    return number


class MatchListApi(_NodePrivateApi):
    @extend_schema(
        operation_id="matches_list",
        summary="Local matches of indicators against this node's accounts (admin scope)",
        description="Node-private: needs a token with the `admin` scope. Newest first; follow `next`.",
        parameters=[
            INDICATOR_PARAM,
            OpenApiParameter("kind", OpenApiTypes.STR, description="mdx_indicator_kind"),
            OpenApiParameter("account", OpenApiTypes.INT, description="local account pk"),
            *PAGE_PARAMS,
        ],
        responses={200: MatchPageSerializer, **errors(400, 403)},
    )
    def get(self, request):
        params = request.query_params
        matches: QuerySet = Match.objects.select_related("indicator", "account").order_by("-pk")
        if params.get("indicator"):
            matches = matches.filter(indicator__stix_id=params["indicator"])
        if params.get("kind"):
            matches = matches.filter(kind=params["kind"])
        if params.get("account"):
            matches = matches.filter(account_id=_int(params["account"], "account"))
        cursor = self.cursor()
        if cursor:
            matches = matches.filter(pk__lt=_int(cursor[0], "cursor"))
        size = self.page_size()
        rows = list(matches.only(
            "pk", "kind", "weight", "evidence", "matched_at", "account_id",
            "indicator__stix_id", "indicator__modified", "account__account_id",
        )[: size + 1])  # fmt: skip
        link = self.next_link(rows[size - 1].pk) if len(rows) > size else None
        return Response({"next": link, "results": MatchSerializer(rows[:size], many=True).data})


def _alert_filters(alerts: QuerySet, params) -> QuerySet:
    if params.get("status"):
        statuses = [s for s in params["status"].split(",") if s]
        unknown = set(statuses) - set(Alert.Status.values)
        if unknown:
            raise ApiError(
                400, f"unknown status {sorted(unknown)[0]!r}; expected {', '.join(Alert.Status.values)}"
            )
        alerts = alerts.filter(status__in=statuses)
    if params.get("min_score"):
        try:
            alerts = alerts.filter(score__gte=float(params["min_score"]))
        except ValueError:
            raise ApiError(400, "min_score must be a number") from None
    if params.get("indicator"):
        alerts = alerts.filter(
            Exists(
                Match.objects.filter(
                    account_id=OuterRef("account_id"), indicator__stix_id=params["indicator"]
                )
            )
        )
    return alerts


class AlertListApi(_NodePrivateApi):
    @extend_schema(
        operation_id="alerts_list",
        summary="Alerts on this node's accounts, highest score first (admin scope)",
        description="Node-private: needs a token with the `admin` scope. One alert per account; "
        "score ≥ 0.8 is the review queue, 0.5–0.8 the watchlist (DOMAIN §4.2).",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, description="comma-separated alert statuses"),
            OpenApiParameter("min_score", OpenApiTypes.NUMBER, description="0 … 1"),
            INDICATOR_PARAM,
            *PAGE_PARAMS,
        ],
        responses={200: AlertPageSerializer, **errors(400, 403)},
    )
    def get(self, request):
        alerts = _alert_filters(Alert.objects.select_related("account", "reviewer"), request.query_params)
        cursor = self.cursor()
        if cursor:
            try:
                score, pk = float(cursor[0]), int(cursor[1])
            except (IndexError, ValueError):
                raise ApiError(400, "invalid cursor: pass the 'next' link unchanged") from None
            alerts = alerts.filter(Q(score__lt=score) | Q(score=score, pk__gt=pk))
        size = self.page_size()
        rows = list(alerts.order_by("-score", "pk")[: size + 1])
        link = None
        if len(rows) > size:
            last = rows[size - 1]
            link = self.next_link(repr(last.score), last.pk)
        return Response({"next": link, "results": AlertSerializer(rows[:size], many=True).data})


def _alert_or_404(alert_id: int) -> Alert:
    alert = Alert.objects.select_related("account", "reviewer").filter(pk=alert_id).first()
    if alert is None:
        raise ApiError(404, "no such alert")
    return alert


def _detail(alert: Alert) -> dict:
    alert.matches = list(
        Match.objects.filter(account_id=alert.account_id)
        .select_related("indicator", "account")
        .order_by("-pk")[:500]
    )
    return AlertDetailSerializer(alert).data


ALERT_ID = OpenApiParameter("alert_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class AlertDetailApi(_NodePrivateApi):
    @extend_schema(
        operation_id="alerts_retrieve",
        summary="One alert with the matches behind it (admin scope)",
        parameters=[ALERT_ID],
        responses={200: AlertDetailSerializer, **errors(403, 404)},
    )
    def get(self, request, alert_id: int):
        return Response(_detail(_alert_or_404(alert_id)))


class AlertDecisionApi(_NodePrivateApi):
    @extend_schema(
        operation_id="alerts_decide",
        summary="Record a review decision on an alert (admin scope)",
        description="Advisory only: nothing is enforced automatically (DOMAIN §4.2).",
        parameters=[ALERT_ID],
        request=AlertDecisionSerializer,
        responses={200: AlertDetailSerializer, **errors(400, 403, 404)},
    )
    def post(self, request, alert_id: int):
        alert = _alert_or_404(alert_id)
        data = AlertDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert_review(
            alert=alert,
            status=data.validated_data["status"],
            note=data.validated_data["note"],
            token=request.auth,
            ip_address=client_ip(request),
        )
        return Response(_detail(alert))


class MatchStateListApi(_NodePrivateApi):
    @extend_schema(
        operation_id="match_states_list",
        summary="Matching state of each indicator version on this node (admin scope)",
        description="Node-private: needs a token with the `admin` scope. `status=quarantined` lists "
        "the over-matching versions waiting for a reviewer. Newest first; follow `next`.",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, description="comma-separated matching statuses"),
            INDICATOR_PARAM,
            *PAGE_PARAMS,
        ],
        responses={200: MatchStatePageSerializer, **errors(400, 403)},
    )
    def get(self, request):
        params = request.query_params
        states: QuerySet = IndicatorMatchState.objects.select_related("indicator").order_by("-pk")
        if params.get("status"):
            statuses = [s for s in params["status"].split(",") if s]
            unknown = set(statuses) - set(IndicatorMatchState.Status.values)
            if unknown:
                raise ApiError(
                    400,
                    f"unknown status {sorted(unknown)[0]!r}; "
                    f"expected {', '.join(IndicatorMatchState.Status.values)}",
                )
            states = states.filter(status__in=statuses)
        if params.get("indicator"):
            states = states.filter(indicator__stix_id=params["indicator"])
        cursor = self.cursor()
        if cursor:
            states = states.filter(pk__lt=_int(cursor[0], "cursor"))
        size = self.page_size()
        rows = list(states[: size + 1])
        link = self.next_link(rows[size - 1].pk) if len(rows) > size else None
        return Response({"next": link, "results": MatchStateSerializer(rows[:size], many=True).data})


class MatchStateReleaseApi(_NodePrivateApi):
    @extend_schema(
        operation_id="match_states_release",
        summary="Release a quarantined (over-matching) indicator version (admin scope)",
        description="Its matches raise alerts again and it is not quarantined again; audited as "
        "`indicator.release`. 409 when the version is not quarantined.",
        parameters=[OpenApiParameter("state_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={200: MatchStateSerializer, **errors(403, 404, 409)},
    )
    def post(self, request, state_id: int):
        state = IndicatorMatchState.objects.select_related("indicator").filter(pk=state_id).first()
        if state is None:
            raise ApiError(404, "no such matching state")
        try:
            quarantine_release_review(
                indicator=state.indicator, token=request.auth, ip_address=client_ip(request)
            )
        except ReleaseError as exc:
            raise ApiError(409, f"{exc} (status: {state.status})") from None
        state.refresh_from_db()
        return Response(MatchStateSerializer(state).data)
