"""The web UI cast: a hub whose staff review, a review-policy partner that submits, users per role.

* ``hub``      – MDX Hub Operator (trusted); ``admin_user`` (admin), ``reviewer`` (reviewer).
* ``partner``  – Borealis Research, review policy, token ``partner_token`` (read, write);
                 ``partner_reviewer`` is a reviewer *of the partner* (for the four-eyes rule).
* ``viewer``   – a viewer of the hub.
* ``feed``     – collection both organisations read and write.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

PASSWORD = "correct-horse-battery-9"


@dataclass
class WebCast:
    hub: object
    partner: object
    feed: object
    partner_token: object
    partner_plaintext: str
    admin_user: object
    reviewer: object
    viewer: object
    partner_reviewer: object


def _user(django_user_model, username, org, role):
    from sharing.models import Membership

    user = django_user_model.objects.create_user(username, password=PASSWORD)
    Membership.objects.create(user=user, organisation=org, role=role)
    return user


@pytest.fixture
def web(django_user_model, make_org) -> WebCast:
    from sharing.services import GrantSpec, collection_create, token_issue

    hub = make_org("MDX Hub Operator", "hub", trusted=True)
    partner = make_org("Borealis Research", "lab")
    feed = collection_create(
        title="consortium-indicators",
        description="Indicators shared between members",
        grants=[GrantSpec(hub, True, True), GrantSpec(partner, True, True)],
    )
    token, plaintext = token_issue(organisation=partner, scopes="read,write", name="partner")
    return WebCast(
        hub=hub,
        partner=partner,
        feed=feed,
        partner_token=token,
        partner_plaintext=plaintext,
        admin_user=_user(django_user_model, "ada", hub, "admin"),
        reviewer=_user(django_user_model, "rey", hub, "reviewer"),
        viewer=_user(django_user_model, "vic", hub, "viewer"),
        partner_reviewer=_reviewer_of_both(django_user_model, hub, partner),
    )


def _reviewer_of_both(django_user_model, hub, partner):
    """Hub staff who also belong to the partner: the case the four-eyes rule is about."""
    from sharing.models import Membership

    user = _user(django_user_model, "pat", hub, "reviewer")
    Membership.objects.create(user=user, organisation=partner, role="reviewer")
    return user


@pytest.fixture
def submit(web):
    """Submit objects as the partner (review policy) the way a TAXII POST does."""
    from sharing.submissions import submission_create

    def do(objects: list[dict]):
        return submission_create(
            collection=web.feed, organisation=web.partner, objects=objects, token=web.partner_token
        )

    return do


@pytest.fixture
def client_for(client, django_user_model):
    """A test client signed in as the given user (force_login: django-axes needs a request to log in)."""

    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real sign-ins, cheap hashes: the default PBKDF2 work factor would dominate these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
