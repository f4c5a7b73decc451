"""REST read helpers (search, object detail, exports) built only on the sharing.selectors filter."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from indicators.models import tlp_rank
from sharing.models import Organisation
from sharing.selectors import CollectionAccess, readable_entries, visible_entries

STATES = ("active", "revoked", "expired", "all")


@dataclass(frozen=True)
class ObjectSearch:
    """The REST object search filters (all optional; empty means "no filter")."""

    types: tuple[str, ...] = ()
    created_by: str = ""
    tlp: str = ""
    label: str = ""
    q: str = ""
    state: str = "all"
    added_after: datetime | None = None
    added_before: datetime | None = None
    collection: uuid.UUID | None = None
    all_versions: bool = False


def state_filter(state: str, now: datetime, prefix: str = "stix_object__") -> Q:
    """active: not revoked and not past valid_until; expired: not revoked but past it; revoked."""
    revoked, until = f"{prefix}revoked", f"{prefix}valid_until"
    if state == "active":
        return Q(**{revoked: False}) & (Q(**{f"{until}__isnull": True}) | Q(**{f"{until}__gt": now}))
    if state == "expired":
        return Q(**{revoked: False, f"{until}__lte": now})
    if state == "revoked":
        return Q(**{revoked: True})
    return Q()


def _search_entries(organisation: Organisation, search: ObjectSearch, now: datetime) -> QuerySet:
    entries = visible_entries(organisation, collection_id=search.collection)
    if not search.all_versions:
        entries = entries.filter(is_latest=True)
    if search.types:
        entries = entries.filter(type__in=search.types)
    if search.created_by:
        entries = entries.filter(stix_object__created_by_ref=search.created_by)
    if search.tlp:
        entries = entries.filter(tlp_rank=tlp_rank(search.tlp))
    if search.label:
        # labels_text is "|a|b|"; icontains because SQLite's LIKE is case-insensitive anyway.
        entries = entries.filter(stix_object__labels_text__icontains=f"|{search.label}|")
    if search.q:
        entries = entries.filter(
            Q(stix_object__name__icontains=search.q) | Q(stix_object__data__description__icontains=search.q)
        )
    if search.state != "all":
        entries = entries.filter(state_filter(search.state, now))
    if search.added_after is not None:
        entries = entries.filter(date_added__gt=search.added_after)
    if search.added_before is not None:
        entries = entries.filter(date_added__lt=search.added_before)
    return entries


def object_search(
    *, organisation: Organisation, search: ObjectSearch, now: datetime | None = None
) -> QuerySet:
    """Visible entries matching ``search``, one per object version, ordered by (date_added, id).

    A version published in several visible collections is represented by its earliest
    matching entry, so keyset paging over (date_added, id) lists it exactly once.
    """
    now = now or timezone.now()
    earlier = (
        _search_entries(organisation, search, now)
        .filter(stix_object=OuterRef("stix_object"))
        .filter(
            Q(date_added__lt=OuterRef("date_added"))
            | Q(date_added=OuterRef("date_added"), pk__lt=OuterRef("pk"))
        )
    )
    return (
        _search_entries(organisation, search, now)
        .filter(~Exists(earlier))
        .select_related("stix_object")
        .order_by("date_added", "pk")
    )


def collections_of(organisation: Organisation, stix_object_ids: list[int]) -> dict[int, list[dict]]:
    """For each object version, the visible collections it is published in ({id, title}, by title)."""
    found: dict[int, list[dict]] = defaultdict(list)
    rows = (
        visible_entries(organisation)
        .filter(stix_object_id__in=stix_object_ids)
        .values_list("stix_object_id", "collection_id", "collection__title")
        .order_by("collection__title")
    )
    for object_pk, collection_id, title in rows:
        found[object_pk].append({"id": collection_id, "title": title})
    return found


def object_entries(organisation: Organisation, stix_id: str) -> list:
    """Every visible entry of one STIX id, oldest version first (empty when nothing is visible)."""
    return list(
        visible_entries(organisation)
        .filter(stix_id=stix_id)
        .select_related("stix_object", "collection")
        .order_by("modified", "date_added", "pk")
    )


def object_relationships(organisation: Organisation, stix_id: str, *, limit: int) -> tuple[list, bool]:
    """Visible latest relationship versions whose source_ref or target_ref is ``stix_id``.

    Returns (entries, truncated); one entry per relationship version, oldest first.
    """
    entries = (
        visible_entries(organisation)
        .filter(type="relationship", is_latest=True)
        .filter(Q(stix_object__data__source_ref=stix_id) | Q(stix_object__data__target_ref=stix_id))
        .select_related("stix_object")
        .order_by("date_added", "pk")
    )
    seen: set[int] = set()
    unique = []
    for entry in entries.iterator(chunk_size=500):
        if entry.stix_object_id in seen:
            continue
        seen.add(entry.stix_object_id)
        if len(unique) == limit:
            return unique, True
        unique.append(entry)
    return unique, False


def export_entries(
    access: CollectionAccess, *, include_expired: bool, min_score: int = 0, now: datetime | None = None
) -> QuerySet:
    """What a collection export contains: readable latest versions, not revoked, by date_added.

    ``min_score`` only prefilters here: an expired indicator scores 0, so a floor above 0 drops
    expired objects in SQL even with ``include_expired``. The score itself depends on the
    pattern, so the exports (sharing.api.exports.ScoreFloor) check it row by row.
    """
    now = now or timezone.now()
    entries = readable_entries(access).filter(is_latest=True, stix_object__revoked=False)
    if not include_expired or min_score > 0:
        entries = entries.filter(state_filter("active", now))
    return entries.order_by("date_added", "pk")
