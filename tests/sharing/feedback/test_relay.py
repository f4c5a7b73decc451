"""The hub relays thresholded feedback to members as summary sightings under its own identity
(DOMAIN.md §4.4): only once enough members sighted an indicator, only where the indicator may be
read, with nothing that tells who sighted what, and revoked when it no longer holds."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from sharing.feedback_relay import SEED_CLASS_IDENTITY, feedback_relay
from sharing.models import RelayedSighting
from tests.sharing.feedback.conftest import TAXII, sighting
from tests.stix_builders import TLP, make_indicator

pytestmark = pytest.mark.django_db


def feed_objects(client, hub, member, type_="sighting") -> list[dict]:
    response = client.get(
        f"/taxii2/api/collections/{hub.feed.pk}/objects/",
        {"match[type]": type_},
        HTTP_ACCEPT=TAXII,
        HTTP_AUTHORIZATION=f"Bearer {member.token}",
    )
    assert response.status_code in (200, 404), response.content
    return response.json().get("objects", []) if response.status_code == 200 else []


def sightings_from(client, hub, members, counts, indicator_id=None, state="confirmed"):
    for member, count in zip(members, counts, strict=True):
        obj = sighting(member, indicator_id or hub.indicator["id"], count=count, state=state)
        assert hub.post(client, member, [obj]).status_code == 202
    return feedback_relay()


def test_nothing_is_relayed_below_the_threshold(client, hub):
    result = sightings_from(client, hub, hub.members[:2], [4, 9])
    assert result.issued == 0 and not RelayedSighting.objects.exists()
    assert feed_objects(client, hub, hub.reader) == []


def test_the_relay_says_only_how_many_members_at_least_under_the_hubs_identity(client, hub):
    result = sightings_from(client, hub, hub.members[:3], [4, 9, 17])
    assert result.issued == 1
    [relayed] = feed_objects(client, hub, hub.reader)
    operator = hub.operator.org.identity_id
    assert relayed["created_by_ref"] == operator and relayed["sighting_of_ref"] == hub.indicator["id"]
    assert relayed["summary"] is True and relayed["count"] == 3
    assert "at least 3 member organisations" in relayed["description"]
    assert relayed["object_marking_refs"] == [TLP["amber"]]
    assert "observed_data_refs" not in relayed and "first_seen" not in relayed
    # The anonymous class identity stands in for the members, and is served with it.
    [where] = relayed["where_sighted_refs"]
    identities = {o["id"]: o for o in feed_objects(client, hub, hub.reader, "identity")}
    assert identities[where]["identity_class"] == "class"
    text = json.dumps(relayed)
    for member in hub.members:
        assert member.org.identity_id not in text and member.org.name not in text
    # Only readers of the indicator see it; an inbox stays unreadable.
    assert feed_objects(client, hub, hub.outsider) == []


def test_a_new_version_only_when_the_disclosed_step_changes(client, hub):
    sightings_from(client, hub, hub.members[:3], [1, 1, 1])
    first = RelayedSighting.objects.get()
    assert sightings_from(client, hub, [hub.members[3]], [5]).unchanged == 1  # 4 members: still "≥ 3"
    assert len(feed_objects(client, hub, hub.reader)) == 1
    assert sightings_from(client, hub, [hub.reader], [2]).issued == 1  # 5 members: "≥ 5"
    versions = feed_objects(client, hub, hub.reader)
    assert [v["count"] for v in versions] == [5]  # the feed serves the latest version
    assert versions[0]["id"] == first.sighting_id
    assert feedback_relay().as_dict() == {"issued": 0, "revoked": 0, "unchanged": 1}  # idempotent


def test_the_relay_is_revoked_below_the_threshold_and_later_relays_get_a_new_id(client, hub):
    a, b, c, d = hub.members
    posted = [sighting(m, hub.indicator["id"]) for m in (a, b, c)]
    for member, obj in zip((a, b, c), posted, strict=True):
        hub.post(client, member, [obj])
    feedback_relay()
    first = RelayedSighting.objects.get().sighting_id
    # Member c reclassifies its sighting as a false positive: two members remain.
    hub.post(
        client,
        c,
        [{**posted[2], "modified": "2026-11-21T00:00:00.000Z", "mdx_review_state": "false-positive"}],
    )
    assert feedback_relay().revoked == 1
    [revoked] = feed_objects(client, hub, hub.reader)
    assert revoked["id"] == first and revoked["revoked"] is True
    sightings_from(client, hub, [d], [1])
    relay = RelayedSighting.objects.get()
    assert not relay.revoked and relay.sighting_id != first and relay.sighted_by_at_least == 3


def test_revoking_the_indicator_revokes_its_relay(
    client, hub, eager_tasks, django_capture_on_commit_callbacks
):
    sightings_from(client, hub, hub.members[:3], [1, 1, 1])
    revocation = {**hub.indicator, "modified": "2030-01-01T00:00:00.000Z", "revoked": True}
    with django_capture_on_commit_callbacks(execute=True):
        assert hub.post(client, hub.originator, [revocation], collection=hub.feed).status_code == 202
    assert RelayedSighting.objects.get().revoked
    relays = [o for o in feed_objects(client, hub, hub.reader) if o["sighting_of_ref"] == hub.indicator["id"]]
    assert [r.get("revoked") for r in relays] == [True]


def test_an_inbox_post_updates_the_relay_after_commit(
    client, hub, eager_tasks, django_capture_on_commit_callbacks
):
    for member in hub.members[:3]:
        with django_capture_on_commit_callbacks(execute=True):
            hub.post(client, member, [sighting(member, hub.indicator["id"])])
    assert RelayedSighting.objects.get().sighted_by_at_least == 3


def test_the_relay_is_never_less_strict_than_the_indicator(client, hub):
    from sharing.services import objects_publish

    strict = make_indicator(created_by_ref=hub.originator.org.identity_id, tlp="amber+strict")
    secret = make_indicator(created_by_ref=hub.originator.org.identity_id, tlp="red")
    objects_publish(collection=hub.feed, objects=[strict, secret], submitted_by=hub.originator.org)
    sightings_from(client, hub, hub.members[:3], [1, 1, 1], indicator_id=strict["id"])
    sightings_from(client, hub, hub.members[:3], [1, 1, 1], indicator_id=secret["id"])
    assert set(RelayedSighting.objects.values_list("indicator_stix_id", flat=True)) == {strict["id"]}
    from indicators.models import StixObject

    relay = StixObject.objects.get(stix_id=RelayedSighting.objects.get().sighting_id)
    assert relay.tlp == "amber+strict"
    assert feed_objects(client, hub, hub.reader) == []  # the feed's AMBER ceiling hides it, as the indicator


def test_the_seed_class_identity_is_used_when_the_pack_is_loaded(client, hub):
    from sharing.knowledge_pack import knowledge_pack_load

    knowledge_pack_load()
    sightings_from(client, hub, hub.members[:3], [1, 1, 1])
    [relayed] = feed_objects(client, hub, hub.reader)
    assert relayed["where_sighted_refs"] == [SEED_CLASS_IDENTITY]


def test_relay_feedback_command(client, hub):
    for member in hub.members[:3]:
        hub.post(client, member, [sighting(member, hub.indicator["id"])])
    out = io.StringIO()
    call_command("relay_feedback", stdout=out)
    assert "1 sighting(s) issued, 0 revoked, 0 unchanged" in out.getvalue()
    with pytest.raises(CommandError, match="not an indicator id"):
        call_command("relay_feedback", "--indicator", "malware--x")
