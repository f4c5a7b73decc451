"""REST API v1: local account import (DOMAIN.md §4.0). Node-private data: admin tokens only."""

from __future__ import annotations

import io

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from indicators.accounts import accounts_import
from sharing.api.errors import ApiError
from sharing.api.serializers import ErrorSerializer
from sharing.api.views import RawJsonParser, RestApiView, errors

JSONL_MEDIA_TYPES = ("application/x-ndjson", "application/jsonl", "text/plain")


class NdjsonParser(RawJsonParser):
    media_type = "application/x-ndjson"


class JsonlParser(RawJsonParser):
    media_type = "application/jsonl"


class PlainTextParser(RawJsonParser):
    media_type = "text/plain"


@extend_schema_serializer(component_name="AccountImportLineError")
class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based line number in the body")
    message = serializers.CharField(help_text="names the bad field; never echoes identifier values")


@extend_schema_serializer(component_name="AccountImportResult")
class ImportResultSerializer(serializers.Serializer):
    imported = serializers.IntegerField(help_text="accounts written (created + updated)")
    created = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="existing accounts whose attributes were replaced")
    errors = LineErrorSerializer(many=True, help_text="bad lines, skipped")


class AccountImportApi(RestApiView):
    parser_classes = [NdjsonParser, JsonlParser, PlainTextParser]

    @extend_schema(
        operation_id="accounts_import",
        summary="Import local accounts (JSON Lines, one account per line)",
        description="The DOMAIN.md §4.0 import format. Raw identifiers are normalised and keyed-hashed "
        "with this node's keyring and never stored; pre-hashed values are kept as they are. A bad "
        "line is reported with its line number and skipped; the other lines are imported. "
        "Re-importing an account replaces its attributes. Needs the admin scope.",
        request={media_type: OpenApiTypes.STR for media_type in JSONL_MEDIA_TYPES},
        responses={
            200: ImportResultSerializer,
            413: OpenApiResponse(ErrorSerializer, description="body too large"),
            415: OpenApiResponse(ErrorSerializer, description="not a JSON Lines content type"),
            503: OpenApiResponse(ErrorSerializer, description="this node has no keyring configured"),
            **errors(400, 403),
        },
    )
    def post(self, request):
        self.require_operator_admin("local accounts")
        keyring = settings.MDX_KEYRING
        if keyring is None:
            raise ApiError(503, "this node has no keyring (MDX_KEYRING / MDX_KEYRING_FILE): cannot import")
        raw = self.bounded_body(
            request, wrong_type="send the accounts as JSON Lines, e.g. Content-Type: application/x-ndjson"
        )
        if not raw.strip():
            raise ApiError(400, "the body is empty: send one JSON account per line")
        result = accounts_import(io.BytesIO(raw), keyring=keyring)
        return Response(
            ImportResultSerializer(
                {
                    "imported": result.imported,
                    "created": result.created,
                    "updated": result.updated,
                    "errors": [{"line": line, "message": message} for line, message in result.errors],
                }
            ).data
        )
