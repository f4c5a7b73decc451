"""REST API v1: one APIView per operation; reads use the grant + TLP filter, writes use services."""

from __future__ import annotations

import uuid
from collections import defaultdict

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from indicators.stix import StixError, load_json, objects_from_envelope
from sharing.api import exports
from sharing.api.errors import ApiError, api_exception_handler
from sharing.api.pagination import KeysetPagination
from sharing.api.selectors import (
    ObjectSearch,
    collections_of,
    export_entries,
    object_entries,
    object_relationships,
    object_search,
)
from sharing.api.serializers import (
    BundleSerializer,
    ErrorSerializer,
    ObjectSearchFilterSerializer,
    ObjectVersionSerializer,
    StatusResourceSerializer,
    StixObjectPageSerializer,
    StixObjectResultSerializer,
    stix_object_result,
)
from sharing.api.throttling import TokenRateThrottle
from sharing.models import ApiToken, Organisation, Submission
from sharing.net import client_ip
from sharing.numbers import natural_number
from sharing.selectors import (
    CollectionAccess,
    collection_access,
    collections_visible_to,
    organisation_is_operator,
    readable_entries,
)
from sharing.services import feed_pull_record, token_issue, token_revoke
from sharing.submissions import submission_create
from sharing.taxii.views import status_resource

STIX_BUNDLE_MEDIA_TYPE = "application/stix+json;version=2.1"

COLLECTION_ID = OpenApiParameter("collection_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ERRORS = {
    code: OpenApiResponse(ErrorSerializer, description=text)
    for code, text in (
        (400, "bad input"),
        (401, "missing or invalid token"),
        (403, "scope or grant missing"),
        (404, "missing or not visible to your organisation"),
        (409, "the resource is not in a state that allows this"),
        (429, "rate limit exceeded; see Retry-After"),
    )
}


def errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in (401, 429, *codes)}


class RestApiView(APIView):
    """Base for REST endpoints: JSON, token auth (settings), per-token throttle, JSON error bodies."""

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    throttle_classes = [TokenRateThrottle]

    def get_exception_handler(self):
        return api_exception_handler

    @property
    def organisation(self) -> Organisation:
        return self.request.auth.organisation

    def require_scope(self, scope: str) -> None:
        if not self.request.auth.has_scope(scope):
            raise ApiError(403, f"this token lacks the {scope!r} scope")

    def require_operator_admin(self, what: str) -> None:
        """Node-private endpoints: an admin-scoped token of this node's operator organisation."""
        if not self.request.auth.has_scope("admin") or not organisation_is_operator(self.organisation):
            raise ApiError(
                403, f"{what} are node-private: only the node operator's admin tokens may use them"
            )

    def bounded_body(self, request, *, wrong_type: str) -> bytes:
        """The raw request body; 413 over max_content_length, checked before it is read."""
        limit = settings.TAXII_MAX_CONTENT_LENGTH
        length = natural_number(request.META.get("CONTENT_LENGTH") or "0") or 0
        if length > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes")
        raw = request.data
        if not isinstance(raw, bytes):
            raise ApiError(400, wrong_type)
        if len(raw) > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes")
        return raw

    def visible_collection(self, collection_id: str) -> CollectionAccess:
        # Missing and invisible collections are indistinguishable: never reveal existence.
        access = collection_access(self.organisation, collection_id)
        if access is None:
            raise ApiError(404, "no such collection")
        return access

    def readable_collection(self, collection_id: str) -> CollectionAccess:
        access = self.visible_collection(collection_id)
        if not access.can_read:
            raise ApiError(403, "your organisation may not read this collection")
        self.require_scope("read")
        return access


# --- Collections ----------------------------------------------------------------------------------


class CollectionListApi(RestApiView):
    @extend_schema_serializer(component_name="Collection")
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        title = serializers.CharField()
        description = serializers.CharField(allow_blank=True)
        is_public = serializers.BooleanField()
        can_read = serializers.BooleanField()
        can_write = serializers.BooleanField()
        tlp_ceiling = serializers.CharField(help_text="the highest TLP level your organisation reads here")
        object_count = serializers.IntegerField(help_text="objects (latest versions) you can read")

    @extend_schema(
        operation_id="collections_list",
        summary="Collections visible to your organisation",
        responses={200: OutputSerializer(many=True), **errors()},
    )
    def get(self, request):
        rows = []
        for access in collections_visible_to(self.organisation):
            collection = access.collection
            rows.append(
                {
                    "id": collection.pk,
                    "title": collection.title,
                    "description": collection.description,
                    "is_public": collection.is_public,
                    "can_read": access.can_read,
                    "can_write": access.can_write,
                    "tlp_ceiling": access.tlp_ceiling,
                    "object_count": readable_entries(access).filter(is_latest=True).count(),
                }
            )
        return Response(self.OutputSerializer(rows, many=True).data)


