"""The REST API cast: collections with different ceilings, organisations with every kind of access, clients.

* ``feed``    – "Distillation campaigns": Alice Lab (trusted) rw ≤ RED, Bob Cloud (review) rw ≤ RED,
                Dana Reader r ≤ AMBER, Erin Writer w only.
* ``secret``  – "Alice private": Alice Lab rw ≤ RED only (invisible to everyone else).
* ``public``  – "Public feed": public collection; Alice Lab rw ≤ RED; everyone else reads CLEAR only.
* Charlie Outsider holds no grant anywhere (a CLEAR-only public reader).

Every token has the ``read,write`` scopes unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.sharing.api.helpers import Member


@dataclass
class Cast:
    feed: object
    secret: object
    public: object
    alice: Member
    alice_ro: Member
    alice_admin: Member
    bob: Member
    bob_admin: Member
    dana: Member
    erin: Member
    charlie: Member


@pytest.fixture
def cast(db, alice_lab, bob_cloud, charlie_outsider, make_org) -> Cast:
    from sharing.services import GrantSpec, collection_create, grant_set, token_issue

    dana = make_org("Dana Reader", "cloud")
    erin = make_org("Erin Writer", "lab")
    feed = collection_create(
        title="Distillation campaigns",
        grants=[
            GrantSpec(alice_lab, True, True),
            GrantSpec(bob_cloud, True, True),
            GrantSpec(dana, True, False),
            GrantSpec(erin, False, True),
        ],
        tlp_ceiling="red",
    )
    grant_set(organisation=dana, collection=feed, can_read=True, can_write=False, tlp_ceiling="amber")
    secret = collection_create(
        title="Alice private", grants=[GrantSpec(alice_lab, True, True)], tlp_ceiling="red"
    )
    public = collection_create(
        title="Public feed", grants=[GrantSpec(alice_lab, True, True)], tlp_ceiling="red", is_public=True
    )

    def member(org, scopes="read,write") -> Member:
        token, plaintext = token_issue(organisation=org, scopes=scopes)
        return Member(org, token, plaintext)

    return Cast(
        feed=feed,
        secret=secret,
        public=public,
        alice=member(alice_lab),
        alice_ro=member(alice_lab, "read"),
        alice_admin=member(alice_lab, "admin"),
        bob=member(bob_cloud),
        bob_admin=member(bob_cloud, "admin"),
        dana=member(dana),
        erin=member(erin),
        charlie=member(charlie_outsider),
    )


@pytest.fixture
def publish(cast):
    """Publish validated objects straight into a collection (no HTTP, no review)."""
    from sharing.services import objects_publish

    def do(objects: list[dict], collection=None, by=None) -> list:
        stored, problems = objects_publish(
            collection=collection or cast.feed, objects=objects, submitted_by=(by or cast.alice).org
        )
        assert not problems, problems
        return stored

    return do
