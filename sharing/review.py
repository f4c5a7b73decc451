"""The review workflow: reviewers approve or reject the pending objects of submissions.

Approving publishes the object version into the submission's collection (a new date_added)
and marks its status entry a success; rejecting marks it a failure carrying the reviewer's
reason. Either way the TAXII status resource (the Submission) completes once nothing is
pending. Every decision writes an audit event. With ``MDX_FOUR_EYES`` on, nobody approves
objects submitted by an organisation they are a member of.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from sharing.models import Membership, Organisation, Submission, SubmissionItem
from sharing.services import ServiceError, audit_record, collection_publish

log = logging.getLogger(__name__)

MAX_REASON = 1000

# Highest first: a user's role is the highest across their memberships.
ROLE_ORDER = {Membership.Role.VIEWER: 1, Membership.Role.REVIEWER: 2, Membership.Role.ADMIN: 3}


class ReviewError(ServiceError):
    """A decision that may not be made (already decided, four-eyes, missing reason, no right)."""


def user_role(user) -> str | None:
    """The user's role on this node: superusers are admins, else their highest role in an
    operator ("hub"-kind) organisation.

    The web UI is the node operator's console: it shows every submission, object, account and
    alert of the node, unfiltered by grants or TLP. A membership in a partner organisation
    therefore grants nothing here; partners read through TAXII and the REST API, where their
    grants and TLP ceilings apply.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Membership.Role.ADMIN
    roles = (
        Membership.objects.filter(user=user, organisation__kind=Organisation.Kind.HUB)
        .filter(organisation__subscriptions__isnull=True)  # see selectors.organisation_is_operator
        .values_list("role", flat=True)
    )
    return max(roles, key=lambda r: ROLE_ORDER.get(r, 0), default=None)


def role_at_least(user, role: str) -> bool:
    current = user_role(user)
    return current is not None and ROLE_ORDER.get(current, 0) >= ROLE_ORDER[role]


def four_eyes_blocks(*, user, submission: Submission) -> bool:
    """True when the four-eyes rule forbids this user approving this submission's objects."""
    if not settings.MDX_FOUR_EYES:
        return False
    return Membership.objects.filter(user=user, organisation_id=submission.organisation_id).exists()


def _check_reviewer(user, submission: Submission, *, approving: bool) -> None:
    if not role_at_least(user, Membership.Role.REVIEWER):
        raise ReviewError("only reviewers and admins may decide on submissions")
    if approving and four_eyes_blocks(user=user, submission=submission):
        raise ReviewError(
            f"four-eyes rule: you are a member of {submission.organisation.name}, so another "
            "organisation's reviewer must approve its objects"
        )


def _clean_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ReviewError("a reason is required to reject")
    return reason[:MAX_REASON]


def _complete_if_done(submission: Submission) -> None:
    if not submission.items.filter(state=SubmissionItem.State.PENDING).exists():
        Submission.objects.filter(pk=submission.pk, completed_at=None).update(completed_at=timezone.now())


def _claim(items: list[SubmissionItem], *, state: str, user, message: str = "") -> list[SubmissionItem]:
    """Move still-pending items to ``state``; conditional UPDATEs make a double click a no-op."""
    now = timezone.now()
    claimed = []
    for item in items:
        updated = SubmissionItem.objects.filter(pk=item.pk, state=SubmissionItem.State.PENDING).update(
            state=state, message=message, decided_by=user, decided_at=now
        )
        if updated:
            item.state, item.message, item.decided_by, item.decided_at = state, message, user, now
            claimed.append(item)
    return claimed


def pending_review_items() -> QuerySet:
    """Items waiting for a reviewer, each version once per collection: a repeat of a version
    already waiting (a retried POST, a re-pulled page) is decided with the first (_twins)."""
    repeat = SubmissionItem.objects.filter(
        state=SubmissionItem.State.PENDING,
        stix_object=OuterRef("stix_object"),
        submission__collection=OuterRef("submission__collection"),
        pk__lt=OuterRef("pk"),
    )
    return SubmissionItem.objects.filter(state=SubmissionItem.State.PENDING).exclude(Exists(repeat))


def _twins(submission: Submission, claimed: list[SubmissionItem]) -> list[SubmissionItem]:
    """Other pending items of the same versions in the same collection — a client's retried POST
    or a re-pulled page — decided together with the claimed ones: one decision per version."""
    if not claimed:
        return []
    return list(
        SubmissionItem.objects.filter(
            state=SubmissionItem.State.PENDING,
            submission__collection_id=submission.collection_id,
            stix_object__in=[i.stix_object_id for i in claimed],
        ).select_related("submission")
    )


def _decide_twins(submission, claimed, *, state: str, user, message: str = "") -> None:
    twins = _claim(_twins(submission, claimed), state=state, user=user, message=message)
    for other in {t.submission_id: t.submission for t in twins}.values():
        _complete_if_done(other)


def _approve(
    submission: Submission, items: list[SubmissionItem], *, user, ip_address
) -> list[SubmissionItem]:
    _check_reviewer(user, submission, approving=True)
    with transaction.atomic():
        claimed = _claim(items, state=SubmissionItem.State.SUCCESS, user=user)
        _decide_twins(submission, claimed, state=SubmissionItem.State.SUCCESS, user=user)
        versions = [i.stix_object for i in claimed]
        collection_publish(
            collection=submission.collection, stix_objects=versions, submitted_by=submission.organisation
        )
        for item in claimed:
            audit_record(
                "submission.approve",
                user=user,
                organisation=submission.organisation,
                target_type="stix_object",
                target_id=item.stix_id,
                ip_address=ip_address,
                details={"submission": str(submission.pk), "version": item.version, "item": item.pk},
            )
        _complete_if_done(submission)  # collection_publish has queued matching of the new versions
    return claimed