# --- Submissions ----------------------------------------------------------------------------------


class RawJsonParser(BaseParser):
    """Hands the view the raw bytes, so it can check the size before decoding and word its own errors."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read(settings.TAXII_MAX_CONTENT_LENGTH + 1) if stream is not None else b""


class RawStixJsonParser(RawJsonParser):
    media_type = "application/stix+json"


class RawTaxiiJsonParser(RawJsonParser):
    media_type = "application/taxii+json"


class SubmissionCreateApi(RestApiView):
    parser_classes = [RawJsonParser, RawStixJsonParser, RawTaxiiJsonParser]

    @extend_schema(
        operation_id="submissions_create",
        summary="Submit STIX objects to a collection",
        description="The body is a STIX 2.1 bundle or a JSON array of objects. Each object is validated; "
        "a trusted organisation's objects are published at once, others wait for review. "
        "Answers with the TAXII 2.1 status resource.",
        parameters=[COLLECTION_ID],
        request={"application/json": BundleSerializer, STIX_BUNDLE_MEDIA_TYPE: BundleSerializer},
        responses={
            202: StatusResourceSerializer,
            413: OpenApiResponse(ErrorSerializer, description="body too large"),
            **errors(400, 403, 404),
        },
    )
    def post(self, request, collection_id: str):
        access = self.visible_collection(collection_id)
        self.require_scope("write")
        if not access.can_write:
            raise ApiError(403, "your organisation may not add objects to this collection")
        raw = self.bounded_body(
            request, wrong_type="send the objects as JSON with Content-Type: application/json"
        )
        try:
            objects = objects_from_envelope(load_json(raw))
        except StixError as exc:
            raise ApiError(400, str(exc)) from None
        if not objects:
            raise ApiError(400, "the body contains no objects")
        submission = submission_create(
            collection=access.collection,
            organisation=self.organisation,
            objects=objects,
            token=request.auth,
            ip_address=client_ip(request),
        )
        location = reverse("api:submission-detail", args=[submission.pk])
        return Response(status_resource(submission), status=202, headers={"Location": location})


class SubmissionDetailApi(RestApiView):
    @extend_schema(
        operation_id="submissions_retrieve",
        summary="Status of one of your organisation's submissions",
        parameters=[OpenApiParameter("submission_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: StatusResourceSerializer, **errors(404)},
    )
    def get(self, request, submission_id: str):
        try:
            key = uuid.UUID(submission_id)
        except ValueError:
            raise ApiError(404, "no such submission") from None
        submission = Submission.objects.filter(pk=key, organisation=self.organisation).first()
        if submission is None:
            raise ApiError(404, "no such submission")
        return Response(status_resource(submission))


# --- Objects --------------------------------------------------------------------------------------


def object_results(organisation: Organisation, entries: list) -> list[dict]:
    where = collections_of(organisation, [e.stix_object_id for e in entries])
    return [stix_object_result(e, where.get(e.stix_object_id, [])) for e in entries]


class ObjectListApi(RestApiView):
    @extend_schema(
        operation_id="objects_list",
        summary="Search objects across every collection you can read",
        description="Published objects only; one result per object version even when it is in several "
        "collections. Ordered by date_added; follow `next` to page.",
        parameters=[ObjectSearchFilterSerializer],
        responses={200: StixObjectPageSerializer, **errors(400, 403)},
    )
    def get(self, request):
        self.require_scope("read")
        filters = ObjectSearchFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        page = KeysetPagination(request)
        search = ObjectSearch(
            types=tuple(data.get("type", ())),
            created_by=data.get("created_by", ""),
            tlp=data.get("tlp", ""),
            label=data.get("label", ""),
            q=data.get("q", ""),
            state=data["state"],
            added_after=data.get("added_after"),
            added_before=data.get("added_before"),
            collection=data.get("collection"),
            all_versions=data["versions"] == "all",
        )
        entries = page.paginate(object_search(organisation=self.organisation, search=search))
        return page.response(
            StixObjectResultSerializer(object_results(self.organisation, entries), many=True).data
        )


class ObjectDetailApi(RestApiView):
    @extend_schema_serializer(component_name="StixObjectDetail")
    class OutputSerializer(serializers.Serializer):
        object = StixObjectResultSerializer(help_text="the latest version visible to you")
        versions = ObjectVersionSerializer(many=True, help_text="visible versions, oldest first")
        relationships = StixObjectResultSerializer(many=True, help_text="visible relationships from or to it")
        relationships_truncated = serializers.BooleanField()

    @extend_schema(
        operation_id="objects_retrieve",
        summary="One object: latest visible version, version history and relationships",
        parameters=[
            OpenApiParameter(
                "stix_id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="STIX id, e.g. indicator--<UUID>",
            )
        ],
        responses={200: OutputSerializer, **errors(403, 404)},
    )
    def get(self, request, stix_id: str):
        self.require_scope("read")
        entries = object_entries(self.organisation, stix_id) if len(stix_id) <= 300 else []
        if not entries:
            raise ApiError(404, "no such object")
        by_version: dict[int, list] = defaultdict(list)
        for entry in entries:
            by_version[entry.stix_object_id].append(entry)
        versions = []
        for group in by_version.values():  # insertion order: oldest version first
            first = min(group, key=lambda e: (e.date_added, e.pk))
            collections = sorted(
                ({"id": e.collection_id, "title": e.collection.title} for e in group),
                key=lambda c: c["title"],
            )
            versions.append((first, collections))
        latest, latest_collections = max(versions, key=lambda v: (v[0].stix_object.modified, v[0].date_added))
        relationships, truncated = object_relationships(
            self.organisation, stix_id, limit=settings.TAXII_MAX_PAGE_SIZE
        )
        return Response(
            self.OutputSerializer(
                {
                    "object": stix_object_result(latest, latest_collections),
                    "versions": [
                        {
                            "modified": e.stix_object.modified if e.stix_object.has_modified else None,
                            "revoked": e.stix_object.revoked,
                            "tlp": e.stix_object.tlp,
                            "date_added": e.date_added,
                            "collections": c,
                        }
                        for e, c in versions
                    ],
                    "relationships": object_results(self.organisation, relationships),
                    "relationships_truncated": truncated,
                }
            ).data
        )


# --- Exports --------------------------------------------------------------------------------------


class AnyAcceptNegotiation(BaseContentNegotiation):
    """Exports have one representation each; any Accept header gets it (errors stay JSON)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportOptionsSerializer(serializers.Serializer):
    include_expired = serializers.BooleanField(
        required=False, default=False, help_text="also export objects whose valid_until has passed"
    )
    min_score = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=100,
        help_text="leave out indicators whose decay score (0-100, from valid_from/valid_until and the "
        "per-kind default TTLs) is below this; other objects have no score and are kept. "
        "Above 0 it also leaves out expired indicators, which score 0",
    )


