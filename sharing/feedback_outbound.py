"""Member side of feedback: count-only sightings and opinions sent back to a source hub.

A reviewer who has decided alerts raised by a subscribed indicator reports the verdict to the
hub the indicator came from (DOMAIN.md §4.4): a sighting with a count only, ``first_seen`` and
``last_seen`` truncated to the day, the ``mdx-sighting-context`` extension, TLP:AMBER+STRICT, no
``observed_data_refs`` and nothing about accounts; optionally an opinion. The envelope is built
and frozen first (``FeedbackReport.payload``), shown to the reviewer, and then posted byte for
byte to the hub's inbox collection over TAXII.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from indicators.extensions import EXTENSION_IDS, TLP_IDS
from indicators.matching_service import active_indicators
from indicators.models import Account, Alert, Match
from indicators.stix import StixError, parse_object
from sharing.federation import PollError, remote_collection, with_retries
from sharing.models import CollectionEntry, FeedbackReport, Subscription
from sharing.services import ServiceError, audit_record

SIGHTING_CONTEXT = EXTENSION_IDS["mdx-sighting-context"]
AMBER_STRICT = TLP_IDS["amber+strict"]
# mdx_review_state (DOMAIN.md §1.7) → the alert status that backs it.
REVIEW_STATES = {
    "confirmed": Alert.Status.CONFIRMED,
    "false-positive": Alert.Status.FALSE_POSITIVE,
    "inconclusive": Alert.Status.TRIAGED,
}
OPINIONS = ("agree", "disagree", "neutral")
DEFAULT_OPINION = {"confirmed": "agree", "false-positive": "disagree", "inconclusive": "neutral"}
# mdx_count_bucket (DOMAIN.md §1.7): (lower bound, label), highest first.
COUNT_BUCKETS = ((1000, "1000+"), (100, "100-999"), (10, "10-99"), (2, "2-9"), (1, "1"))
MAX_EXPLANATION = 2000
_EMAIL_RE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_LONG_DIGITS_RE = re.compile(r"(?:\d[\s().-]?){7,}")  # phone or card numbers
_HEX_HASH_RE = re.compile(r"\b[0-9a-fA-F]{32,}\b")  # pseudonyms and identifier hashes
_WORD_RE = re.compile(r"[A-Za-z0-9_.:@+-]{3,}")


class FeedbackError(ServiceError):
    """Feedback that cannot be prepared or sent; the message says why."""


def count_bucket(count: int) -> str | None:
    return next((label for low, label in COUNT_BUCKETS if count >= low), None)


def bucket_floor(count: int) -> int:
    return next((low for low, _ in COUNT_BUCKETS if count >= low), 0)


def _day(moment: datetime) -> str:
    """A timestamp truncated to the day (DOMAIN.md §4.4): what a sighting may say about time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT00:00:00Z")


def millisecond_stamp(moment: datetime) -> str:
    """A STIX timestamp in UTC with milliseconds, as the objects this node writes carry."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def indicator_source(stix_id: str) -> Subscription | None:
    """The subscription an indicator arrived through (the first, if several brought it)."""
    organisations = CollectionEntry.objects.filter(
        stix_id=stix_id, submitted_by__subscriptions__isnull=False
    ).values_list("submitted_by_id", flat=True)
    return Subscription.objects.filter(organisation_id__in=organisations).order_by("pk").first()


@dataclass(frozen=True)
class FeedbackBasis:
    """What this node's review says about one indicator: the counts a report can carry."""

    indicator_stix_id: str
    subscription: Subscription | None
    by_state: dict[str, int]  # mdx_review_state → accounts whose alert is in that state
    open_alerts: int

    def count(self, review_state: str) -> int:
        return self.by_state.get(review_state, 0)

    @property
    def confirmed(self) -> int:
        return self.count("confirmed")

    @property
    def false_positive(self) -> int:
        return self.count("false-positive")

    @property
    def inconclusive(self) -> int:
        return self.count("inconclusive")


def _alerts_of(stix_id: str):
    return Alert.objects.filter(account__matches__indicator__stix_id=stix_id).distinct()


