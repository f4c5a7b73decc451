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
* **to the hub's inbox**: a count-only sighting of the triggering indicator — the members it
  matched — TLP:AMBER+STRICT, like any feedback sighting.

No per-account list leaves the node: no account ids or pseudonyms, no member count other than
the rounded size, only values several members share and no other customer holds. Reporting the
same cluster again issues new versions of the objects sent before (same ids, same ``created``).
A TLP:RED triggering indicator is never referenced in anything sent.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from indicators.cluster_values import ClusterIdentifier, cluster_identifiers
from indicators.decay import indicator_ttl_class, ttl_of
from indicators.extensions import EXTENSION_IDS, TLP_IDS, tlp_rank
from indicators.matching_service import active_indicators
from indicators.models import AccountCluster, Match
from indicators.stix import StixError, parse_object
from sharing.feedback_outbound import (
    FeedbackError,
    bucket_floor,
    count_bucket,
    indicator_source,
    millisecond_stamp,
    sighting_object,
)
from sharing.models import FeedbackReport, Subscription
from sharing.services import audit_record

ACTIVITY_PROFILE = EXTENSION_IDS["mdx-activity-profile"]
INDICATOR_MATCHING = EXTENSION_IDS["mdx-indicator-matching"]
INFRASTRUCTURE_NAME = "Hydra cluster, member-observed"
_RELATIONSHIP_NS = uuid.UUID("0f4c7d52-6a38-4f8e-9d1b-2c6e5a9b7d31")
# A strong identifier (payment, e-mail, phone, device) is a better lead than a weak one (§4.3.2–3).
CONFIDENCE = {True: 60, False: 30}
TRIGGER_CHOICES = 50


def max_indicators() -> int:
    return max(0, int(getattr(settings, "MDX_CLUSTER_REPORT_MAX_INDICATORS", 50)))