class CollectionExportApi(RestApiView):
    """Shared by the exports: latest readable versions, not revoked, expired only on request."""

    content_negotiation_class = AnyAcceptNegotiation

    def export_entries(self, request, collection_id: str):
        """(access, entries, score floor or None) for the export; 400 on bad options."""
        access = self.readable_collection(collection_id)
        options = ExportOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        feed_pull_record(
            token=request.auth,
            collection_id=access.collection.pk,
            channel="export",
            ip_address=client_ip(request),
        )
        now = timezone.now()
        min_score = options.validated_data["min_score"]
        entries = export_entries(
            access,
            include_expired=options.validated_data["include_expired"],
            min_score=min_score,
            now=now,
        )
        return access, entries, exports.ScoreFloor(min_score, now) if min_score > 0 else None

    @staticmethod
    def stream(chunks, *, content_type: str, filename: str) -> StreamingHttpResponse:
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def export_schema(operation_id: str, summary: str, media_type: str, body):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        parameters=[COLLECTION_ID, ExportOptionsSerializer],
        responses={(200, media_type): body, **errors(400, 403, 404)},
    )


class CollectionExportStixApi(CollectionExportApi):
    @export_schema(
        "collections_export_stix",
        "Export a collection as a STIX 2.1 bundle",
        STIX_BUNDLE_MEDIA_TYPE,
        OpenApiTypes.OBJECT,
    )
    def get(self, request, collection_id: str):
        access, entries, floor = self.export_entries(request, collection_id)
        return self.stream(
            exports.stix_bundle_chunks(entries, floor=floor),
            content_type=STIX_BUNDLE_MEDIA_TYPE,
            filename=f"{access.collection.pk}.json",
        )


