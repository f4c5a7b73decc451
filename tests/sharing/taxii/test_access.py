"""Who may see and do what: grants, token scopes, TLP ceilings, status ownership, DELETE rules.

A collection without a grant is indistinguishable from a missing one (404, never 403); an object
above the caller's TLP ceiling is indistinguishable from an absent one on every read path.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.sharing.taxii.helpers import (
    ROOT,
    assert_taxii_error,
    assert_taxii_response,
    ids_of,
    new_id,
    objects_of,
    ts,
)
from tests.stix_builders import make_indicator


def listed(taxii, who) -> dict:
    body = assert_taxii_response(taxii.get(f"{ROOT}collections/", who), 200)
    return {c["id"]: c for c in body.get("collections", [])}


# --- No grant: 404 everywhere --------------------------------------------------------------------


def test_outsider_does_not_see_the_collection_in_the_list(taxii, cast):
    assert str(cast.feed.pk) not in listed(taxii, cast.outsider)
    assert str(cast.feed.pk) in listed(taxii, cast.lab)


OUTSIDER_CALLS = {
    "collection": lambda t, c, o, oid: t.get(c.feed_url, o),
    "objects": lambda t, c, o, oid: t.get(c.objects_url, o),
    "posting objects": lambda t, c, o, oid: t.post(c.objects_url, o, body={"objects": [make_indicator()]}),
    "object": lambda t, c, o, oid: t.get(c.object_url(oid), o),
    "deleting the object": lambda t, c, o, oid: t.delete(c.object_url(oid), o),
    "versions": lambda t, c, o, oid: t.get(c.versions_url(oid), o),
    "manifest": lambda t, c, o, oid: t.get(c.manifest_url, o),
}


@pytest.mark.parametrize(
    "call", OUTSIDER_CALLS.values(), ids=[f"outsider gets 404 on {k}" for k in OUTSIDER_CALLS]
)
def test_outsider_gets_404_on_every_endpoint_of_the_collection(taxii, cast, publish, call):
    obj = make_indicator()
    publish([obj])
    error = assert_taxii_error(call(taxii, cast, cast.outsider, obj["id"]), 404)

    # The same request against a collection that does not exist reads the same.
    class Ghost:
        pk = uuid.uuid4()

    ghost = type(cast)(**{**cast.__dict__, "feed": Ghost})
    missing = assert_taxii_error(call(taxii, ghost, cast.outsider, obj["id"]), 404)

    def anonymised(body: dict) -> str:
        return (
            json.dumps(body, sort_keys=True).replace(str(cast.feed.pk), "<id>").replace(str(Ghost.pk), "<id>")
        )

    assert anonymised(error) == anonymised(missing)

    # Nothing was stored or deleted on the outsider's behalf.
    assert ids_of(taxii.ok(cast.objects_url, cast.lab)) == [obj["id"]]


def test_outsider_with_a_read_only_token_also_gets_404_when_posting(taxii, cast):
    from sharing.services import token_issue

    _, plaintext = token_issue(organisation=cast.outsider.org, scopes="read")
    response = taxii.post(cast.objects_url, f"Bearer {plaintext}", body={"objects": [make_indicator()]})
    assert_taxii_error(response, 404)  # never 403 on a collection the caller cannot see


# --- Read-only and write-only grants; token scopes -----------------------------------------------


def test_collections_list_shows_each_callers_own_rights(taxii, cast):
    feed = str(cast.feed.pk)
    expected = {"lab": (True, True), "reader": (True, False), "writer": (False, True), "cloud": (True, True)}
    for name, (can_read, can_write) in expected.items():
        entry = listed(taxii, getattr(cast, name))[feed]
        assert (entry["can_read"], entry["can_write"]) == (can_read, can_write), name
        assert entry["media_types"] == ["application/stix+json;version=2.1"]
        single = assert_taxii_response(taxii.get(cast.feed_url, getattr(cast, name)), 200)
        assert (single["id"], single["can_read"], single["can_write"]) == (feed, can_read, can_write), name


def test_a_read_only_grant_reads_but_posting_is_403(taxii, cast, publish):
    obj = make_indicator()
    publish([obj])
    for path in (
        cast.objects_url,
        cast.manifest_url,
        cast.object_url(obj["id"]),
        cast.versions_url(obj["id"]),
    ):
        assert_taxii_response(taxii.get(path, cast.reader), 200)

    attempt = make_indicator()
    assert_taxii_error(taxii.post(cast.objects_url, cast.reader, body={"objects": [attempt]}), 403)
    assert ids_of(taxii.ok(cast.objects_url, cast.lab)) == [obj["id"]]


def test_a_write_only_grant_posts_but_reading_is_403(taxii, cast, publish):
    obj = make_indicator()
    publish([obj])
    for path in (
        cast.objects_url,
        cast.manifest_url,
        cast.object_url(obj["id"]),
        cast.versions_url(obj["id"]),
    ):
        assert_taxii_error(taxii.get(path, cast.writer), 403)

    status = taxii.submit(cast, [make_indicator()], auth=cast.writer)
    assert status["total_count"] == 1 and status["failure_count"] == 0


def test_a_token_without_the_write_scope_cannot_post(taxii, cast):
    attempt = make_indicator()
    assert_taxii_error(taxii.post(cast.objects_url, cast.lab_ro, body={"objects": [attempt]}), 403)
    assert taxii.get(cast.object_url(attempt["id"]), cast.lab).status_code == 404
    assert_taxii_response(taxii.get(cast.objects_url, cast.lab_ro), 200)  # reading is fine


# --- TLP ceilings --------------------------------------------------------------------------------

LEVELS = ["clear", "green", "amber", "amber+strict", "red", None]  # None: unmarked, counts as amber
RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4, None: 2}


@pytest.mark.parametrize("ceiling", ["clear", "green", "amber", "amber+strict", "red"])
def test_objects_above_the_tlp_ceiling_are_invisible_on_every_read_path(taxii, cast, publish, ceiling):
    from sharing.services import grant_set

    grant_set(
        organisation=cast.reader.org,
        collection=cast.feed,
        can_read=True,
        can_write=False,
        tlp_ceiling=ceiling,
    )
    by_level = {level: make_indicator(tlp=level, name=f"TLP {level}") for level in LEVELS}
    for obj in by_level.values():
        publish([obj])
    visible = {by_level[level]["id"] for level in LEVELS if RANK[level] <= RANK[ceiling]}
    hidden = {by_level[level]["id"] for level in LEVELS} - visible
    assert visible  # CLEAR is always within the ceiling

    objects_response = taxii.get(cast.objects_url, cast.reader, params={"match[version]": "all"})
    assert set(ids_of(assert_taxii_response(objects_response, 200))) == visible
    manifest = objects_of(taxii.ok(cast.manifest_url, cast.reader))
    assert {m["id"] for m in manifest} == visible
    # The headers describe the visible page only: the last hidden object's date_added does not leak.
    assert ts(objects_response.headers["X-TAXII-Date-Added-Last"]) == max(
        ts(m["date_added"]) for m in manifest
    )

    for stix_id in visible:
        assert ids_of(taxii.ok(cast.object_url(stix_id), cast.reader)) == [stix_id]
        assert len(taxii.ok(cast.versions_url(stix_id), cast.reader)["versions"]) == 1
    for stix_id in hidden:
        assert_taxii_error(taxii.get(cast.object_url(stix_id), cast.reader), 404)
        assert_taxii_error(taxii.get(cast.versions_url(stix_id), cast.reader), 404)
        assert ids_of(taxii.ok(cast.objects_url, cast.reader, params={"match[id]": stix_id})) == []

    # The trusted lab's own ceiling (amber) applies to it too.
    assert set(ids_of(taxii.ok(cast.objects_url, cast.lab))) == {
        by_level[level]["id"] for level in LEVELS if RANK[level] <= RANK["amber"]
    }


def test_paging_counts_only_visible_objects_and_more_ignores_hidden_ones(taxii, cast, publish):
    greens = [make_indicator(tlp="green", name=f"green {i}") for i in range(3)]
    reds = [make_indicator(tlp="red", name=f"red {i}") for i in range(2)]
    for obj in [greens[0], reds[0], greens[1], greens[2], reds[1]]:
        publish([obj])
    body = taxii.ok(cast.objects_url, cast.reader, params={"limit": 2})
    assert ids_of(body) == [greens[0]["id"], greens[1]["id"]] and body["more"] is True
    rest = taxii.ok(cast.objects_url, cast.reader, params={"limit": 2, "next": body["next"]})
    # Only red objects follow: for this reader there is nothing more.
    assert ids_of(rest) == [greens[2]["id"]] and rest.get("more", False) is False
    manifest = taxii.ok(cast.manifest_url, cast.reader, params={"limit": 3})
    assert [m["id"] for m in objects_of(manifest)] == [g["id"] for g in greens]
    assert manifest.get("more", False) is False


def _two_versions(publish, older_tlp: str, newer_tlp: str) -> tuple[dict, dict]:
    stix_id = new_id()
    older = make_indicator(
        stix_id=stix_id, modified="2026-11-21T00:00:00.000Z", tlp=older_tlp, name=f"older {older_tlp}"
    )
    newer = make_indicator(
        stix_id=stix_id, modified="2026-11-22T00:00:00.000Z", tlp=newer_tlp, name=f"newer {newer_tlp}"
    )
    publish([older])
    publish([newer])
    return older, newer


def test_a_version_above_the_ceiling_is_not_served_on_any_path(taxii, cast, publish):
    green, red = _two_versions(publish, "green", "red")  # the reader's ceiling is amber
    stix_id = green["id"]
    body = taxii.ok(cast.object_url(stix_id), cast.reader, params={"match[version]": "all"})
    assert [o["name"] for o in objects_of(body)] == ["older green"]
    body = taxii.ok(cast.objects_url, cast.reader, params={"match[version]": "all"})
    assert [o["name"] for o in objects_of(body)] == ["older green"]
    body = taxii.ok(cast.objects_url, cast.reader, params={"match[version]": red["modified"]})
    assert objects_of(body) == []
    assert [ts(v) for v in taxii.ok(cast.versions_url(stix_id), cast.reader)["versions"]] == [
        ts(green["modified"])
    ]
    manifest = objects_of(taxii.ok(cast.manifest_url, cast.reader, params={"match[version]": "all"}))
    assert [ts(m["version"]) for m in manifest] == [ts(green["modified"])]


def test_the_latest_visible_version_is_last_when_a_newer_one_is_above_the_ceiling(taxii, cast, publish):
    # "As if absent": for an amber reader the red version does not exist, so green is the latest.
    green, _ = _two_versions(publish, "green", "red")
    assert [o["name"] for o in objects_of(taxii.ok(cast.objects_url, cast.reader))] == ["older green"]
    assert [o["name"] for o in objects_of(taxii.ok(cast.object_url(green["id"]), cast.reader))] == [
        "older green"
    ]
    assert [m["id"] for m in objects_of(taxii.ok(cast.manifest_url, cast.reader))] == [green["id"]]


def test_the_earliest_visible_version_is_first_when_an_older_one_is_above_the_ceiling(taxii, cast, publish):
    _, green = _two_versions(publish, "red", "green")
    body = taxii.ok(cast.objects_url, cast.reader, params={"match[version]": "first"})
    assert [o["name"] for o in objects_of(body)] == ["newer green"]
    body = taxii.ok(cast.object_url(green["id"]), cast.reader, params={"match[version]": "first"})
    assert [o["name"] for o in objects_of(body)] == ["newer green"]


# --- Status resources belong to the submitting organisation --------------------------------------


def test_a_status_is_visible_only_to_the_submitting_organisation(taxii, cast):
    status = taxii.submit(cast, [make_indicator()])
    url = f"{ROOT}status/{status['id']}/"
    for who in (cast.lab, cast.lab_ro):  # any token of the submitting organisation
        again = assert_taxii_response(taxii.get(url, who), 200)
        seen = (again["id"], again["status"], again["total_count"], again["success_count"])
        assert seen == (status["id"], "complete", 1, 1)
    for who in (cast.reader, cast.cloud, cast.outsider, cast.writer):
        assert_taxii_error(taxii.get(url, who), 404)


# --- DELETE --------------------------------------------------------------------------------------


def test_the_submitter_can_delete_its_object_and_it_disappears_everywhere(taxii, cast):
    obj = make_indicator()
    keep = make_indicator()
    taxii.submit(cast, [obj, keep])

    # TAXII 2.1 §5.7: 200, and like every response here, the TAXII media type.
    assert_taxii_response(taxii.delete(cast.object_url(obj["id"]), cast.lab), 200)

    assert_taxii_error(taxii.get(cast.object_url(obj["id"]), cast.lab), 404)
    assert_taxii_error(taxii.get(cast.versions_url(obj["id"]), cast.lab), 404)
    assert ids_of(taxii.ok(cast.objects_url, cast.lab)) == [keep["id"]]
    assert [m["id"] for m in objects_of(taxii.ok(cast.manifest_url, cast.lab))] == [keep["id"]]


def test_the_submitter_deleting_removes_every_version(taxii, cast):
    stix_id = new_id()
    versions = [make_indicator(stix_id=stix_id, modified=f"2026-11-2{n}T00:00:00.000Z") for n in (1, 2, 3)]
    taxii.submit(cast, versions)
    assert taxii.delete(cast.object_url(stix_id), cast.lab).status_code == 200
    body = taxii.ok(cast.objects_url, cast.lab, params={"match[version]": "all"})
    assert objects_of(body) == []


def test_deleting_with_match_version_removes_only_that_version(taxii, cast):
    stix_id = new_id()
    stamps = ["2026-11-21T00:00:00.000Z", "2026-11-22T00:00:00.000Z", "2026-11-23T00:00:00.000Z"]
    taxii.submit(cast, [make_indicator(stix_id=stix_id, modified=m) for m in stamps])
    response = taxii.delete(cast.object_url(stix_id) + f"?match[version]={stamps[1]}", cast.lab)
    assert_taxii_response(response, 200)  # TAXII 2.1 §5.7 takes match[version] and match[spec_version]
    versions = taxii.ok(cast.versions_url(stix_id), cast.lab)["versions"]
    assert sorted(ts(v) for v in versions) == [ts(stamps[0]), ts(stamps[2])]


@pytest.mark.parametrize("who", ["reader", "cloud"])
def test_others_cannot_delete_the_submitters_object(taxii, cast, who):
    obj = make_indicator()
    taxii.submit(cast, [obj])
    assert_taxii_error(taxii.delete(cast.object_url(obj["id"]), getattr(cast, who)), 403)
    assert ids_of(taxii.ok(cast.object_url(obj["id"]), cast.lab)) == [obj["id"]]


def test_the_hub_operators_admin_token_can_delete_any_members_object(taxii, cast):
    obj = make_indicator()
    taxii.submit(cast, [obj])
    assert_taxii_response(taxii.delete(cast.object_url(obj["id"]), cast.admin), 200)
    assert_taxii_error(taxii.get(cast.object_url(obj["id"]), cast.lab), 404)
    assert_taxii_error(taxii.get(cast.object_url(obj["id"]), cast.admin), 404)


def test_a_members_admin_token_cannot_delete_another_members_object(taxii, cast):
    # Admin scope administers one's own organisation; only the hub operator moderates others' data.
    from sharing.services import token_issue

    obj = make_indicator()
    taxii.submit(cast, [obj])
    _, plaintext = token_issue(organisation=cast.cloud.org, scopes="admin")
    assert_taxii_error(taxii.delete(cast.object_url(obj["id"]), f"Bearer {plaintext}"), 403)
    assert taxii.ok(cast.object_url(obj["id"]), cast.lab)


def test_deleting_an_object_above_the_callers_ceiling_is_404_not_403(taxii, cast, publish):
    # Bob Cloud may read the collection up to amber: a red object must not be revealed by a 403.
    secret = make_indicator(tlp="red")
    publish([secret], by=cast.lab)
    assert_taxii_error(taxii.delete(cast.object_url(secret["id"]), cast.cloud), 404)


# --- Collections are separate; public collections ------------------------------------------------


def test_objects_of_another_collection_are_not_served_from_this_one(taxii, cast, publish):
    from sharing.services import GrantSpec, collection_create

    other = collection_create(title="Other feed", grants=[GrantSpec(cast.lab.org, True, True)])
    elsewhere = make_indicator(name="elsewhere")
    publish([elsewhere], collection=other)
    publish([make_indicator(name="here")])

    assert [o["name"] for o in objects_of(taxii.ok(cast.objects_url, cast.lab))] == ["here"]
    assert len(objects_of(taxii.ok(cast.manifest_url, cast.lab))) == 1
    assert_taxii_error(taxii.get(cast.object_url(elsewhere["id"]), cast.lab), 404)
    assert_taxii_error(taxii.get(cast.versions_url(elsewhere["id"]), cast.lab), 404)
    # And a reader of this feed without a grant on the other one gets 404 there.
    assert_taxii_error(taxii.get(f"{ROOT}collections/{other.pk}/objects/", cast.reader), 404)


def test_a_public_collection_shows_outsiders_its_clear_objects_only(taxii, cast, publish):
    from sharing.services import collection_create

    public = collection_create(title="Public seed", is_public=True)
    clear, green = make_indicator(tlp="clear"), make_indicator(tlp="green")
    publish([clear, green], collection=public)
    base = f"{ROOT}collections/{public.pk}/"

    entry = listed(taxii, cast.outsider)[str(public.pk)]
    assert (entry["can_read"], entry["can_write"]) == (True, False)
    assert ids_of(taxii.ok(f"{base}objects/", cast.outsider)) == [clear["id"]]
    assert_taxii_error(taxii.get(f"{base}objects/{green['id']}/", cast.outsider), 404)
    assert_taxii_error(
        taxii.post(f"{base}objects/", cast.outsider, body={"objects": [make_indicator()]}), 403
    )
