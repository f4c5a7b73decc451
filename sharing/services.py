"""Writes for organisations, tokens, collections, grants, publication and the audit log."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from indicators import tasks as matching_tasks
from indicators.models import TLP_LEVELS, StixObject, tlp_rank
from indicators.services import stix_objects_store
from sharing.models import (
    ApiToken,
    AuditEvent,
    Collection,
    CollectionEntry,
    Grant,
    Organisation,
    RelayedSighting,
)
from sharing.tokens import address_allowed, parse_cidrs, token_generate, token_lookup_prefix, token_matches


class ServiceError(ValueError):
    """Bad input to a service: the message is safe to show to the caller as is."""


# --- Audit ----------------------------------------------------------------------------------------


def audit_record(
    action: str,
    *,
    user=None,
    token: ApiToken | None = None,
    organisation: Organisation | None = None,
    target_type: str = "",
    target_id: str = "",
    ip_address: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    if token is not None and organisation is None:
        organisation = token.organisation
    label = user.get_username() if user is not None else (f"token {token.prefix}" if token else "system")
    return AuditEvent.objects.create(
        action=action,
        actor_user=user,
        actor_token=token,
        organisation=organisation,
        actor_label=label,
        target_type=target_type,
        target_id=str(target_id),
        ip_address=ip_address,
        details=details or {},
    )


def feed_pull_record(*, token: ApiToken, collection_id, channel: str, ip_address: str | None = None) -> None:
    """Count a feed pull for the dashboard: one "feed.pull" audit event per token, collection
    and minute, so a paged pull of thousands of pages does not turn every read into a write."""
    minute = int(timezone.now().timestamp() // 60)
    if cache.add(f"mdx:feed-pull:{token.pk}:{collection_id}:{minute}", 1, timeout=120):
        audit_record(
            "feed.pull",
            token=token,
            target_type="collection",
            target_id=collection_id,
            ip_address=ip_address,
            details={"via": channel},
        )


# --- Organisations --------------------------------------------------------------------------------

_SECTORS = {
    "lab": ["technology"],
    "cloud": ["technology"],
    "authority": ["government"],
    "hub": ["technology"],
}


def organisation_create(*, name: str, kind: str, trusted: bool = False, user=None) -> Organisation:
    """Create an organisation and its STIX identity. Raises ServiceError on bad input."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("organisation name must not be empty")
    if len(name) > 200:
        raise ServiceError("organisation name is longer than 200 characters")
    if kind not in Organisation.Kind.values:
        raise ServiceError(f"unknown kind {kind!r}; expected one of: {', '.join(Organisation.Kind.values)}")
    if Organisation.objects.filter(name__iexact=name).exists():
        raise ServiceError(f"an organisation named {name!r} already exists")
    now = timezone.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    identity = {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "name": name,
        "identity_class": "organization",
        "sectors": _SECTORS[kind],
    }
    policy = Organisation.ReviewPolicy.TRUSTED if trusted else Organisation.ReviewPolicy.REVIEW
    try:
        with transaction.atomic():
            org = Organisation.objects.create(name=name, kind=kind, review_policy=policy, identity=identity)
            audit_record(
                "organisation.create",
                user=user,
                organisation=org,
                target_type="organisation",
                target_id=org.pk,
                details={"kind": kind, "review_policy": policy},
            )
    except IntegrityError:
        raise ServiceError(f"an organisation named {name!r} already exists") from None
    return org


def organisation_by_name(name: str) -> Organisation:
    try:
        return Organisation.objects.get(name__iexact=" ".join((name or "").split()))
    except Organisation.DoesNotExist:
        raise ServiceError(f"no organisation named {name!r}") from None


# --- Tokens ---------------------------------------------------------------------------------------


