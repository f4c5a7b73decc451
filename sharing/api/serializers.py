"""Wire formats of the REST API shared by several views (per-view ones are nested in the views)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rest_framework import serializers

from indicators.decay import decay_score
from indicators.models import TLP_LEVELS
from sharing.api.selectors import STATES


class CollectionRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()


class StixObjectResultSerializer(serializers.Serializer):
    """One visible object version: indexed columns, where it is published, and the object itself."""

    id = serializers.CharField(help_text="STIX id")
    type = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    spec_version = serializers.CharField()
    created = serializers.DateTimeField(allow_null=True)
    modified = serializers.DateTimeField(
        allow_null=True, help_text="null for objects without versions (SCOs)"
    )
    revoked = serializers.BooleanField()
    tlp = serializers.ChoiceField(choices=TLP_LEVELS)
    created_by_ref = serializers.CharField(allow_null=True)
    confidence = serializers.IntegerField(allow_null=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    decay_score = serializers.IntegerField(
        allow_null=True,
        min_value=0,
        max_value=100,
        help_text="indicators only (null otherwise): freshness now, 100 when valid_from is reached, "
        "0 when revoked or past valid_until; 100 × (1 − (age/lifetime)²), the lifetime being "
        "valid_until − valid_from or the per-kind default TTL",
    )
    labels = serializers.ListField(child=serializers.CharField())
    collections = CollectionRefSerializer(many=True, help_text="visible collections publishing this version")
    date_added = serializers.DateTimeField(help_text="earliest date_added among those collections")
    object = serializers.JSONField(help_text="the STIX 2.1 object as stored")


class ObjectVersionSerializer(serializers.Serializer):
    modified = serializers.DateTimeField(allow_null=True)
    revoked = serializers.BooleanField()
    tlp = serializers.CharField()
    date_added = serializers.DateTimeField(help_text="earliest visible date_added of this version")
    collections = CollectionRefSerializer(many=True)


class StixObjectPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="link to the next page; null on the last page")
    results = StixObjectResultSerializer(many=True)


class ObjectSearchFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/v1/objects/."""

    type = serializers.CharField(
        required=False, allow_blank=True, help_text="comma-separated STIX types, e.g. indicator,campaign"
    )
    created_by = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="identity id (created_by_ref)"
    )
    tlp = serializers.ChoiceField(
        choices=TLP_LEVELS, required=False, help_text="objects at exactly this level"
    )
    label = serializers.CharField(
        required=False, allow_blank=True, max_length=250, help_text="one label (case-insensitive)"
    )
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="case-insensitive text in the name or description",
    )
    state = serializers.ChoiceField(
        choices=STATES,
        required=False,
        default="all",
        help_text="active: not revoked and valid_until unset or in the future; "
        "expired: not revoked, valid_until passed; revoked",
    )
    added_after = serializers.DateTimeField(required=False, help_text="date_added strictly after (RFC 3339)")
    added_before = serializers.DateTimeField(
        required=False, help_text="date_added strictly before (RFC 3339)"
    )
    collection = serializers.UUIDField(required=False, help_text="only this collection")
    versions = serializers.ChoiceField(
        choices=["latest", "all"],
        required=False,
        default="latest",
        help_text="latest (default): each collection's newest version only",
    )
    page_size = serializers.IntegerField(required=False, min_value=1, help_text="at most TAXII_MAX_PAGE_SIZE")
    cursor = serializers.CharField(
        required=False, allow_blank=True, help_text="opaque; taken from the 'next' link"
    )

    def validate_type(self, value: str) -> list[str]:
        types = sorted({t.strip() for t in value.split(",") if t.strip()})
        if len(types) > 50:
            raise serializers.ValidationError("at most 50 types")
        return types

    def validate_label(self, value: str) -> str:
        if "|" in value:
            raise serializers.ValidationError("a label cannot contain '|'")
        return value


class StatusDetailSerializer(serializers.Serializer):
    id = serializers.CharField()
    version = serializers.CharField()
    message = serializers.CharField(required=False)


class StatusResourceSerializer(serializers.Serializer):
    """TAXII 2.1 §4.3.1 status resource, shared with the TAXII endpoint."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["pending", "complete"])
    request_timestamp = serializers.CharField()
    total_count = serializers.IntegerField()
    success_count = serializers.IntegerField()
    failure_count = serializers.IntegerField()
    pending_count = serializers.IntegerField()
    successes = StatusDetailSerializer(many=True, required=False)
    failures = StatusDetailSerializer(many=True, required=False)
    pendings = StatusDetailSerializer(many=True, required=False)


class BundleSerializer(serializers.Serializer):
    """A STIX 2.1 bundle; a bare JSON array of objects is accepted too."""

    type = serializers.ChoiceField(choices=["bundle"])
    id = serializers.CharField(help_text="bundle--<UUID>")
    objects = serializers.ListField(child=serializers.DictField())


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="per-parameter messages for validation errors")


def stix_object_result(entry, collections: list[dict], now: datetime | None = None) -> dict:
    """The StixObjectResultSerializer fields of one entry (with its stix_object loaded)."""
    obj = entry.stix_object
    labels = obj.data.get("labels")
    return {
        "id": obj.stix_id,
        "type": obj.type,
        "name": obj.name,
        "spec_version": obj.spec_version,
        "created": obj.created,
        "modified": obj.modified if obj.has_modified else None,
        "revoked": obj.revoked,
        "tlp": obj.tlp,
        "created_by_ref": obj.created_by_ref or None,
        "confidence": obj.confidence,
        "valid_from": obj.valid_from,
        "valid_until": obj.valid_until,
        "decay_score": decay_score(obj.data, now or timezone.now()) if obj.type == "indicator" else None,
        "labels": labels if isinstance(labels, list) else [],
        "collections": collections,
        "date_added": entry.date_added,
        "object": obj.data,
    }
