"""Member side, after a cluster review: what a confirmed hydra cluster tells the hub (DOMAIN.md §4.3.6).

A reviewer who confirmed a cluster that a subscribed ("triggering") indicator hit prepares two
reports to that indicator's hub, frozen for preview and sent like any feedback report
(sharing.feedback_outbound.feedback_send):

* **to the hub's feed collection**, where the hub reviews them like any submission, marked
  TLP:AMBER (or the triggering indicator's stricter level):
  - an ``infrastructure`` object, "Hydra cluster, member-observed", whose
    ``mdx-activity-profile.controlled_account_count`` is the cluster's size rounded;
  - new indicators for the cluster identifiers no indicator here names yet
    (indicators.cluster_values), each ``derived-from`` the triggering indicator and
    ``indicates`` the infrastructure, with the §4.4 TTL of its kind;
  - the relationship "triggering indicator ``indicates`` the infrastructure";
* **to the hub's inbox**: a sighting of the triggering indicator by the cluster, TLP:AMBER+STRICT,
  whose count is only the lower bound of its count bucket — an exact count next to the rounded
  size would undo the rounding.

No per-account list leaves the node: no account ids or pseudonyms, no exact member count, only
values several members share and no other customer holds. The report is refused when relinking
changed the members after the decision (it must be about the accounts a person looked at).

Reporting the same cluster again issues new versions of what was sent before (same ids, same
``created``, a later ``modified``); an indicator sent before whose value no longer qualifies (an
outside account now holds it, say) is revoked in the new report, with its relationships. A TLP:RED or inactive
triggering indicator is never referenced in anything sent (checked again at send).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from indicators.cluster_service import members_changed_since_review
from indicators.cluster_values import ClusterIdentifier, cluster_identifiers
from indicators.decay import indicator_ttl_class, ttl_of
from indicators.extensions import EXTENSION_IDS, TLP_IDS, tlp_rank
from indicators.matching_service import active_indicators
from indicators.models import AccountCluster, Match
from indicators.services import parse_timestamp
from indicators.stix import StixError, parse_object
from sharing.feedback_outbound import (
    FeedbackError,
    bucket_floor,
    count_bucket,
    indicator_source,
    millisecond_stamp,
    sighting_object,
)
from sharing.models import CollectionEntry, FeedbackReport, Subscription
from sharing.services import audit_record

ACTIVITY_PROFILE = EXTENSION_IDS["mdx-activity-profile"]
INDICATOR_MATCHING = EXTENSION_IDS["mdx-indicator-matching"]
INFRASTRUCTURE_NAME = "Hydra cluster, member-observed"
_RELATIONSHIP_NS = uuid.UUID("0f4c7d52-6a38-4f8e-9d1b-2c6e5a9b7d31")
# A strong identifier (payment, e-mail, phone, device) is a better lead than a weak one (§4.3.2–3).
CONFIDENCE = {True: 60, False: 30}
TRIGGER_CHOICES = 50


def max_indicators() -> int:
    return max(0, int(settings.MDX_CLUSTER_REPORT_MAX_INDICATORS))


def min_holders() -> int:
    return max(2, int(settings.MDX_CLUSTER_REPORT_MIN_HOLDERS))


def rounded_count(size: int) -> int:
    """The cluster's size as it may leave the node: to the nearest ten below 100, to two
    significant figures above (20,345 → 20,000), never below 10."""
    if size < 100:
        return max(10, (size + 5) // 10 * 10)
    step = 10 ** (len(str(size)) - 2)
    return (size + step // 2) // step * step


@dataclass(frozen=True)
class Trigger:
    """A subscribed, active indicator below TLP:RED that matched members of the cluster."""

    stix_id: str
    name: str
    tlp: str
    accounts: int  # members its current version matched
    subscription: Subscription


def _current_matches(cluster: AccountCluster):
    """Matches of current, active indicator versions on the cluster's members (superseded
    versions keep their Match rows; they must not count twice)."""
    return Match.objects.filter(
        account__cluster_membership__cluster=cluster,
        indicator__in=active_indicators().exclude(tlp="red").values("pk"),
    )


def triggers(cluster: AccountCluster) -> list[Trigger]:
    """Indicators a report may name as triggering, most members matched first."""
    subscribed = CollectionEntry.objects.filter(submitted_by__subscriptions__isnull=False).values("stix_id")
    rows = (
        _current_matches(cluster)
        .filter(indicator__stix_id__in=subscribed)
        .values("indicator_id", "indicator__stix_id", "indicator__name", "indicator__tlp")
        .annotate(accounts=Count("account", distinct=True))
        .order_by("-accounts", "indicator__stix_id")[:TRIGGER_CHOICES]
    )
    found = []
    for row in rows:
        subscription = indicator_source(row["indicator__stix_id"])
        if subscription is not None:
            found.append(
                Trigger(
                    row["indicator__stix_id"],
                    row["indicator__name"],
                    row["indicator__tlp"],
                    row["accounts"],
                    subscription,
                )
            )
    return found


@dataclass
class _Sent:
    """What earlier reports of this cluster to this hub carried."""

    infrastructure: tuple[str, str] | None = None  # (id, created)
    indicators: dict[str, dict] = field(default_factory=dict)  # pattern → newest object
    relationships: dict[str, dict] = field(default_factory=dict)  # id → newest object
    sightings: dict[str, tuple[str, str]] = field(default_factory=dict)  # trigger → (id, created)
    latest_modified: datetime | None = None

    def note_modified(self, obj: dict) -> None:
        moment = parse_timestamp(obj["modified"])
        if self.latest_modified is None or moment > self.latest_modified:
            self.latest_modified = moment


def _sent_before(cluster: AccountCluster, subscription: Subscription) -> _Sent:
    """Reports that left (or may have left: a failed send's outcome can be unknown); drafts
    never did, so they bind nothing."""
    sent = _Sent()
    reports = FeedbackReport.objects.filter(
        cluster=cluster,
        subscription=subscription,
        status__in=[FeedbackReport.Status.SENT, FeedbackReport.Status.FAILED],
    ).order_by("created_at", "pk")
    for destination, payload in reports.values_list("destination", "payload"):
        for obj in json.loads(payload)["objects"]:
            sent.note_modified(obj)
            if obj["type"] == "sighting" and destination == FeedbackReport.Destination.INBOX:
                sent.sightings[obj["sighting_of_ref"]] = (obj["id"], obj["created"])
            elif obj["type"] == "infrastructure":
                sent.infrastructure = (obj["id"], obj["created"])
            elif obj["type"] == "indicator" and obj.get("revoked"):
                sent.indicators.pop(obj["pattern"], None)  # STIX 2.1 §3.6: never revived
            elif obj["type"] == "indicator":
                sent.indicators[obj["pattern"]] = obj
            elif obj["type"] == "relationship" and obj.get("revoked"):
                sent.relationships.pop(obj["id"], None)
            elif obj["type"] == "relationship":
                sent.relationships[obj["id"]] = obj
    return sent


class _Envelope:
    """Builds the collection part; every object carries the same identity, marking and time."""

    def __init__(self, *, identity: str, marking: str, now: datetime, sent: _Sent):
        self.identity, self.marking, self.sent = identity, marking, sent
        # STIX 2.1 §3.2: a new version's modified is later than the last one's, even when two
        # reports are prepared within the same millisecond.
        if sent.latest_modified is not None and now <= sent.latest_modified:
            now = sent.latest_modified + timedelta(milliseconds=1)
        self.now = now

    def _common(self, kind: str, earlier: tuple[str, str] | None) -> dict:
        stable_id, created = earlier or (f"{kind}--{uuid.uuid4()}", millisecond_stamp(self.now))
        obj = {
            "type": kind,
            "spec_version": "2.1",
            "id": stable_id,
            "created": created,
            "modified": millisecond_stamp(self.now),
            "object_marking_refs": [self.marking],
        }
        if self.identity:
            obj["created_by_ref"] = self.identity
        return obj

    def infrastructure(self, controlled: int) -> dict:
        obj = self._common("infrastructure", self.sent.infrastructure)
        obj.update(
            {
                "name": INFRASTRUCTURE_NAME,
                "description": (
                    "Accounts linked by shared payment, identifier, network or client attributes "
                    "and confirmed on review as one operator's by the reporting member. The account "
                    "count is rounded; no account list is shared."
                ),
                "infrastructure_types": ["anonymization"],
                "labels": ["hydra-cluster"],
                "extensions": {
                    ACTIVITY_PROFILE: {
                        "extension_type": "property-extension",
                        "controlled_account_count": controlled,
                        "figures_basis": "member-observed cluster; account count rounded",
                    }
                },
            }
        )
        return obj

    def indicator(self, identifier: ClusterIdentifier, trigger: str) -> dict:
        before = self.sent.indicators.get(identifier.pattern)
        obj = self._common("indicator", (before["id"], before["created"]) if before else None)
        label = identifier.label[:1].upper() + identifier.label[1:]  # str.capitalize lowers "PAN"
        obj.update(
            {
                "name": f"{label} shared in a member-observed hydra cluster",
                "description": (
                    "Shared by accounts of a hydra cluster confirmed on review by the reporting "
                    f"member, and held by none of its other accounts; derived from {trigger}. Lead for "
                    "review, not proof."
                ),
                "indicator_types": [
                    "anonymization" if identifier.kind == "network-range" else "malicious-activity"
                ],
                "pattern": identifier.pattern,
                "pattern_type": "stix",
                "pattern_version": "2.1",
                "valid_from": obj["created"],
                "confidence": CONFIDENCE[identifier.strong],
                "extensions": {INDICATOR_MATCHING: {"extension_type": "toplevel-property-extension"}},
                "mdx_indicator_kind": identifier.kind,
                "mdx_min_accounts": 1,
                "mdx_action_hint": "review",
            }
        )
        obj["valid_until"] = millisecond_stamp(self.now + ttl_of(indicator_ttl_class(obj)))
        return obj

    def revocation(self, before: dict) -> dict:
        """STIX 2.1 §3.6: the last version of an object this cluster no longer supports."""
        return {**before, "modified": millisecond_stamp(self.now), "revoked": True}

    def relationship(self, kind: str, source_id: str, target_id: str, created: str) -> dict:
        # The id is derived from the ends (our random ids, the hub's indicator), so a re-report
        # re-sends the same relationship rather than a twin.
        name = f"{kind}|{source_id}|{target_id}"
        obj = self._common("relationship", (f"relationship--{uuid.uuid5(_RELATIONSHIP_NS, name)}", created))
        obj.update({"relationship_type": kind, "source_ref": source_id, "target_ref": target_id})
        return obj


def _validated(objects: list[dict]) -> str:
    for index, obj in enumerate(objects):
        try:
            parse_object(obj, index=index)  # exactly what the hub's boundary will check
        except StixError as exc:
            raise FeedbackError(f"the report would be refused: {exc}") from None
    return json.dumps({"objects": objects}, indent=2, ensure_ascii=False)


def _chosen_trigger(cluster: AccountCluster, indicator: str) -> Trigger:
    if cluster.status != AccountCluster.Status.CONFIRMED:
        raise FeedbackError("only a confirmed cluster is reported: review it first")
    if members_changed_since_review(cluster):
        raise FeedbackError(
            "relinking changed this cluster's members after it was confirmed: "
            "review it again before reporting it"
        )
    choices = triggers(cluster)
    if not choices:
        raise FeedbackError(
            "no active indicator from a subscribed hub (below TLP:RED) matched a member of this cluster: "
            "there is no hub to report to"
        )
    trigger = next((c for c in choices if c.stix_id == indicator), None) if indicator else choices[0]
    if trigger is None:
        raise FeedbackError(
            f"{indicator} is not an active, subscribed indicator below TLP:RED "
            "that matched a member of this cluster"
        )
    return trigger


def cluster_report_prepare(
    *, cluster: AccountCluster, indicator: str = "", user=None
) -> tuple[FeedbackReport, FeedbackReport]:
    """Build and freeze the two reports of a confirmed cluster (collection part, inbox part);
    nothing leaves the node yet."""
    trigger = _chosen_trigger(cluster, indicator)
    subscription = trigger.subscription
    sent = _sent_before(cluster, subscription)
    level = trigger.tlp if tlp_rank(trigger.tlp) > tlp_rank("amber") else "amber"
    envelope = _Envelope(
        identity=subscription.member_identity, marking=TLP_IDS[level], now=timezone.now(), sent=sent
    )
    controlled = rounded_count(cluster.size)
    infrastructure = envelope.infrastructure(controlled)
    keyring = getattr(settings, "MDX_KEYRING", None)
    identifiers, truncated = cluster_identifiers(
        cluster.pk,
        current_key=keyring.current if keyring is not None else None,
        limit=max_indicators(),
        min_holders=min_holders(),
        ignore_ids=[obj["id"] for obj in sent.indicators.values()],
    )
    derived = [envelope.indicator(i, trigger.stix_id) for i in identifiers]
    kept = {obj["id"] for obj in derived}
    dropped = [before for before in sent.indicators.values() if before["id"] not in kept]
    dropped_ids = {before["id"] for before in dropped}
    dropped += [r for r in sent.relationships.values() if r["source_ref"] in dropped_ids]  # theirs go too
    revoked = [envelope.revocation(before) for before in dropped]
    relationships = [
        envelope.relationship("indicates", trigger.stix_id, infrastructure["id"], infrastructure["created"])
    ]
    for obj in derived:
        relationships += [
            envelope.relationship("derived-from", obj["id"], trigger.stix_id, obj["created"]),
            envelope.relationship("indicates", obj["id"], infrastructure["id"], obj["created"]),
        ]
    collection_payload = _validated([infrastructure, *derived, *revoked, *relationships])

    # The bucket's lower bound only: the exact number of members the trigger matched would
    # give away the size the infrastructure object rounds.
    count = bucket_floor(trigger.accounts)
    matches = _current_matches(cluster).filter(indicator__stix_id=trigger.stix_id)
    sighting = sighting_object(
        trigger.stix_id,
        matches,
        "confirmed",
        count,
        subscription.member_identity,
        envelope.now,
        version_of=sent.sightings.get(trigger.stix_id),
    )
    inbox_payload = _validated([sighting])

    with transaction.atomic():
        common = {
            "subscription": subscription,
            "cluster": cluster,
            "indicator_stix_id": trigger.stix_id,
            "review_state": "confirmed",
            "created_by": user,
        }
        to_collection = FeedbackReport.objects.create(
            destination=FeedbackReport.Destination.COLLECTION,
            count=controlled,
            payload=collection_payload,
            **common,
        )
        to_inbox = FeedbackReport.objects.create(
            destination=FeedbackReport.Destination.INBOX, count=count, payload=inbox_payload, **common
        )
        audit_record(
            "cluster.report.prepare", user=user, target_type="cluster", target_id=cluster.pk,
            details={
                "indicator": trigger.stix_id, "controlled_account_count": controlled,
                "derived_indicators": len(derived), "revoked_objects": len(revoked),
                "more_identifiers_than_the_limit": truncated, "sighting_count": count,
                "count_bucket": count_bucket(count), "reports": [to_collection.pk, to_inbox.pk],
            },
        )  # fmt: skip
    return to_collection, to_inbox