def rounded_count(size: int) -> int:
    """The cluster's size as it may leave the node: to the nearest ten below 100, to two
    significant figures above (20,345 → 20,000), never below 10."""
    if size < 100:
        return max(10, (size + 5) // 10 * 10)
    step = 10 ** (len(str(size)) - 2)
    return (size + step // 2) // step * step


@dataclass(frozen=True)
class Trigger:
    """A subscribed, active indicator that matched members of the cluster."""

    stix_id: str
    name: str
    tlp: str
    accounts: int  # members it matched
    subscription: Subscription


def triggers(cluster: AccountCluster) -> list[Trigger]:
    """Indicators a report may name as triggering, most members matched first."""
    rows = list(
        Match.objects.filter(account__cluster_membership__cluster=cluster)
        .values("indicator__stix_id")
        .annotate(accounts=Count("account", distinct=True))
        .order_by("-accounts", "indicator__stix_id")[: TRIGGER_CHOICES * 4]
    )
    current = {
        obj.stix_id: obj
        for obj in active_indicators().filter(stix_id__in=[r["indicator__stix_id"] for r in rows])
    }
    found = []
    for row in rows:
        obj = current.get(row["indicator__stix_id"])
        subscription = indicator_source(obj.stix_id) if obj is not None else None
        if subscription is not None:
            found.append(Trigger(obj.stix_id, obj.name, obj.tlp, row["accounts"], subscription))
        if len(found) == TRIGGER_CHOICES:
            break
    return found


def _previous(cluster: AccountCluster, subscription: Subscription) -> dict[str, tuple[str, str]]:
    """What earlier reports of this cluster sent: infrastructure or pattern → (id, created)."""
    known: dict[str, tuple[str, str]] = {}
    payloads = FeedbackReport.objects.filter(
        cluster=cluster, subscription=subscription, destination=FeedbackReport.Destination.COLLECTION
    ).order_by("created_at", "pk")
    for payload in payloads.values_list("payload", flat=True):
        for obj in json.loads(payload)["objects"]:
            if obj["type"] == "infrastructure":
                known["infrastructure"] = (obj["id"], obj["created"])
            elif obj["type"] == "indicator":
                known[obj["pattern"]] = (obj["id"], obj["created"])
    return known


class _Envelope:
    """Builds the collection part; every object carries the same identity, marking and time."""

    def __init__(self, *, identity: str, marking: str, now: datetime, previous: dict[str, tuple[str, str]]):
        self.identity, self.marking, self.now, self.previous = identity, marking, now, previous

    def _common(self, kind: str, key: str) -> dict:
        stable_id, created = self.previous.get(key, (f"{kind}--{uuid.uuid4()}", millisecond_stamp(self.now)))
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
        obj = self._common("infrastructure", "infrastructure")
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
        obj = self._common("indicator", identifier.pattern)
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

    def relationship(self, kind: str, source_id: str, target_id: str, created: str) -> dict:
        # The id is derived from the ends (our random ids, the hub's indicator), so a re-report
        # re-sends the same relationship rather than a twin.
        name = f"{kind}|{source_id}|{target_id}"
        obj = {
            **self._common("relationship", name),
            "id": f"relationship--{uuid.uuid5(_RELATIONSHIP_NS, name)}",
        }
        obj.update(
            {"created": created, "relationship_type": kind, "source_ref": source_id, "target_ref": target_id}
        )
        return obj


def _validated(objects: list[dict]) -> str:
    for index, obj in enumerate(objects):
        try:
            parse_object(obj, index=index)  # exactly what the hub's boundary will check
        except StixError as exc:
            raise FeedbackError(f"the report would be refused: {exc}") from None
    return json.dumps({"objects": objects}, indent=2, ensure_ascii=False)


def cluster_report_prepare(
    *, cluster: AccountCluster, indicator: str = "", user=None
) -> tuple[FeedbackReport, FeedbackReport]:
    """Build and freeze the two reports of a confirmed cluster (collection part, inbox part);
    nothing leaves the node yet."""
    if cluster.status != AccountCluster.Status.CONFIRMED:
        raise FeedbackError("only a confirmed cluster is reported: review it first")
    choices = triggers(cluster)
    if not choices:
        raise FeedbackError(
            "no active indicator from a subscribed hub matched a member of this cluster: "
            "there is no hub to report to"
        )
    trigger = next((c for c in choices if c.stix_id == indicator), None) if indicator else choices[0]
    if trigger is None:
        raise FeedbackError(
            f"{indicator} is not an active, subscribed indicator that matched a member of this cluster"
        )
    if trigger.tlp == "red":
        raise FeedbackError(f"{trigger.stix_id} is TLP:RED: nothing that references it is shared")
    subscription = trigger.subscription
    level = trigger.tlp if tlp_rank(trigger.tlp) > tlp_rank("amber") else "amber"
    now = timezone.now()
    envelope = _Envelope(
        identity=subscription.member_identity,
        marking=TLP_IDS[level],
        now=now,
        previous=_previous(cluster, subscription),
    )
    controlled = rounded_count(cluster.size)
    infrastructure = envelope.infrastructure(controlled)
    identifiers = cluster_identifiers(cluster.pk)
    derived = [envelope.indicator(i, trigger.stix_id) for i in identifiers[: max_indicators()]]
    relationships = [
        envelope.relationship("indicates", trigger.stix_id, infrastructure["id"], infrastructure["created"])
    ]
    for obj in derived:
        relationships += [
            envelope.relationship("derived-from", obj["id"], trigger.stix_id, obj["created"]),
            envelope.relationship("indicates", obj["id"], infrastructure["id"], obj["created"]),
        ]
    collection_payload = _validated([infrastructure, *derived, *relationships])

    count = trigger.accounts
    if getattr(settings, "MDX_FEEDBACK_COUNT", "exact") == "bucket":
        count = bucket_floor(count)  # member policy: report the bucket's lower bound only
    matches = Match.objects.filter(
        indicator__stix_id=trigger.stix_id, account__cluster_membership__cluster=cluster
    )
    sighting = sighting_object(
        trigger.stix_id, matches, "confirmed", count, subscription.member_identity, now
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
                "derived_indicators": len(derived), "identifiers_left_out": len(identifiers) - len(derived),
                "sighting_count": count, "count_bucket": count_bucket(count),
                "reports": [to_collection.pk, to_inbox.pk],
            },
        )  # fmt: skip
    return to_collection, to_inbox
