"""Hub side of feedback: the inbox that members write and only the hub reads (DOMAIN.md §4.4).

Members post count-only sightings of indicators, opinions about them and context notes. The
hub keeps, per indicator, how many member organisations sighted it, the summed count, the
latest ``last_seen`` and the tally of opinions. The originator of the indicator and the hub's
reviewers see these aggregates; any other member who may read the indicator sees only a
threshold ("sighted by ≥ 3 members") and never which member sighted what.

Feedback is attributed to the authenticated submitting organisation, never to a claim inside
the object, and an object may not claim to be from or sighted by anyone else.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from indicators.models import StixObject
from indicators.services import parse_timestamp
from indicators.stix import tlp_level
from sharing.models import Organisation, ReceivedOpinion, ReceivedSighting
from sharing.selectors import organisation_is_operator, visible_entries

INBOX_TYPES = ("sighting", "opinion", "note")
# STIX 2.1 §4.11 opinion-enum, folded into the three verdicts DOMAIN.md §4.4 uses.
OPINION_VERDICT = {
    "strongly-agree": "agree",
    "agree": "agree",
    "neutral": "neutral",
    "disagree": "disagree",
    "strongly-disagree": "disagree",
}
# What a member who is not the originator sees: the largest step ≤ the number of members.
DISCLOSURE_STEPS = (3, 5, 10, 25, 50, 100)
# A false-positive sighting says "matched, but not really": it is not counted as sighted.
NOT_SIGHTED_STATES = frozenset({"false-positive"})


def disclosure_threshold() -> int:
    return max(2, int(getattr(settings, "MDX_FEEDBACK_MIN_MEMBERS", 3)))


# --- Accepting feedback ---------------------------------------------------------------------------


def _claims_problem(obj: dict, organisation: Organisation) -> str:
    own = organisation.identity_id
    if obj.get("created_by_ref") not in (None, own):
        return f"{obj['id']}: created_by_ref must be your own identity ({own}) or absent"
    if obj["type"] == "sighting" and any(ref != own for ref in obj.get("where_sighted_refs") or []):
        return f"{obj['id']}: where_sighted_refs may name only your own identity ({own})"
    return ""


def inbox_object_problem(obj: dict, organisation: Organisation) -> str:
    """Why a validated STIX object may not enter an inbox, or "" when it may."""
    kind = obj["type"]
    if kind not in INBOX_TYPES:
        return f"{obj['id']}: a feedback inbox accepts only {', '.join(INBOX_TYPES)} objects, not {kind}"
    allowed = ("amber+strict",) if kind in ("sighting", "opinion") else ("amber+strict", "amber")
    if tlp_level(obj) not in allowed:
        wanted = "TLP:AMBER+STRICT" if kind != "note" else "TLP:AMBER or TLP:AMBER+STRICT"
        return f"{obj['id']}: feedback must be marked {wanted} (it goes to the hub only)"
    if kind == "sighting":
        if obj.get("observed_data_refs"):
            return f"{obj['id']}: sightings sent to the hub carry no observed_data_refs (counts only)"
        if not str(obj.get("sighting_of_ref", "")).startswith("indicator--"):
            return f"{obj['id']}: sighting_of_ref must be an indicator"
        if "count" not in obj:
            return f"{obj['id']}: a sighting sent to the hub must state its count"
    elif not any(str(ref).startswith("indicator--") for ref in obj.get("object_refs") or []):
        return f"{obj['id']}: object_refs must name at least one indicator"
    return _claims_problem(obj, organisation)


def _newer(existing_modified: datetime | None, modified: datetime) -> bool:
    return existing_modified is None or modified > existing_modified


def feedback_record(objects: list[dict], organisation: Organisation) -> None:
    """Keep the newest version of each accepted sighting and opinion (call inside the
    submission's transaction, with objects that passed ``inbox_object_problem``). The hub's
    relayed summaries of the indicators concerned are updated after commit."""
    touched: set[str] = set()
    for obj in objects:
        modified = parse_timestamp(obj.get("modified") or obj["created"])
        if obj["type"] == "sighting":
            current = ReceivedSighting.objects.filter(sighting_id=obj["id"]).first()
            if current is not None and (
                current.organisation_id != organisation.pk or not _newer(current.modified, modified)
            ):
                continue  # an older version, or another member reusing the id: keep what we have
            touched.add(obj["sighting_of_ref"])
            ReceivedSighting.objects.update_or_create(
                sighting_id=obj["id"],
                defaults={
                    "modified": modified,
                    "indicator_stix_id": obj["sighting_of_ref"],
                    "organisation": organisation,
                    "count": int(obj.get("count", 0)),
                    "first_seen": parse_timestamp(obj["first_seen"]) if obj.get("first_seen") else None,
                    "last_seen": parse_timestamp(obj["last_seen"]) if obj.get("last_seen") else None,
                    "review_state": str(obj.get("mdx_review_state", ""))[:20],
                },
            )
        elif obj["type"] == "opinion":
            verdict = OPINION_VERDICT[obj["opinion"]]
            for ref in obj["object_refs"]:
                if not ref.startswith("indicator--"):
                    continue
                current = ReceivedOpinion.objects.filter(opinion_id=obj["id"], indicator_stix_id=ref).first()
                if current is not None and (
                    current.organisation_id != organisation.pk or not _newer(current.modified, modified)
                ):
                    continue
                ReceivedOpinion.objects.update_or_create(
                    opinion_id=obj["id"],
                    indicator_stix_id=ref,
                    defaults={"modified": modified, "organisation": organisation, "opinion": verdict},
                )
    if touched:
        relay_enqueue(sorted(touched))


def relay_enqueue(stix_ids: list[str]) -> None:
    """Queue an update of the relayed summaries after commit. robust: a broker outage must not
    fail the member's POST; the periodic relay sweep catches up."""
    from sharing.tasks import relay_feedback

    transaction.on_commit(lambda: relay_feedback.delay(stix_ids), robust=True)


# --- Aggregates -----------------------------------------------------------------------------------


@dataclass
class FeedbackAggregate:
    """What the hub knows about one indicator from its members' feedback."""

    indicator_stix_id: str
    members: int = 0  # member organisations with a sighting that is not a false positive
    total_count: int = 0
    last_seen: datetime | None = None
    false_positive_members: int = 0
    opinions: dict[str, int] = field(default_factory=lambda: {"agree": 0, "disagree": 0, "neutral": 0})

    @property
    def disputed(self) -> bool:
        """Members disagree: either two or more say "disagree", or some agree and others do not."""
        return self.opinions["disagree"] >= 2 or (
            self.opinions["agree"] >= 1 and self.opinions["disagree"] >= 1
        )

    @property
    def dispute_reason(self) -> str:
        if not self.disputed:
            return ""
        if self.opinions["agree"] and self.opinions["disagree"]:
            return f"{self.opinions['agree']} member(s) agree, {self.opinions['disagree']} disagree"
        return f"{self.opinions['disagree']} members disagree"

    def as_dict(self) -> dict:
        return {
            "indicator_id": self.indicator_stix_id,
            "sighted_by_members": self.members,
            "total_count": self.total_count,
            "last_seen": self.last_seen.isoformat().replace("+00:00", "Z") if self.last_seen else None,
            "false_positive_members": self.false_positive_members,
            "opinions": dict(self.opinions),
            "disputed": self.disputed,
            "dispute_reason": self.dispute_reason,
        }

    def thresholded(self) -> dict:
        """The view of a member who is not the originator: a lower bound, or nothing."""
        shown = max((s for s in DISCLOSURE_STEPS if s <= self.members), default=0)
        return {
            "indicator_id": self.indicator_stix_id,
            "sighted_by_at_least": shown if self.members >= disclosure_threshold() else None,
            "threshold": disclosure_threshold(),
        }


def feedback_aggregates(stix_ids: list[str] | None = None) -> dict[str, FeedbackAggregate]:
    """Aggregates per indicator id (every indicator with feedback when ``stix_ids`` is None)."""
    sightings = ReceivedSighting.objects.all()
    opinions = ReceivedOpinion.objects.all()
    if stix_ids is not None:
        sightings = sightings.filter(indicator_stix_id__in=stix_ids)
        opinions = opinions.filter(indicator_stix_id__in=stix_ids)
    result: dict[str, FeedbackAggregate] = {}
    sighted: dict[str, set[int]] = defaultdict(set)
    false_positive: dict[str, set[int]] = defaultdict(set)
    # A member's sighting states how many of its accounts are in a review state now, so its
    # newest sighting per indicator and state replaces the older ones instead of adding to them
    # (a repeated report, or a cluster report after alert feedback, is not counted twice).
    newest_sighting: dict[tuple[str, int, str], tuple] = {}
    rows = sightings.values_list(
        "indicator_stix_id", "organisation_id", "count", "last_seen", "review_state", "modified", "pk"
    )
    for stix_id, org, count, last_seen, state, modified, pk in rows:
        key = (stix_id, org, state)
        if key not in newest_sighting or (modified, pk) > newest_sighting[key][2:]:
            newest_sighting[key] = (count, last_seen, modified, pk)
    for (stix_id, org, state), (count, last_seen, _, _) in newest_sighting.items():
        agg = result.setdefault(stix_id, FeedbackAggregate(stix_id))
        if state in NOT_SIGHTED_STATES:
            false_positive[stix_id].add(org)
            continue
        sighted[stix_id].add(org)
        agg.total_count += count
        if last_seen is not None and (agg.last_seen is None or last_seen > agg.last_seen):
            agg.last_seen = last_seen
    # One verdict per member and indicator: its newest opinion.
    newest: dict[tuple[str, int], tuple[datetime, str]] = {}
    for stix_id, org, modified, verdict in opinions.values_list(
        "indicator_stix_id", "organisation_id", "modified", "opinion"
    ):
        key = (stix_id, org)
        if key not in newest or modified > newest[key][0]:
            newest[key] = (modified, verdict)
    for (stix_id, _), (_, verdict) in newest.items():
        result.setdefault(stix_id, FeedbackAggregate(stix_id)).opinions[verdict] += 1
    for stix_id, agg in result.items():
        agg.members = len(sighted[stix_id])
        agg.false_positive_members = len(false_positive[stix_id] - sighted[stix_id])
    return result


def originated_by(organisation: Organisation) -> Q:
    """Indicator versions the organisation originated: its identity is their created_by_ref."""
    return Q(created_by_ref=organisation.identity_id)


def indicator_originator_ids(stix_id: str) -> set[str]:
    return set(
        StixObject.objects.filter(stix_id=stix_id)
        .exclude(created_by_ref="")
        .values_list("created_by_ref", flat=True)
    )


@dataclass(frozen=True)
class FeedbackView:
    """One organisation's view of the feedback on one indicator."""

    full: bool  # originator or node operator: the aggregates; otherwise the threshold only
    data: dict


def feedback_view(organisation: Organisation, stix_id: str) -> FeedbackView | None:
    """The feedback the organisation may see on an indicator, or None when it may not read the
    indicator at all (callers answer 404, as for the object itself)."""
    if not stix_id.startswith("indicator--"):
        return None
    operator = organisation_is_operator(organisation)
    if not operator and not visible_entries(organisation).filter(stix_id=stix_id).exists():
        return None
    aggregate = feedback_aggregates([stix_id]).get(stix_id) or FeedbackAggregate(stix_id)
    if operator or organisation.identity_id in indicator_originator_ids(stix_id):
        return FeedbackView(True, aggregate.as_dict())
    return FeedbackView(False, aggregate.thresholded())


def _ranked(aggregates) -> list[FeedbackAggregate]:
    """Disputed first, then by the number of members who sighted them."""
    return sorted(aggregates, key=lambda a: (not a.disputed, -a.members, -a.total_count, a.indicator_stix_id))


def all_feedback() -> list[FeedbackAggregate]:
    """Every indicator with feedback: the hub's reviewers' view."""
    return _ranked(feedback_aggregates().values())


def originator_feedback(organisation: Organisation) -> list[FeedbackAggregate]:
    """Aggregates on every indicator the organisation originated (all of them for the node
    operator)."""
    if organisation_is_operator(organisation):
        return all_feedback()
    aggregates = feedback_aggregates()
    own = set(
        StixObject.objects.filter(originated_by(organisation), stix_id__in=list(aggregates)).values_list(
            "stix_id", flat=True
        )
    )
    return _ranked(a for stix_id, a in aggregates.items() if stix_id in own)