class CollectionExportCsvApi(CollectionExportApi):
    @export_schema(
        "collections_export_csv",
        "Export a collection as CSV (one row per object)",
        "text/csv",
        OpenApiTypes.STR,
    )
    def get(self, request, collection_id: str):
        access, entries, floor = self.export_entries(request, collection_id)
        return self.stream(
            exports.csv_lines(entries, floor=floor),
            content_type="text/csv; charset=utf-8",
            filename=f"{access.collection.pk}.csv",
        )


class CollectionExportIpsApi(CollectionExportApi):
    @export_schema(
        "collections_export_ips",
        "Export the IPs and CIDRs of a collection (one per line, for blocklists)",
        "text/plain",
        OpenApiTypes.STR,
    )
    def get(self, request, collection_id: str):
        access, entries, floor = self.export_entries(request, collection_id)
        return self.stream(
            exports.ip_lines(entries, floor=floor),
            content_type="text/plain; charset=utf-8",
            filename=f"{access.collection.pk}-ips.txt",
        )


class CollectionExportHashesApi(CollectionExportApi):
    @export_schema(
        "collections_export_hashes",
        "Export the hashed identifiers of a collection (identifier_type, key_id, value; tab-separated)",
        "text/plain",
        OpenApiTypes.STR,
    )
    def get(self, request, collection_id: str):
        access, entries, floor = self.export_entries(request, collection_id)
        return self.stream(
            exports.hash_lines(entries, floor=floor),
            content_type="text/plain; charset=utf-8",
            filename=f"{access.collection.pk}-hashes.txt",
        )


# --- Tokens ---------------------------------------------------------------------------------------


class TokenSerializer(serializers.Serializer):
    """A token's metadata. Digests are never shown; the plaintext only once, when issued."""

    prefix = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    scopes = serializers.SerializerMethodField()
    allowed_cidrs = serializers.ListField(child=serializers.CharField(), source="cidr_list")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    last_used_ip = serializers.IPAddressField(allow_null=True)
    is_active = serializers.BooleanField()

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=ApiToken.SCOPES)))
    def get_scopes(self, token: ApiToken) -> list[str]:
        return [s for s in ApiToken.SCOPES if s in token.scope_set]


class TokenAdminApi(RestApiView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.require_scope("admin")


class TokenListApi(TokenAdminApi):
    @extend_schema(
        operation_id="tokens_list",
        summary="Your organisation's API tokens",
        responses={200: TokenSerializer(many=True), **errors(403)},
    )
    def get(self, request):
        tokens = ApiToken.objects.filter(organisation=self.organisation).order_by("-created_at", "-pk")
        return Response(TokenSerializer(tokens, many=True).data)


class TokenIssueApi(TokenAdminApi):
    @extend_schema_serializer(component_name="TokenIssueRequest")
    class InputSerializer(serializers.Serializer):
        scopes = serializers.ListField(child=serializers.CharField(), help_text="read, write and/or admin")
        name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        expires_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3650)
        allowed_cidrs = serializers.ListField(
            child=serializers.CharField(),
            required=False,
            default=list,
            help_text="client addresses allowed to use it; empty = anywhere",
        )

    @extend_schema_serializer(component_name="IssuedToken")
    class OutputSerializer(TokenSerializer):
        token = serializers.CharField(help_text="the token itself: shown only in this response")

    @extend_schema(
        operation_id="tokens_create",
        summary="Issue a token for your organisation",
        request=InputSerializer,
        responses={201: OutputSerializer, **errors(400, 403)},
    )
    def post(self, request):
        data = TokenIssueApi.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, plaintext = token_issue(
            organisation=self.organisation, by_token=request.auth, **data.validated_data
        )
        token.token = plaintext
        return Response(
            TokenIssueApi.OutputSerializer(token).data, status=201, headers={"Cache-Control": "no-store"}
        )


class TokenCollectionApi(TokenListApi, TokenIssueApi):
    """/tokens/: GET lists (TokenListApi), POST issues (TokenIssueApi) — two operations, one path."""


class TokenRevokeApi(TokenAdminApi):
    @extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke one of your organisation's tokens",
        request=None,
        parameters=[OpenApiParameter("prefix", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: TokenSerializer, **errors(403, 404)},
    )
    def post(self, request, prefix: str):
        token = ApiToken.objects.filter(organisation=self.organisation, prefix=prefix).first()
        if token is None:
            raise ApiError(404, "no such token")
        return Response(TokenSerializer(token_revoke(token=token, by_token=request.auth)).data)
