"""Submissions: one POSTed envelope, validated object by object, published or held for review.

A Submission is the TAXII 2.1 status resource (§4.3.1): each object ends as a success, a
failure with a message, or pending until a reviewer decides. Feedback posted to an inbox and an
originator's revocation of its own published object skip review.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from indicators.services import stix_objects_store
from indicators.stix import StixError, parse_object
from sharing.feedback_inbox import feedback_record, inbox_object_problem
from sharing.models import ApiToken, Collection, CollectionEntry, Organisation, Submission, SubmissionItem
from sharing.services import audit_record, collection_publish

MAX_MESSAGE = 1000


def _foreign_identity_error(obj: dict, organisation: Organisation, member_identities: dict[str, str]) -> str:
    """Members may not speak for each other: created_by_ref must not name another member."""
    ref = obj.get("created_by_ref")
    if ref and ref != organisation.identity_id and ref in member_identities:
        return (
            f"{obj['type']} {obj['id']}: created_by_ref names another member organisation "
            f"({member_identities[ref]}); submit objects under your own identity"
        )
    return ""


def _own_revocation(obj, collection: Collection, organisation: Organisation) -> bool:
    """A revoked version of an object this organisation created and already published here."""
    return (
        obj.revoked
        and obj.created_by_ref == organisation.identity_id
        and CollectionEntry.objects.filter(
            collection=collection, stix_id=obj.stix_id, stix_object__created_by_ref=organisation.identity_id
        ).exists()
    )


def _rejected_on_review(collection: Collection, stix_object_pks: list[int]) -> dict[int, str]:
    """Versions a reviewer already rejected in this collection → the reviewer's reason."""
    rejected: dict[int, str] = {}
    for start in range(0, len(stix_object_pks), 1000):
        rows = SubmissionItem.objects.filter(
            submission__collection=collection,
            stix_object__in=stix_object_pks[start : start + 1000],
            state=SubmissionItem.State.FAILURE,
            decided_at__isnull=False,
        ).values_list("stix_object_id", "message")
        rejected.update(rows)
    return rejected


def submission_create(
    *,
    collection: Collection,
    organisation: Organisation,
    objects: list,
    token: ApiToken | None = None,
    ip_address: str | None = None,
) -> Submission:
    """Validate and store every object; publish them (trusted) or hold them for review.

    Invalid objects become failures with a message and store nothing. An identical version
    already published in the collection is a success and adds no entry (idempotent re-post).
    """
    items: list[SubmissionItem] = []
    valid: list[tuple[SubmissionItem, dict]] = []
    members = {o.identity["id"]: o.name for o in Organisation.objects.only("identity", "name")}
    for position, raw in enumerate(objects):
        item = SubmissionItem(position=position, state=SubmissionItem.State.FAILURE)
        if isinstance(raw, dict):
            item.stix_id = str(raw.get("id", ""))[:300]
            item.version = str(raw.get("modified") or raw.get("created") or "")[:40]
        items.append(item)
        try:
            obj = parse_object(raw, index=position) if isinstance(raw, dict) else None
        except StixError as exc:
            item.message = str(exc)[:MAX_MESSAGE]
            continue
        if obj is None:
            item.message = f"object #{position}: not a JSON object"
            continue
        problem = _foreign_identity_error(obj, organisation, members)
        if not problem and collection.is_inbox:
            problem = inbox_object_problem(obj, organisation)
        if problem:
            item.message = problem
            continue
        valid.append((item, obj))

    with transaction.atomic():
        submission = Submission.objects.create(collection=collection, organisation=organisation, token=token)
        stored = stix_objects_store([obj for _, obj in valid])
        to_publish = []
        for (item, _), result in zip(valid, stored, strict=True):
            if result.stix_object is None:
                item.message = result.error[:MAX_MESSAGE]
                continue
            item.stix_object = result.stix_object
            to_publish.append(item)
        already = (
            set(
                CollectionEntry.objects.filter(
                    collection=collection, stix_object__in=[i.stix_object_id for i in to_publish]
                ).values_list("stix_object_id", flat=True)
            )
            if to_publish
            else set()
        )
        rejected = (
            {}
            if organisation.is_trusted
            else _rejected_on_review(
                collection, [i.stix_object_id for i in to_publish if i.stix_object_id not in already]
            )
        )
        publish_now = []
        for item in to_publish:
            # Feedback is never republished, so an inbox takes it at once whatever the policy;
            # an originator's revocation only withdraws, so it needs no reviewer either.
            if item.stix_object_id in rejected:
                # Versions are immutable (STIX 2.1 §3.6): a re-sent or re-pulled version a
                # reviewer rejected stays rejected; a changed object needs a new `modified`.
                reason = rejected[item.stix_object_id]
                item.message = f"this version was rejected on review: {reason}"[:MAX_MESSAGE]
            elif (
                organisation.is_trusted
                or collection.is_inbox
                or item.stix_object_id in already
                or _own_revocation(item.stix_object, collection, organisation)
            ):
                item.state = SubmissionItem.State.SUCCESS
                publish_now.append(item.stix_object)
            else:
                item.state = SubmissionItem.State.PENDING
        collection_publish(collection=collection, stix_objects=publish_now, submitted_by=organisation)
        if collection.is_inbox:
            feedback_record([o.data for o in publish_now], organisation)
        for item in items:
            item.submission = submission
        SubmissionItem.objects.bulk_create(items, batch_size=1000)
        if not any(i.state == SubmissionItem.State.PENDING for i in items):
            submission.completed_at = timezone.now()
            submission.save(update_fields=["completed_at"])
        audit_record(
            "submission.create",
            token=token,
            organisation=organisation,
            target_type="submission",
            target_id=submission.pk,
            ip_address=ip_address,
            details={
                "collection": str(collection.pk),
                "objects": len(items),
                "published": len(publish_now),
                "pending": sum(i.state == SubmissionItem.State.PENDING for i in items),
                "failed": sum(i.state == SubmissionItem.State.FAILURE for i in items),
            },
        )
    return submission
