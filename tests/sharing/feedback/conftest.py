"""Feedback cast: a hub with an indicator feed and an inbox, the indicator's originator, and
members who report on it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from tests.stix_builders import TLP, make_indicator

TAXII = "application/taxii+json;version=2.1"


@dataclass
class Member:
    org: object
    token: str


@dataclass
class Hub:
    feed: object
    inbox: object
    originator: Member
    members: list[Member]
    reader: Member  # may read the feed, has sent nothing
    outsider: Member  # no grant at all
    operator: Member
    indicator: dict

    def post(self, client, member: Member, objects: list[dict], collection=None):
        collection = collection or self.inbox
        return client.post(
            f"/taxii2/api/collections/{collection.pk}/objects/",
            data=json.dumps({"objects": objects}),
            content_type=TAXII,
            HTTP_ACCEPT=TAXII,
            HTTP_AUTHORIZATION=f"Bearer {member.token}",
        )


def sighting(member: Member, indicator_id: str, *, count: int = 3, state: str = "confirmed", **extra) -> dict:
    obj = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": f"sighting--{uuid.uuid4()}",
        "created": "2026-11-20T10:00:00.000Z",
        "modified": "2026-11-20T10:00:00.000Z",
        "first_seen": "2026-11-18T00:00:00Z",
        "last_seen": "2026-11-20T00:00:00Z",
        "count": count,
        "sighting_of_ref": indicator_id,
        "created_by_ref": member.org.identity_id,
        "where_sighted_refs": [member.org.identity_id],
        "object_marking_refs": [TLP["amber+strict"]],
        "extensions": {
            "extension-definition--326ca5be-47c7-41f1-bf75-faa80bf68915": {
                "extension_type": "toplevel-property-extension"
            }
        },
        "mdx_review_state": state,
    }
    obj.update(extra)
    return obj


def opinion(member: Member, indicator_id: str, verdict: str, *, modified="2026-11-20T10:00:00.000Z", **extra):
    obj = {
        "type": "opinion",
        "spec_version": "2.1",
        "id": f"opinion--{uuid.uuid4()}",
        "created": "2026-11-20T10:00:00.000Z",
        "modified": modified,
        "opinion": verdict,
        "object_refs": [indicator_id],
        "created_by_ref": member.org.identity_id,
        "object_marking_refs": [TLP["amber+strict"]],
    }
    obj.update(extra)
    return obj


@pytest.fixture
def hub(db, make_org) -> Hub:
    from sharing.services import GrantSpec, collection_create, objects_publish, token_issue

    originator = make_org("Origin Lab", "lab", trusted=True)
    members = [make_org(f"Member {i}", "cloud") for i in range(1, 5)]  # review policy
    reader = make_org("Quiet Reader", "cloud")
    outsider = make_org("Outsider", "authority")
    operator = make_org("Hub Operator", "hub")
    readers = [originator, *members, reader]
    feed = collection_create(
        title="Consortium indicators",
        grants=[GrantSpec(o, True, o is originator) for o in readers] + [GrantSpec(operator, True, True)],
    )
    inbox = collection_create(
        title="Sightings inbox",
        # Member 1's grant even says "read": an inbox stays write-only for members regardless.
        grants=[GrantSpec(o, o is members[0], True) for o in readers] + [GrantSpec(operator, True, True)],
        is_inbox=True,
    )
    indicator = make_indicator(created_by_ref=originator.identity_id)
    objects_publish(collection=feed, objects=[indicator], submitted_by=originator)

    def member(org, scopes="read,write"):
        return Member(org, token_issue(organisation=org, scopes=scopes)[1])

    return Hub(
        feed=feed,
        inbox=inbox,
        originator=member(originator),
        members=[member(m) for m in members],
        reader=member(reader),
        outsider=member(outsider),
        operator=member(operator, "admin"),
        indicator=indicator,
    )
