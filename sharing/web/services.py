"""Admin writes that only the web UI offers so far: review policy, memberships. Each is audited."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from sharing.models import Membership, Organisation
from sharing.services import ServiceError, audit_record


def organisation_policy_set(*, organisation: Organisation, review_policy: str, user=None) -> Organisation:
    if review_policy not in Organisation.ReviewPolicy.values:
        raise ServiceError(f"unknown review policy {review_policy!r}")
    if organisation.review_policy != review_policy:
        with transaction.atomic():
            old = organisation.review_policy
            organisation.review_policy = review_policy
            organisation.save(update_fields=["review_policy"])
            audit_record(
                "organisation.policy",
                user=user,
                organisation=organisation,
                target_type="organisation",
                target_id=organisation.pk,
                details={"from": old, "to": review_policy},
            )
    return organisation


def membership_set(
    *, organisation: Organisation, username: str, role: str, user=None
) -> tuple[Membership, str | None]:
    """Give a user a role in an organisation, creating the user if needed.

    Returns (membership, password): the password is set only for a newly created user and is
    shown once; it exists nowhere else.
    """
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise ServiceError("a user name of 1 to 150 characters is required")
    if role not in Membership.Role.values:
        raise ServiceError(f"unknown role {role!r}")
    User = get_user_model()
    password = None
    with transaction.atomic():
        member = User.objects.filter(username__iexact=username).first()
        if member is None:
            password = secrets.token_urlsafe(12)
            member = User.objects.create_user(username=username, password=password)
            audit_record("user.create", user=user, target_type="user", target_id=member.get_username())
        membership, _ = Membership.objects.update_or_create(
            user=member, organisation=organisation, defaults={"role": role}
        )
        audit_record(
            "membership.set",
            user=user,
            organisation=organisation,
            target_type="user",
            target_id=member.get_username(),
            details={"role": role},
        )
    return membership, password


def membership_remove(*, membership: Membership, user=None) -> None:
    with transaction.atomic():
        audit_record(
            "membership.remove",
            user=user,
            organisation=membership.organisation,
            target_type="user",
            target_id=membership.user.get_username(),
            details={"role": membership.role},
        )
        membership.delete()