def feedback_basis(stix_id: str) -> FeedbackBasis:
    alerts = _alerts_of(stix_id)
    statuses = Counter(alerts.values_list("status", flat=True))
    return FeedbackBasis(
        indicator_stix_id=stix_id,
        subscription=indicator_source(stix_id),
        by_state={state: statuses.get(status, 0) for state, status in REVIEW_STATES.items()},
        open_alerts=sum(statuses.get(s, 0) for s in Alert.OPEN),
    )


def explanation_problem(text: str) -> str:
    """Why an opinion's explanation may not leave the node ("" when it may): it must carry no
    account data (DOMAIN.md §1.2) — no account ids or pseudonyms of this node, no e-mail
    addresses, no phone or card numbers, no hashes."""
    if len(text) > MAX_EXPLANATION:
        return f"the explanation is longer than {MAX_EXPLANATION} characters"
    if _EMAIL_RE.search(text):
        return "the explanation contains an e-mail address; feedback must carry no account data"
    if _LONG_DIGITS_RE.search(text):
        return "the explanation contains a long number (phone or card?); feedback must carry no account data"
    if _HEX_HASH_RE.search(text):
        return "the explanation contains a hash or pseudonym; feedback must carry no account data"
    words = set(_WORD_RE.findall(text))
    for start in range(0, len(words), 500):
        chunk = list(words)[start : start + 500]
        if Account.objects.filter(account_id__in=chunk).exists():
            return "the explanation names one of this node's accounts; feedback must carry no account data"
    return ""


def sighting_object(
    stix_id: str,
    matches,
    review_state: str,
    count: int,
    identity: str,
    now: datetime,
    version_of: tuple[str, str] | None = None,
) -> dict:
    """A count-only sighting of ``stix_id`` (DOMAIN.md §4.4); ``matches`` are the local Match
    rows behind it, read for the day-truncated span and the commonest match kind only.
    ``version_of`` = (id, created) makes it a new version of a sighting sent before."""
    span = matches.aggregate(first=Min("matched_at"), last=Max("matched_at"))
    commonest = matches.values("kind").annotate(n=Count("pk")).order_by("-n", "kind").first()
    sighting_id, created = version_of or (f"sighting--{uuid.uuid4()}", millisecond_stamp(now))
    sighting = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": sighting_id,
        "created": created,
        "modified": millisecond_stamp(now),
        "first_seen": _day(span["first"] or now),
        "last_seen": _day(span["last"] or now),
        "count": count,
        "sighting_of_ref": stix_id,
        "object_marking_refs": [AMBER_STRICT],
        "extensions": {SIGHTING_CONTEXT: {"extension_type": "toplevel-property-extension"}},
        "mdx_review_state": review_state,
    }
    if commonest:
        sighting["mdx_match_kind"] = commonest["kind"]
    bucket = count_bucket(count)
    if bucket:
        sighting["mdx_count_bucket"] = bucket
    if identity:
        sighting["created_by_ref"] = identity
        sighting["where_sighted_refs"] = [identity]
    return sighting


def _opinion(stix_id: str, opinion: str, explanation: str, identity: str, now: datetime) -> dict:
    obj = {
        "type": "opinion",
        "spec_version": "2.1",
        "id": f"opinion--{uuid.uuid4()}",
        "created": millisecond_stamp(now),
        "modified": millisecond_stamp(now),
        "opinion": opinion,
        "object_refs": [stix_id],
        "object_marking_refs": [AMBER_STRICT],
    }
    if explanation:
        obj["explanation"] = explanation
    if identity:
        obj["created_by_ref"] = identity
    return obj


