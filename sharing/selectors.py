"""Reads scoped to an organisation: the single grant + TLP filter every output path uses.

Every feed, export and API read of STIX content goes through ``visible_entries``. A
collection is visible to an organisation that holds a grant on it (or when it is public);
an invisible collection is indistinguishable from a missing one (callers answer 404).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from indicators.models import tlp_rank
from sharing.models import Collection, CollectionEntry, Grant, Organisation

PUBLIC_CEILING = "clear"  # what a public collection shows to organisations without a grant


@dataclass(frozen=True)
class CollectionAccess:
    """What one organisation may do with one collection."""

    collection: Collection
    can_read: bool
    can_write: bool
    tlp_ceiling: str

    @property
    def ceiling_rank(self) -> int:
        return tlp_rank(self.tlp_ceiling)


def _access_for(collection: Collection, grant: Grant | None) -> CollectionAccess:
    if collection.is_inbox:
        # A feedback inbox is write-only for members whatever the grant says: who sighted what
        # is for the hub alone (DOMAIN.md §4.5). The operator reads it through the web console.
        can_write = grant is not None and grant.can_write
        operator = grant is not None and organisation_is_operator(grant.organisation)
        can_read = operator and grant.can_read
        return CollectionAccess(collection, can_read, can_write, grant.tlp_ceiling if can_read else "clear")
    if grant is not None:
        # A public collection is readable by everyone up to CLEAR even if a grant says write-only.
        can_read = grant.can_read or collection.is_public
        ceiling = grant.tlp_ceiling if grant.can_read else PUBLIC_CEILING
        return CollectionAccess(collection, can_read, grant.can_write, ceiling)
    return CollectionAccess(collection, collection.is_public, False, PUBLIC_CEILING)


def collections_visible_to(organisation: Organisation) -> list[CollectionAccess]:
    """Every collection the organisation holds a grant on, plus public ones, by title."""
    grants = {
        g.collection_id: g
        for g in Grant.objects.select_related("organisation").filter(organisation=organisation)
    }
    collections = Collection.objects.filter(Q(pk__in=grants.keys()) | Q(is_public=True)).order_by("title")
    return [_access_for(c, grants.get(c.pk)) for c in collections]


def collection_access(organisation: Organisation, collection_id: str | uuid.UUID) -> CollectionAccess | None:
    """The organisation's access to a collection, or None when it is missing or invisible."""
    try:
        key = uuid.UUID(str(collection_id))
    except ValueError:
        return None
    collection = Collection.objects.filter(pk=key).first()
    if collection is None:
        return None
    grant = (
        Grant.objects.select_related("organisation")
        .filter(organisation=organisation, collection=collection)
        .first()
    )
    if grant is None and not collection.is_public:
        return None
    return _access_for(collection, grant)


def readable_entries(access: CollectionAccess) -> QuerySet:
    """The entries of one collection that the access allows reading: nothing above its ceiling."""
    if not access.can_read:
        return CollectionEntry.objects.none()
    return CollectionEntry.objects.filter(
        collection_id=access.collection.pk, tlp_rank__lte=access.ceiling_rank
    )


def visible_entries(organisation: Organisation, collection_id: str | uuid.UUID | None = None) -> QuerySet:
    """Collection entries the organisation may read: granted collections, up to each ceiling.

    With ``collection_id`` the result is limited to that collection (empty if invisible).
    """
    clauses = Q(pk__in=[])
    for access in collections_visible_to(organisation):
        if not access.can_read:
            continue
        if collection_id is not None and str(access.collection.pk) != str(collection_id):
            continue
        clauses |= Q(collection_id=access.collection.pk, tlp_rank__lte=access.ceiling_rank)
    return CollectionEntry.objects.filter(clauses)


def organisation_is_operator(organisation: Organisation) -> bool:
    """Whether the organisation runs this node: kind "hub", and not the local stand-in of a
    remote hub this node subscribes to. Node-private data (local accounts, matches, alerts,
    subscriptions) and the web console are for operators only."""
    return organisation.kind == Organisation.Kind.HUB and not organisation.subscriptions.exists()
