"""Writes to the STIX store: turning validated objects into immutable version rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from indicators.models import StixObject, tlp_rank
from indicators.stix import canonical_json, tlp_level

# SCOs have neither created nor modified; they are stored under this fixed version key.
UNVERSIONED = datetime(1970, 1, 1, tzinfo=UTC)

# Schema objects describe the data model itself, not intelligence: unmarked ones are public.
SCHEMA_TYPES = frozenset({"marking-definition", "extension-definition", "language-content"})


def parse_timestamp(value: str) -> datetime:
    """A STIX timestamp (RFC 3339, 'Z', any sub-second precision) as an aware datetime.

    Python keeps microseconds; finer digits are dropped for the indexed column only —
    the served JSON keeps the original text.
    """
    head, _, fraction = value.rstrip("Zz").partition(".")
    text = head + (("." + fraction[:6]) if fraction else "")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def version_of(obj: dict) -> datetime:
    """The version key of an object: modified, else created (e.g. markings), else UNVERSIONED."""
    stamp = obj.get("modified") or obj.get("created")
    return parse_timestamp(stamp) if stamp else UNVERSIONED


@dataclass(frozen=True)
class StoredVersion:
    stix_object: StixObject | None
    created: bool  # False: the identical version was already stored
    error: str = ""  # set when a different object is already stored under the same version


def _row_for(obj: dict) -> StixObject:
    text = canonical_json(obj)
    level = tlp_level(obj)
    if level is None:
        level = "clear" if obj["type"] in SCHEMA_TYPES else settings.MDX_UNMARKED_TLP
    labels = obj.get("labels") or []
    return StixObject(
        stix_id=obj["id"],
        type=obj["type"],
        spec_version=obj.get("spec_version", "2.1"),
        created=parse_timestamp(obj["created"]) if obj.get("created") else None,
        modified=version_of(obj),
        has_modified="modified" in obj,
        revoked=bool(obj.get("revoked", False)),
        created_by_ref=obj.get("created_by_ref", ""),
        confidence=obj.get("confidence"),
        valid_from=parse_timestamp(obj["valid_from"]) if obj.get("valid_from") else None,
        valid_until=parse_timestamp(obj["valid_until"]) if obj.get("valid_until") else None,
        tlp=level,
        tlp_rank=tlp_rank(level),
        name=str(obj.get("name", ""))[:500],
        labels_text="|" + "|".join(str(label) for label in labels) + "|" if labels else "",
        pattern_type=str(obj.get("pattern_type", ""))[:50],
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        json_text=text,
        data=obj,
    )


def stix_objects_store(objects: list[dict]) -> list[StoredVersion]:
    """Store validated objects as version rows; one result per input, in order.

    Idempotent: an identical (id, modified) version already stored is returned, not
    duplicated. A *different* object under an existing (id, modified) is refused — STIX
    versions are immutable (STIX 2.1 §3.6), so a change needs a later ``modified``.
    """
    rows = [_row_for(obj) for obj in objects]
    keys = {(row.stix_id, row.modified) for row in rows}
    with transaction.atomic():
        existing = _fetch_versions(keys)
        fresh: dict[tuple[str, datetime], StixObject] = {}
        for row in rows:
            key = (row.stix_id, row.modified)
            if key not in existing and key not in fresh:
                fresh[key] = row
        if fresh:
            StixObject.objects.bulk_create(fresh.values(), ignore_conflicts=True, batch_size=500)
            # Re-read: ignore_conflicts leaves pks unset, and a concurrent writer may have won.
            existing.update(_fetch_versions(set(fresh)))
    results = []
    created_keys: set[tuple[str, datetime]] = set()
    for row in rows:
        key = (row.stix_id, row.modified)
        stored = existing[key]
        if stored.content_hash != row.content_hash:
            what = (
                "SCOs are not versioned: this id"
                if not row.has_modified and row.created is None
                else ("a different object with this id and modified")
            )
            results.append(
                StoredVersion(
                    None,
                    False,
                    f"{row.type} {row.stix_id}: {what} is already stored; "
                    "publish a new version with a later modified",
                )
            )
            continue
        is_new = key in fresh and key not in created_keys and fresh[key].content_hash == stored.content_hash
        created_keys.add(key)
        results.append(StoredVersion(stored, is_new))
    return results


def _fetch_versions(keys: set[tuple[str, datetime]]) -> dict[tuple[str, datetime], StixObject]:
    if not keys:
        return {}
    ids = {stix_id for stix_id, _ in keys}
    found: dict[tuple[str, datetime], StixObject] = {}
    id_list = sorted(ids)
    for start in range(0, len(id_list), 500):
        chunk = id_list[start : start + 500]
        for obj in StixObject.objects.filter(stix_id__in=chunk).defer("data"):
            key = (obj.stix_id, obj.modified)
            if key in keys:
                found[key] = obj
    return found
