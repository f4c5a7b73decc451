"""TAXII 2.1 endpoints (§4 Discovery and API roots, §5 Collections). Thin: selectors do the reads."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from indicators.stix import StixError, load_json
from sharing.authentication import ApiTokenAuthentication
from sharing.models import Organisation, Submission
from sharing.net import client_ip
from sharing.numbers import natural_number
from sharing.selectors import CollectionAccess, collection_access, collections_visible_to, readable_entries
from sharing.services import audit_record, collection_entries_delete, feed_pull_record
from sharing.submissions import submission_create
from sharing.taxii.errors import TaxiiError, taxii_error_response, taxii_exception_handler
from sharing.taxii.media import (
    STIX_MEDIA_TYPE,
    TAXII_MEDIA_TYPE,
    TaxiiNegotiation,
    TaxiiParser,
    TaxiiRenderer,
)
from sharing.taxii.query import TaxiiQuery, taxii_timestamp, version_text

ALL_FILTERS = {
    "match[id]",
    "match[type]",
    "match[version]",
    "match[spec_version]",
    "added_after",
    "limit",
    "next",
}
OBJECT_FILTERS = {"match[version]", "match[spec_version]", "added_after", "limit", "next"}
VERSIONS_FILTERS = {"match[spec_version]", "added_after", "limit", "next"}
DELETE_FILTERS = {"match[version]", "match[spec_version]"}
API_ROOT = "api"


class TaxiiView(APIView):
    """Base for TAXII 2.1 endpoints: media types, token auth, TAXII error resources."""

    renderer_classes = [TaxiiRenderer]
    parser_classes = [TaxiiParser]
    content_negotiation_class = TaxiiNegotiation
    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [IsAuthenticated]
    schema = None  # TAXII is specified by OASIS, not described in the REST API's OpenAPI schema

    def get_exception_handler(self):
        return taxii_exception_handler

    @property
    def organisation(self) -> Organisation:
        return self.request.auth.organisation

    def require_scope(self, scope: str) -> None:
        if not self.request.auth.has_scope(scope):
            raise TaxiiError(403, f"this token lacks the {scope!r} scope")

    def collection(self, collection_id) -> CollectionAccess:
        # Missing and invisible collections are indistinguishable (§5: never reveal existence).
        access = collection_access(self.organisation, collection_id)
        if access is None:
            raise TaxiiError(404, "no such collection")
        return access

    def readable(self, collection_id) -> CollectionAccess:
        access = self.collection(collection_id)
        if not access.can_read:
            raise TaxiiError(403, "your organisation may not read this collection")
        self.require_scope("read")
        return access


def taxii_response(
    body: bytes | dict, *, status: int = 200, rows: list | None = None, date_added_index: int = 0
) -> HttpResponse:
    """A TAXII response; for pages, the X-TAXII-Date-Added-First/Last headers (§3.3)."""
    if isinstance(body, dict):
        body = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    response = HttpResponse(body, status=status, content_type=TAXII_MEDIA_TYPE)
    if rows:
        stamps = [row[date_added_index] for row in rows]
        response["X-TAXII-Date-Added-First"] = taxii_timestamp(min(stamps))
        response["X-TAXII-Date-Added-Last"] = taxii_timestamp(max(stamps))
    return response


def collection_resource(access: CollectionAccess) -> dict:
    resource = {
        "id": str(access.collection.pk),
        "title": access.collection.title,
        "can_read": access.can_read,
        "can_write": access.can_write,
        "media_types": [STIX_MEDIA_TYPE],
    }
    if access.collection.description:
        resource["description"] = access.collection.description
    return resource


def status_resource(submission: Submission) -> dict:
    """TAXII 2.1 §4.3.1 status resource."""
    buckets: dict[str, list[dict]] = {"success": [], "failure": [], "pending": []}
    for stix_id, version, state, message in submission.items.order_by("position").values_list(
        "stix_id", "version", "state", "message"
    ):
        detail = {"id": stix_id, "version": version}
        if message:
            detail["message"] = message
        buckets[state].append(detail)
    total = sum(len(b) for b in buckets.values())
    resource = {
        "id": str(submission.pk),
        "status": "pending" if buckets["pending"] else "complete",
        "request_timestamp": taxii_timestamp(submission.created_at),
        "total_count": total,
        "success_count": len(buckets["success"]),
        "failure_count": len(buckets["failure"]),
        "pending_count": len(buckets["pending"]),
    }
    for key, name in (("success", "successes"), ("failure", "failures"), ("pending", "pendings")):
        if buckets[key]:
            resource[name] = buckets[key]
    return resource


class DiscoveryView(TaxiiView):
    """§4.1 Server Discovery."""

    def get(self, request):
        root = request.build_absolute_uri(reverse("taxii:api-root"))
        return Response(
            {
                "title": f"{settings.MDX_NODE_NAME} TAXII 2.1",
                "description": "Model-distillation threat indicators (STIX 2.1), shared between AI labs, "
                "cloud providers and authorities.",
                "default": root,
                "api_roots": [root],
            }
        )


class ApiRootView(TaxiiView):
    """§4.2 Get API Root Information."""

    def get(self, request):
        return Response(
            {
                "title": f"{settings.MDX_NODE_NAME} indicators",
                "description": "Collections of STIX 2.1 objects about model-distillation campaigns.",
                "versions": [TAXII_MEDIA_TYPE],
                "max_content_length": settings.TAXII_MAX_CONTENT_LENGTH,
            }
        )


class StatusView(TaxiiView):
    """§4.3 Get Status: only the submitting organisation sees its status resources."""

    def get(self, request, status_id):
        submission = Submission.objects.filter(pk=status_id, organisation=self.organisation).first()
        if submission is None:
            raise TaxiiError(404, "no such status resource")
        return taxii_response(status_resource(submission))


class CollectionsView(TaxiiView):
    """§5.1 Get Collections."""

    def get(self, request):
        return Response(
            {"collections": [collection_resource(a) for a in collections_visible_to(self.organisation)]}
        )


class CollectionView(TaxiiView):
    """§5.2 Get A Collection."""

    def get(self, request, collection_id):
        return Response(collection_resource(self.collection(collection_id)))


class ManifestView(TaxiiView):
    """§5.3 Get Object Manifests."""

    def get(self, request, collection_id):
        access = self.readable(collection_id)
        query = TaxiiQuery.from_params(request.query_params, allowed=ALL_FILTERS)
        rows, more = query.page(
            query.filter(readable_entries(access), ceiling_rank=access.ceiling_rank), "stix_id", "modified"
        )
        envelope: dict = {"more": more}
        if more:
            envelope["next"] = query.next_cursor(rows)
        if rows:
            envelope["objects"] = [
                {
                    "id": stix_id,
                    "date_added": taxii_timestamp(added),
                    "version": version_text(modified, added),
                    "media_type": STIX_MEDIA_TYPE,
                }
                for added, _, stix_id, modified in rows
            ]
        return taxii_response(envelope, rows=rows)


def envelope_bytes(texts: list[str], more: bool, next_token: str | None) -> bytes:
    """The §3.7 envelope, assembled from stored canonical JSON without re-serialising it."""
    head = '{"more":true,"next":"' + next_token + '"' if more and next_token else '{"more":false'
    if not texts:
        return (head + "}").encode()
    return (head + ',"objects":[' + ",".join(texts) + "]}").encode()


class ObjectsView(TaxiiView):
    """§5.4 Get Objects; §5.5 Add Objects."""

    def get(self, request, collection_id):
        access = self.readable(collection_id)
        query = TaxiiQuery.from_params(request.query_params, allowed=ALL_FILTERS)
        rows, more = query.page_with_json(
            query.filter(readable_entries(access), ceiling_rank=access.ceiling_rank)
        )
        body = envelope_bytes([row[2] for row in rows], more, query.next_cursor(rows) if more else None)
        feed_pull_record(
            token=request.auth,
            collection_id=access.collection.pk,
            channel="taxii",
            ip_address=client_ip(request),
        )
        return taxii_response(body, rows=rows)

    def post(self, request, collection_id):
        length = natural_number(request.META.get("CONTENT_LENGTH") or "0") or 0
        if length > settings.TAXII_MAX_CONTENT_LENGTH:
            raise TaxiiError(
                413, f"the body is larger than max_content_length ({settings.TAXII_MAX_CONTENT_LENGTH} bytes)"
            )
        access = self.collection(collection_id)  # invisible → 404 before anything else is revealed
        self.require_scope("write")
        if not access.can_write:
            raise TaxiiError(403, "your organisation may not add objects to this collection")
        raw = request.data  # TaxiiParser: the raw bytes, read only after the checks above
        if len(raw) > settings.TAXII_MAX_CONTENT_LENGTH:
            raise TaxiiError(413, "the body is larger than max_content_length")
        try:
            payload = load_json(raw)
        except StixError as exc:
            raise TaxiiError(400, str(exc)) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("objects"), list):
            raise TaxiiError(422, 'the body must be a TAXII envelope: a JSON object with an "objects" list')
        submission = submission_create(
            collection=access.collection,
            organisation=self.organisation,
            objects=payload["objects"],
            token=request.auth,
            ip_address=client_ip(request),
        )
        return taxii_response(status_resource(submission), status=202)


class ObjectView(TaxiiView):
    """§5.6 Get An Object; §5.7 Delete An Object."""

    def get(self, request, collection_id, object_id):
        access = self.readable(collection_id)
        query = TaxiiQuery.from_params(request.query_params, allowed=OBJECT_FILTERS)
        entries = readable_entries(access).filter(stix_id=object_id)
        if not entries.exists():
            raise TaxiiError(404, "no such object in this collection")
        rows, more = query.page_with_json(query.filter(entries, ceiling_rank=access.ceiling_rank))
        body = envelope_bytes([row[2] for row in rows], more, query.next_cursor(rows) if more else None)
        return taxii_response(body, rows=rows)

    def delete(self, request, collection_id, object_id):
        access = self.readable(collection_id)
        self.require_scope("write")
        query = TaxiiQuery.from_params(request.query_params, allowed=DELETE_FILTERS, default_version="all")
        entries = list(
            query.filter(readable_entries(access).filter(stix_id=object_id), ceiling_rank=access.ceiling_rank)
        )
        if not entries:
            raise TaxiiError(404, "no such object in this collection")
        is_moderator = request.auth.has_scope("admin") and self.organisation.kind == Organisation.Kind.HUB
        if not is_moderator and any(e.submitted_by_id != self.organisation.pk for e in entries):
            raise TaxiiError(
                403, "only the organisation that submitted this object, or the hub's admin, may delete it"
            )
        deleted = collection_entries_delete(collection=access.collection, entries=entries)
        audit_record(
            "object.delete",
            token=request.auth,
            target_type="stix-object",
            target_id=object_id,
            ip_address=client_ip(request),
            details={"collection": str(access.collection.pk), "versions": deleted},
        )
        return taxii_response(b"")


class VersionsView(TaxiiView):
    """§5.8 Get Object Versions."""

    def get(self, request, collection_id, object_id):
        access = self.readable(collection_id)
        query = TaxiiQuery.from_params(
            request.query_params, allowed=VERSIONS_FILTERS, default_version="all", by_version=True
        )
        entries = readable_entries(access).filter(stix_id=object_id)
        if not entries.exists():
            raise TaxiiError(404, "no such object in this collection")
        rows, more = query.page(query.filter(entries, ceiling_rank=access.ceiling_rank), "date_added")
        envelope: dict = {"more": more}
        if more:
            envelope["next"] = query.next_cursor(rows)
        if rows:
            envelope["versions"] = [version_text(modified, added) for modified, _, added in rows]
        return taxii_response(envelope, rows=rows, date_added_index=2)


def unknown_taxii_path(request, *args, **kwargs) -> HttpResponse:
    """Unknown API roots and paths under /taxii2/ answer with a TAXII 404, not an HTML page."""
    return taxii_error_response(404, "no such TAXII resource")
