"""Hub side: relay thresholded feedback to members as summary sightings (DOMAIN.md §4.4).

"The hub relays an aggregate sighting under its own identity, with ``where_sighted_refs =
[class identity]``." The relay says exactly what a member who is not the originator may learn
from the feedback view — *sighted by at least N member organisations*, N a disclosure step of
``sharing.feedback_inbox`` and only once the threshold is reached — and nothing else: no
counts, no dates, no member names.

The relay is published into every collection that publishes the indicator, rather than into a
separate aggregates collection: exactly the organisations that may read the indicator may read
its aggregate, through the same grant and TLP filter, and subscribers receive it with the
indicator. It is marked at least as strictly as the indicator and never below TLP:AMBER.

A new version is issued only when the disclosed step changes. When the indicator is revoked or
its aggregate falls below the threshold (members reclassify their sightings as false
positives), the relay is revoked; a later relay of the same indicator gets a new id, since a
revoked object cannot be revived (STIX 2.1 §3.6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from indicators.extensions import EXTENSION_IDS, TLP_IDS
from indicators.models import StixObject, tlp_rank
from indicators.stix import parse_object
from sharing.feedback_inbox import FeedbackAggregate, feedback_aggregates
from sharing.feedback_outbound import count_bucket, millisecond_stamp
from sharing.models import Collection, CollectionEntry, Organisation, RelayedSighting, Subscription
from sharing.services import ServiceError, objects_publish

SIGHTING_CONTEXT = EXTENSION_IDS["mdx-sighting-context"]
# The seed pack's class identity, "AI model providers and cloud AI platforms" (DOMAIN.md §1.2).
SEED_CLASS_IDENTITY = "identity--1ee3af37-a0d4-4f7c-a772-e0d0467a7854"
# For hubs that did not load the seed pack: a class identity of their own, with a fixed id.
_NAMESPACE = uuid.UUID("5b1d3c0e-8f0a-4f57-9a43-6d2f1c7e9b21")
_FALLBACK_CREATED = "2026-01-01T00:00:00.000Z"


@dataclass
class RelayResult:
    issued: int = 0
    revoked: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {"issued": self.issued, "revoked": self.revoked, "unchanged": self.unchanged}


def operator_organisation() -> Organisation | None:
    """The organisation that runs this node (the oldest one, should there be several)."""
    return (
        Organisation.objects.filter(kind=Organisation.Kind.HUB)
        .exclude(Exists(Subscription.objects.filter(organisation=OuterRef("pk"))))
        .order_by("created_at", "pk")
        .first()
    )


def class_identity(hub: Organisation) -> dict:
    """The anonymous ``where_sighted_refs`` identity: the configured one if stored, else ours."""
    configured = getattr(settings, "MDX_RELAY_CLASS_IDENTITY", SEED_CLASS_IDENTITY)
    stored = StixObject.objects.filter(stix_id=configured).order_by("-modified").first()
    if stored is not None:
        return stored.data
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.uuid5(_NAMESPACE, 'members-class')}",
        "created_by_ref": hub.identity_id,
        "created": _FALLBACK_CREATED,
        "modified": _FALLBACK_CREATED,
        "name": "AI model providers and cloud AI platforms",
        "description": "Class identity the hub names in relayed sightings instead of its members.",
        "identity_class": "class",
        "object_marking_refs": [TLP_IDS["clear"]],
    }


def _sighting(stix_id: str, sighting_id: str, step: int, tlp: str, hub: Organisation, created: str,
              now: datetime, where: str) -> dict:  # fmt: skip
    return {
        "type": "sighting",
        "spec_version": "2.1",
        "id": sighting_id,
        "created_by_ref": hub.identity_id,
        "created": created,
        "modified": millisecond_stamp(now),
        "sighting_of_ref": stix_id,
        "where_sighted_refs": [where],
        "count": step,
        # STIX 2.1 §5.7: summary data aggregated from other sightings, not a primary report.
        "summary": True,
        "description": f"Sighted by at least {step} member organisations of this hub. Aggregate of "
        "their count-only feedback; which member sighted what is not disclosed.",
        "object_marking_refs": [TLP_IDS[tlp]],
        "extensions": {SIGHTING_CONTEXT: {"extension_type": "toplevel-property-extension"}},
        "mdx_count_bucket": count_bucket(step),
    }


def _relay_tlp(indicator: StixObject) -> str | None:
    """At least TLP:AMBER and never below the indicator; None for TLP:RED (never relayed)."""
    if indicator.tlp == "red":
        return None
    return indicator.tlp if tlp_rank(indicator.tlp) > tlp_rank("amber") else "amber"


def _indicator_collections(stix_id: str) -> tuple[StixObject | None, list[Collection]]:
    """The newest published version of the indicator and the collections it is published in."""
    entries = list(
        CollectionEntry.objects.filter(stix_id=stix_id, is_latest=True, collection__is_inbox=False)
        .select_related("stix_object", "collection")
        .order_by("-modified")
    )
    if not entries:
        return None, []
    return entries[0].stix_object, [e.collection for e in entries]


def _publish(collections: list[Collection], objects: list[dict], hub: Organisation) -> None:
    for collection in collections:
        _, conflicts = objects_publish(collection=collection, objects=objects, submitted_by=hub)
        if conflicts:
            raise ServiceError(f"relay refused by the object store: {conflicts[0]}")


def _relay_one(stix_id: str, aggregate: FeedbackAggregate | None, hub: Organisation, where: dict,
               now: datetime) -> str:  # fmt: skip
    with transaction.atomic():
        row = RelayedSighting.objects.select_for_update().filter(indicator_stix_id=stix_id).first()
        indicator, collections = _indicator_collections(stix_id)
        step = aggregate.thresholded()["sighted_by_at_least"] if aggregate else None
        tlp = _relay_tlp(indicator) if indicator is not None else None
        live = step is not None and tlp is not None and not indicator.revoked
        current = (
            StixObject.objects.filter(stix_id=row.sighting_id).order_by("-modified").first() if row else None
        )
        if not live:
            if row is None or row.revoked or current is None:
                return "unchanged"
            revocation = {**current.data, "modified": millisecond_stamp(now), "revoked": True}
            relayed_in = list(Collection.objects.filter(entries__stix_id=row.sighting_id).distinct())
            _publish(
                sorted({*relayed_in, *collections}, key=lambda c: str(c.pk)), [parse_object(revocation)], hub
            )
            row.revoked, row.sighted_by_at_least, row.updated_at = True, None, now
            row.save()
            return "revoked"
        if row is not None and not row.revoked and current is not None and row.sighted_by_at_least == step:
            _publish(collections, [where, current.data], hub)  # newly added collections get it too
            return "unchanged"
        fresh = row is None or row.revoked or current is None
        sighting_id = f"sighting--{uuid.uuid4()}" if fresh else row.sighting_id
        created = millisecond_stamp(now) if fresh else current.data["created"]
        sighting = parse_object(_sighting(stix_id, sighting_id, step, tlp, hub, created, now, where["id"]))
        _publish(collections, [where, sighting], hub)
        RelayedSighting.objects.update_or_create(
            indicator_stix_id=stix_id,
            defaults={
                "sighting_id": sighting_id,
                "sighted_by_at_least": step,
                "revoked": False,
                "updated_at": now,
            },
        )
        return "issued"


def feedback_relay(stix_ids: list[str] | None = None, *, now: datetime | None = None) -> RelayResult:
    """Bring the relayed sightings of these indicators (all with feedback or a relay when None)
    up to date. Idempotent; each indicator is relayed in its own transaction."""
    hub = operator_organisation()
    if hub is None:
        raise ServiceError("no hub operator organisation: create one with create_org NAME --kind hub")
    now = now or timezone.now()
    aggregates = feedback_aggregates(stix_ids)
    relays = RelayedSighting.objects.filter(revoked=False)
    if stix_ids is not None:
        relays = relays.filter(indicator_stix_id__in=stix_ids)
    where = parse_object(class_identity(hub))
    result = RelayResult()
    for stix_id in sorted(set(aggregates) | set(relays.values_list("indicator_stix_id", flat=True))):
        outcome = _relay_one(stix_id, aggregates.get(stix_id), hub, where, now)
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result