def parse_scopes(raw: str | list[str]) -> list[str]:
    items = raw if isinstance(raw, list) else raw.split(",")
    scopes = [s.strip().lower() for s in items if s.strip()]
    if not scopes:
        raise ServiceError("at least one scope is required (read, write, admin)")
    unknown = sorted(set(scopes) - set(ApiToken.SCOPES))
    if unknown:
        raise ServiceError(f"unknown scope {unknown[0]!r}; expected read, write or admin")
    return [s for s in ApiToken.SCOPES if s in scopes]


def token_issue(
    *,
    organisation: Organisation,
    scopes: str | list[str],
    expires_days: int | None = None,
    allowed_cidrs: str | list[str] = "",
    name: str = "",
    user=None,
    by_token: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; returns (row, plaintext). The plaintext exists only in this return value."""
    scope_list = parse_scopes(scopes)
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise ServiceError("expiry must be between 1 and 3650 days")
    try:
        cidrs = parse_cidrs(allowed_cidrs)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    new = token_generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            organisation=organisation,
            name=(name or "").strip()[:200],
            prefix=new.prefix,
            digest=new.digest,
            scopes=",".join(scope_list),
            allowed_cidrs=",".join(cidrs),
            expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
            created_by=user,
        )
        audit_record(
            "token.issue",
            user=user,
            token=by_token,
            organisation=organisation,
            target_type="token",
            target_id=token.prefix,
            details={"scopes": scope_list, "expires_days": expires_days},
        )
    return token, new.plaintext


def token_revoke(*, token: ApiToken, user=None, by_token: ApiToken | None = None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            "token.revoke",
            user=user,
            token=by_token,
            organisation=token.organisation,
            target_type="token",
            target_id=token.prefix,
        )
    return token


class TokenRejected(Exception):
    """A presented token is unknown, revoked, expired or used from a disallowed address."""


def token_authenticate(*, plaintext: str, ip_address: str | None) -> ApiToken:
    """The active token for this plaintext, or TokenRejected. Records last use (throttled)."""
    prefix = token_lookup_prefix(plaintext or "")
    candidates = ApiToken.objects.select_related("organisation").filter(prefix=prefix) if prefix else []
    token = next((t for t in candidates if token_matches(plaintext, t.digest)), None)
    if token is None:
        raise TokenRejected("invalid token")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRejected("token revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRejected("token expired")
    if not address_allowed(ip_address, token.cidr_list):
        raise TokenRejected("token not allowed from this address")
    # Write last-use at most once a minute per token so reads don't become writes.
    stale = token.last_used_at is None or now - token.last_used_at >= timedelta(
        seconds=settings.MDX_TOKEN_TOUCH_SECONDS
    )
    if stale or token.last_used_ip != ip_address:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip_address)
        token.last_used_at, token.last_used_ip = now, ip_address
    return token


# --- Collections and grants -----------------------------------------------------------------------

_GRANT_RE = re.compile(r"^(?P<org>.+):(?P<rights>r|w|rw|wr)$")


@dataclass(frozen=True)
class GrantSpec:
    organisation: Organisation
    can_read: bool
    can_write: bool


def parse_grant(spec: str) -> GrantSpec:
    """'ORG:r', 'ORG:w' or 'ORG:rw' → GrantSpec (the organisation must exist)."""
    match = _GRANT_RE.match((spec or "").strip())
    if not match or not match.group("org").strip():
        raise ServiceError(f"bad grant {spec!r}; expected ORG:r, ORG:w or ORG:rw")
    rights = match.group("rights")
    return GrantSpec(organisation_by_name(match.group("org")), "r" in rights, "w" in rights)


def validate_tlp(level: str) -> str:
    level = (level or "").strip().lower()
    if level not in TLP_LEVELS:
        raise ServiceError(f"unknown TLP level {level!r}; expected one of: {', '.join(TLP_LEVELS)}")
    return level


def collection_create(
    *,
    title: str,
    description: str = "",
    grants: list[GrantSpec] = (),
    tlp_ceiling: str = "amber",
    is_public: bool = False,
    is_inbox: bool = False,
    user=None,
) -> Collection:
    title = " ".join((title or "").split())
    if not title:
        raise ServiceError("collection title must not be empty")
    if len(title) > 200:
        raise ServiceError("collection title is longer than 200 characters")
    ceiling = validate_tlp(tlp_ceiling)
    if is_inbox and is_public:
        raise ServiceError("a feedback inbox cannot be public: members write it, only the hub reads it")
    if is_inbox and tlp_rank(ceiling) < tlp_rank("amber+strict"):
        ceiling = "amber+strict"  # feedback is TLP:AMBER+STRICT (DOMAIN.md §1.3)
    orgs = [g.organisation.pk for g in grants]
    if len(orgs) != len(set(orgs)):
        raise ServiceError("an organisation is granted more than once")
    if Collection.objects.filter(title__iexact=title).exists():
        raise ServiceError(f"a collection titled {title!r} already exists")
    try:
        with transaction.atomic():
            collection = Collection.objects.create(
                title=title, description=description or "", is_public=is_public, is_inbox=is_inbox
            )
            for g in grants:
                Grant.objects.create(
                    organisation=g.organisation,
                    collection=collection,
                    can_read=g.can_read,
                    can_write=g.can_write,
                    tlp_ceiling=ceiling,
                )
            audit_record(
                "collection.create",
                user=user,
                target_type="collection",
                target_id=collection.pk,
                details={
                    "title": title,
                    "public": is_public,
                    "inbox": is_inbox,
                    "tlp_ceiling": ceiling,
                    "grants": [
                        f"{g.organisation.name}:{'r' * g.can_read}{'w' * g.can_write}" for g in grants
                    ],
                },
            )
    except IntegrityError:
        raise ServiceError(f"a collection titled {title!r} already exists") from None
    return collection


def grant_set(
    *,
    organisation: Organisation,
    collection: Collection,
    can_read: bool,
    can_write: bool,
    tlp_ceiling: str = "amber",
    user=None,
) -> Grant:
    ceiling = validate_tlp(tlp_ceiling)
    with transaction.atomic():
        grant, _ = Grant.objects.update_or_create(
            organisation=organisation,
            collection=collection,
            defaults={"can_read": can_read, "can_write": can_write, "tlp_ceiling": ceiling},
        )
        audit_record(
            "grant.set",
            user=user,
            organisation=organisation,
            target_type="collection",
            target_id=collection.pk,
            details={"read": can_read, "write": can_write, "tlp": ceiling},
        )
    return grant


# --- Publication ----------------------------------------------------------------------------------

_TICK = timedelta(microseconds=1)


def collection_publish(
    *, collection: Collection, stix_objects: list[StixObject], submitted_by: Organisation | None = None
) -> list[CollectionEntry]:
    """Add object versions to a collection with strictly increasing date_added.

    The collection row is locked (SELECT … FOR UPDATE on PostgreSQL; SQLite serialises
    writers through IMMEDIATE transactions), so concurrent publishers never interleave or
    reuse a timestamp, and every entry of one bulk gets its own microsecond. Versions
    already in the collection are skipped: re-publishing is a no-op. Keeps ``is_latest``
    true on exactly the newest version of each id. Returns the new entries.
    """
    if not stix_objects:
        return []
    with transaction.atomic():
        locked = Collection.objects.select_for_update().get(pk=collection.pk)
        present = set()
        pks = [o.pk for o in stix_objects]
        for start in range(0, len(pks), 1000):
            present.update(
                CollectionEntry.objects.filter(
                    collection=locked, stix_object__in=pks[start : start + 1000]
                ).values_list("stix_object_id", flat=True)
            )
        now = timezone.now()
        stamp = max(now, locked.last_added + _TICK) if locked.last_added else now
        entries: list[CollectionEntry] = []
        for obj in stix_objects:
            if obj.pk in present:
                continue
            present.add(obj.pk)
            entries.append(
                CollectionEntry(
                    collection=locked,
                    stix_object=obj,
                    date_added=stamp,
                    submitted_by=submitted_by,
                    stix_id=obj.stix_id,
                    type=obj.type,
                    modified=obj.modified,
                    spec_version=obj.spec_version,
                    tlp_rank=obj.tlp_rank,
                    is_latest=False,
                )
            )
            stamp += _TICK
        if not entries:
            return []
        _mark_latest(locked, entries)
        CollectionEntry.objects.bulk_create(entries, batch_size=1000)
        locked.last_added = entries[-1].date_added
        locked.save(update_fields=["last_added"])
        collection.last_added = locked.last_added
        # Every publication path (trusted submissions, review approvals, federation, the seed
        # pack) passes here, so local matching of new indicator versions is queued in one place,
        # after commit.
        indicator_pks = [e.stix_object_id for e in entries if e.type == "indicator"]
        if indicator_pks:
            matching_tasks.indicators_published(indicator_pks)
            _relays_refresh({e.stix_id for e in entries if e.type == "indicator"})
    return entries


def _relays_refresh(stix_ids: set[str]) -> None:
    """A relayed indicator was revised, revoked or published elsewhere: its summary sighting
    follows it (sharing.feedback_relay)."""
    from sharing.feedback_inbox import relay_enqueue

    relayed = list(RelayedSighting.objects.filter(indicator_stix_id__in=stix_ids).values_list(
        "indicator_stix_id", flat=True
    ))  # fmt: skip
    if relayed:
        relay_enqueue(sorted(relayed))


def _mark_latest(collection: Collection, entries: list[CollectionEntry]) -> None:
    """Set is_latest on the newest of the new entries per id, demoting an older stored latest."""
    newest: dict[str, CollectionEntry] = {}
    for entry in entries:
        best = newest.get(entry.stix_id)
        if best is None or entry.modified > best.modified:
            newest[entry.stix_id] = entry
    ids = list(newest)
    demote = []
    for start in range(0, len(ids), 1000):
        current = CollectionEntry.objects.filter(
            collection=collection, is_latest=True, stix_id__in=ids[start : start + 1000]
        )
        for stix_id, modified, pk in current.values_list("stix_id", "modified", "pk"):
            if newest[stix_id].modified > modified:
                demote.append(pk)
            else:
                del newest[stix_id]  # the stored version stays the latest
    for start in range(0, len(demote), 1000):
        CollectionEntry.objects.filter(pk__in=demote[start : start + 1000]).update(is_latest=False)
    for entry in newest.values():
        entry.is_latest = True


def collection_entries_delete(*, collection: Collection, entries: list[CollectionEntry]) -> int:
    """Remove entries (object versions) from a collection, re-electing each id's latest version."""
    if not entries:
        return 0
    ids = {e.stix_id for e in entries}
    with transaction.atomic():
        Collection.objects.select_for_update().get(pk=collection.pk)
        deleted, _ = CollectionEntry.objects.filter(pk__in=[e.pk for e in entries]).delete()
        for stix_id in ids:
            remaining = CollectionEntry.objects.filter(collection=collection, stix_id=stix_id)
            newest = remaining.order_by("-modified", "-date_added").first()
            if newest is not None and not newest.is_latest:
                remaining.exclude(pk=newest.pk).update(is_latest=False)
                CollectionEntry.objects.filter(pk=newest.pk).update(is_latest=True)
    return deleted


def objects_publish(
    *, collection: Collection, objects: list[dict], submitted_by: Organisation | None = None
) -> tuple[list[StixObject], list[str]]:
    """Store validated objects and publish them into a collection.

    Returns (published versions, per-object conflict errors). Objects whose id and modified
    are already stored with different content are not published (see stix_objects_store).
    """
    results = stix_objects_store(objects)
    stored = [r.stix_object for r in results if r.stix_object is not None]
    with transaction.atomic():
        collection_publish(collection=collection, stix_objects=stored, submitted_by=submitted_by)
    return stored, [r.error for r in results if r.error]