def feedback_prepare(
    *,
    stix_id: str,
    review_state: str,
    opinion: str = "",
    explanation: str = "",
    user=None,
) -> FeedbackReport:
    """Build and freeze the envelope for one indicator; nothing leaves the node yet."""
    if review_state not in REVIEW_STATES:
        raise FeedbackError(
            f"unknown review state {review_state!r}; expected one of: {', '.join(REVIEW_STATES)}"
        )
    if opinion and opinion not in OPINIONS:
        raise FeedbackError(f"unknown opinion {opinion!r}; expected one of: {', '.join(OPINIONS)}")
    explanation = " ".join((explanation or "").split())
    if explanation and not opinion:
        raise FeedbackError("an explanation goes with an opinion: choose agree, disagree or neutral")
    problem = explanation_problem(explanation) if explanation else ""
    if problem:
        raise FeedbackError(problem)
    basis = feedback_basis(stix_id)
    if basis.subscription is None:
        raise FeedbackError(f"{stix_id} did not arrive through a subscription: there is no hub to report to")
    count = basis.count(review_state)
    if count == 0:
        raise FeedbackError(
            f"no alert raised by {stix_id} is {REVIEW_STATES[review_state].label.lower()} yet"
        )
    if getattr(settings, "MDX_FEEDBACK_COUNT", "exact") == "bucket":
        count = bucket_floor(count)  # member policy: report the bucket's lower bound only
    identity = basis.subscription.member_identity
    now = timezone.now()
    matches = Match.objects.filter(
        indicator__stix_id=stix_id, account__alert__status=REVIEW_STATES[review_state]
    )
    objects = [sighting_object(stix_id, matches, review_state, count, identity, now)]
    if opinion:
        objects.append(_opinion(stix_id, opinion, explanation, identity, now))
    for index, obj in enumerate(objects):
        try:
            parse_object(obj, index=index)  # exactly what the hub's boundary will check
        except StixError as exc:
            raise FeedbackError(f"the feedback would be refused: {exc}") from None
    payload = json.dumps({"objects": objects}, indent=2, ensure_ascii=False)
    with transaction.atomic():
        report = FeedbackReport.objects.create(
            subscription=basis.subscription,
            indicator_stix_id=stix_id,
            review_state=review_state,
            count=count,
            opinion=opinion,
            payload=payload,
            created_by=user,
        )
        audit_record(
            "feedback.prepare", user=user, target_type="feedback", target_id=report.pk,
            details={"indicator": stix_id, "review_state": review_state, "count": count, "opinion": opinion},
        )  # fmt: skip
    return report


def feedback_send(*, report: FeedbackReport, user=None, ip_address: str | None = None) -> FeedbackReport:
    """POST the frozen envelope to the source hub's inbox (the new objects of a cluster report go
    to the subscribed collection instead, where the hub reviews them). A failed send is kept with
    its error and may be retried; re-sending after an unknown outcome is safe (same ids and
    versions)."""
    if report.status == FeedbackReport.Status.SENT:
        raise FeedbackError("this report was already sent")
    subscription = report.subscription
    if report.destination == FeedbackReport.Destination.COLLECTION:
        # The objects reference the triggering indicator; its marking may have changed since.
        if not active_indicators().filter(stix_id=report.indicator_stix_id).exclude(tlp="red").exists():
            raise FeedbackError(
                f"{report.indicator_stix_id} is no longer an active indicator below TLP:RED: "
                "discard this report and prepare a new one"
            )
        target, where = subscription.remote_collection_id, "collection"
    elif subscription.inbox_collection_id is None:
        raise FeedbackError(
            f"subscription {subscription.name!r} names no inbox collection at the hub; "
            "set one (add_subscription --inbox ID) before sending feedback"
        )
    else:
        target, where = subscription.inbox_collection_id, "inbox"
    try:
        with remote_collection(subscription, target) as (remote, _):
            if not remote.can_write:
                raise PollError(f"the hub's {where} does not accept writes with this token: {remote.url}")
            status = with_retries(
                lambda: remote.add_objects(report.payload, wait_for_completion=False), remote.objects_url
            )
        failures = [f"{f.get('id', '?')}: {f.get('message', '')}" for f in (status.failures or [])]
        if failures:
            raise PollError("the hub refused the feedback: " + "; ".join(failures))
    except PollError as exc:
        report.status, report.error = FeedbackReport.Status.FAILED, str(exc)
    else:
        report.status, report.error = FeedbackReport.Status.SENT, ""
        report.sent_at = timezone.now()
        report.remote_status_id, report.remote_status = str(status.id), str(status.status)
    with transaction.atomic():
        report.save()
        audit_record(
            "feedback.send", user=user, target_type="feedback", target_id=report.pk, ip_address=ip_address,
            details={"status": report.status, "error": report.error[:300], "hub": report.remote_status_id},
        )  # fmt: skip
    return report