def _reject(
    submission: Submission, items: list[SubmissionItem], *, user, reason: str, ip_address
) -> list[SubmissionItem]:
    _check_reviewer(user, submission, approving=False)
    reason = _clean_reason(reason)
    with transaction.atomic():
        claimed = _claim(items, state=SubmissionItem.State.FAILURE, user=user, message=reason)
        _decide_twins(submission, claimed, state=SubmissionItem.State.FAILURE, user=user, message=reason)
        for item in claimed:
            audit_record(
                "submission.reject",
                user=user,
                organisation=submission.organisation,
                target_type="stix_object",
                target_id=item.stix_id,
                ip_address=ip_address,
                details={
                    "submission": str(submission.pk),
                    "version": item.version,
                    "item": item.pk,
                    "reason": reason,
                },
            )
        _complete_if_done(submission)
    return claimed


def _pending(item: SubmissionItem) -> None:
    if item.state != SubmissionItem.State.PENDING:
        raise ReviewError(f"{item.stix_id or 'this object'} was already decided ({item.state})")


def submission_item_approve(*, item: SubmissionItem, user, ip_address: str | None = None) -> SubmissionItem:
    """Publish one pending object and mark it a success. Raises ReviewError."""
    _pending(item)
    if not _approve(item.submission, [item], user=user, ip_address=ip_address):
        raise ReviewError(f"{item.stix_id} was decided by someone else meanwhile")
    return item


def submission_item_reject(
    *, item: SubmissionItem, user, reason: str, ip_address: str | None = None
) -> SubmissionItem:
    """Mark one pending object a failure whose message carries the reason. Raises ReviewError."""
    _pending(item)
    if not _reject(item.submission, [item], user=user, reason=reason, ip_address=ip_address):
        raise ReviewError(f"{item.stix_id} was decided by someone else meanwhile")
    return item


def _pending_items(submission: Submission) -> list[SubmissionItem]:
    return list(
        submission.items.filter(state=SubmissionItem.State.PENDING).select_related(
            "stix_object", "submission"
        )
    )


def submission_approve_all(
    *, submission: Submission, user, ip_address: str | None = None
) -> list[SubmissionItem]:
    """Approve every pending object of a submission; returns the items this call decided."""
    return _approve(submission, _pending_items(submission), user=user, ip_address=ip_address)


def submission_reject_all(
    *, submission: Submission, user, reason: str, ip_address: str | None = None
) -> list[SubmissionItem]:
    """Reject every pending object of a submission with one reason; returns the decided items."""
    return _reject(submission, _pending_items(submission), user=user, reason=reason, ip_address=ip_address)


def submission_items_decide(
    *, items: list[SubmissionItem], user, approve: bool, reason: str = "", ip_address: str | None = None
) -> list[SubmissionItem]:
    """Bulk decision across submissions (the queue's "selected" actions), all or nothing."""
    by_submission: dict = {}
    for item in items:
        by_submission.setdefault(item.submission_id, (item.submission, []))[1].append(item)
    if not approve:
        _clean_reason(reason)
    decided: list[SubmissionItem] = []
    with transaction.atomic():
        for submission, group in by_submission.values():
            if approve:
                decided += _approve(submission, group, user=user, ip_address=ip_address)
            else:
                decided += _reject(submission, group, user=user, reason=reason, ip_address=ip_address)
    return decided


def alert_review(
    *,
    alert,
    status: str,
    note: str = "",
    user=None,
    token=None,
    ip_address: str | None = None,
    details: dict | None = None,
):
    """Record a decision on a local alert and audit it, in one transaction (web UI and REST).

    Raises indicators.matching_service.DecisionError for a status that is not a decision.
    """
    from indicators.matching_service import alert_decide

    previous = alert.status
    with transaction.atomic():
        alert_decide(alert=alert, status=status, note=note, reviewer=user or (token and token.created_by))
        audit_record(
            "alert.decide", user=user, token=token, target_type="alert", target_id=str(alert.pk),
            ip_address=ip_address, details={"status": alert.status, "from": previous, **(details or {})},
        )  # fmt: skip
    return alert


def cluster_decision_review(
    *, cluster, status: str, note: str = "", user=None, token=None, ip_address: str | None = None,
    details: dict | None = None,
):  # fmt: skip
    """Record a decision on a hydra cluster and audit it, in one transaction (web UI and REST).

    Raises indicators.cluster_service.ClusterReviewError for an unknown status.
    """
    from indicators.cluster_service import cluster_review

    previous = cluster.status
    with transaction.atomic():
        cluster_review(cluster=cluster, user=user or (token and token.created_by), status=status, note=note)
        audit_record(
            "cluster.review", user=user, token=token, target_type="account_cluster",
            target_id=str(cluster.pk), ip_address=ip_address,
            details={"status": cluster.status, "from": previous, "size": cluster.size, **(details or {})},
        )  # fmt: skip
    return cluster


def quarantine_release_review(*, indicator, user=None, token=None, ip_address: str | None = None) -> int:
    """A reviewer releases a quarantined (over-matching) indicator version, audited in the same
    transaction. Raises indicators.matching_service.ReleaseError when it is not quarantined."""
    from indicators.matching_service import quarantine_release

    with transaction.atomic():
        accounts = quarantine_release(indicator.pk)
        audit_record(
            "indicator.release", user=user, token=token, target_type="indicator", target_id=indicator.stix_id,
            ip_address=ip_address, details={"modified": indicator.modified.isoformat(), "accounts": accounts},
        )  # fmt: skip
    return accounts
