"""TAXII 2.1 end to end with the reference client (taxii2-client 2.3.0) against a live server.

The client checks the Content-Type of every GET and the shape of discovery, API root,
collections and status resources; these tests check what comes back.
"""

from __future__ import annotations

import json

import pytest
from taxii2client.v21 import as_pages

from tests.sharing.taxii.helpers import STIX, TAXII, new_id, ts
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.slow


def varied_indicator(i: int) -> dict:
    """Indicators that differ in more than their id, to catch lossy storage or re-serialisation."""
    extra = {}
    if i % 3 == 0:
        extra["description"] = f'Reseller proxy #{i} — Réseau 東京 "quoted" \\ backslash'
        extra["labels"] = ["distillation", f"batch-{i % 5}"]
    if i % 4 == 0:
        extra["confidence"] = (i * 7) % 101
        extra["external_references"] = [{"source_name": "mdx-report", "external_id": f"MDX-{i:04d}"}]
    if i % 5 == 0:
        extra["valid_until"] = "2027-01-01T00:00:00Z"
    return make_indicator(
        modified=f"2026-11-23T00:00:{i % 60:02d}.{i:03d}Z",
        created="2026-11-01T00:00:00.000Z",
        tlp=("green", "amber", None)[i % 3],
        pattern=f"[ipv4-addr:value = '198.51.100.{i % 250 + 1}']",
        name=f"Distillation egress {i}",
        **extra,
    )


def test_discovery_leads_to_the_api_root_and_its_collections(live):
    server = live.server()
    assert server.title
    roots = server.api_roots
    assert [r.url for r in roots] == [live.root_url]
    assert server.default is not None and server.default.url == live.root_url

    api_root = roots[0]
    assert api_root.title
    assert TAXII in api_root.versions
    assert isinstance(api_root.max_content_length, int) and api_root.max_content_length > 0

    collections = {c.id: c for c in api_root.collections}
    feed = collections[str(live.cast.feed.pk)]
    assert feed.title == "Distillation campaigns"
    assert feed.can_read is True and feed.can_write is True
    assert feed.media_types == [STIX]


def test_fifty_objects_round_trip_unchanged(live):
    sent = [varied_indicator(i) for i in range(50)]
    collection = live.collection()

    status = collection.add_objects({"objects": sent}, wait_for_completion=True)
    assert status.status == "complete"
    counts = (status.total_count, status.success_count, status.failure_count, status.pending_count)
    assert counts == (50, 50, 0, 0)

    received = collection.get_objects()
    assert received.get("more", False) is False
    by_id = {o["id"]: o for o in received["objects"]}
    assert len(received["objects"]) == 50 == len(by_id)
    for obj in sent:
        assert by_id[obj["id"]] == obj


def test_every_match_version_form_selects_the_right_versions(live):
    stix_id = new_id()
    stamps = ["2026-11-21T08:00:00.000Z", "2026-11-22T08:00:00.000Z", "2026-11-23T08:00:00.000Z"]
    versions = [make_indicator(stix_id=stix_id, modified=m, name=f"v{n}") for n, m in enumerate(stamps, 1)]
    other = make_indicator(modified="2026-11-20T00:00:00.000Z", name="bystander")
    collection = live.collection()
    for obj in [*versions, other]:  # one POST per version: each gets its own date_added
        assert collection.add_objects({"objects": [obj]}, wait_for_completion=False).success_count == 1

    def names(**filters) -> list[str]:
        body = collection.get_objects(id=stix_id, **filters)
        return sorted(o["name"] for o in body.get("objects", []))

    assert names() == ["v3"]  # TAXII 2.1 §3.4.2: last is the default
    assert names(version="last") == ["v3"]
    assert names(version="first") == ["v1"]
    assert names(version="all") == ["v1", "v2", "v3"]
    assert names(version=stamps[1]) == ["v2"]
    assert names(version="2026-11-22T08:00:00Z") == ["v2"]  # the same instant, written without a fraction
    assert names(version=[stamps[0], stamps[2]]) == ["v1", "v3"]
    assert names(version="first,last") == ["v1", "v3"]

    # Without match[id] the default still returns one version per object.
    everything = collection.get_objects()["objects"]
    assert sorted(o.get("name") for o in everything) == ["bystander", "v3"]

    # Get An Object (§5.6) honours the same match[version] forms.
    def object_names(**filters) -> list[str]:
        return sorted(o["name"] for o in collection.get_object(stix_id, **filters).get("objects", []))

    assert object_names() == ["v3"]
    assert object_names(version="first") == ["v1"]
    assert object_names(version="all") == ["v1", "v2", "v3"]
    assert object_names(version=stamps[1]) == ["v2"]

    # Get Object Versions (§5.8): every version, as timestamps.
    listed = collection.object_versions(stix_id)
    assert sorted(ts(v) for v in listed["versions"]) == [ts(s) for s in stamps]
    assert listed.get("more", False) is False


def test_a_thousand_objects_page_by_next_without_loss_or_repetition(live, publish):
    seeded = [make_indicator(pattern=f"[ipv4-addr:value = '10.{i // 250}.{i % 250}.1']") for i in range(1000)]
    publish(seeded)
    collection = live.collection()

    seen: list[str] = []
    pages = 0
    for envelope in as_pages(collection.get_objects, per_request=100):
        pages += 1
        page = envelope.get("objects", [])
        assert len(page) <= 100
        seen += [o["id"] for o in page]
    assert len(seen) == 1000 and len(set(seen)) == 1000
    assert set(seen) == {o["id"] for o in seeded}
    assert pages == 10

    # The manifest pages the same way, in the same order.
    manifest = [
        m["id"] for page in as_pages(collection.get_manifest, per_request=100) for m in page["objects"]
    ]
    assert manifest == seen


def test_a_thousand_objects_page_by_added_after_without_loss_or_repetition(live, publish):
    seeded = [make_indicator(pattern=f"[ipv4-addr:value = '10.{i // 250}.{i % 250}.2']") for i in range(1000)]
    publish(seeded)  # one bulk: the server must still give each entry its own date_added

    seen: list[str] = []
    params = {"limit": 100}
    for _ in range(50):
        response = live.raw_get(live.collection_url() + "objects/", params=params)
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        page = [o["id"] for o in body.get("objects", [])]
        seen += page
        if not body.get("more", False):
            break
        assert page, "more is true on an empty page"
        # TAXII 2.1 §3.4.1/§3.2: resume from the date_added of the last object received.
        params = {"limit": 100, "added_after": response.headers["X-TAXII-Date-Added-Last"]}
    assert len(seen) == 1000 and len(set(seen)) == 1000
    assert set(seen) == {o["id"] for o in seeded}


def test_manifest_agrees_with_objects(live, publish):
    stix_id = new_id()
    publish([make_indicator(stix_id=stix_id, modified="2026-11-21T00:00:00.000Z")])
    publish([make_indicator(stix_id=stix_id, modified="2026-11-22T00:00:00.000Z")])
    publish([make_indicator(modified=f"2026-11-23T00:00:{i:02d}.000Z") for i in range(20)])
    collection = live.collection()

    for filters in ({}, {"version": "all"}, {"type": "indicator", "version": "first"}):
        objects = collection.get_objects(**filters)["objects"]
        manifest = collection.get_manifest(**filters)["objects"]
        assert [(m["id"], ts(m["version"])) for m in manifest] == [
            (o["id"], ts(o["modified"])) for o in objects
        ]
        assert all(m["media_type"] == STIX for m in manifest)
        added = [ts(m["date_added"]) for m in manifest]
        assert added == sorted(added) and len(set(added)) == len(added)  # §3.3: ascending date_added
    assert len(collection.get_manifest()["objects"]) == 21
    assert len(collection.get_manifest(version="all")["objects"]) == 22


def test_status_counts_a_mix_of_valid_and_invalid_objects(live):
    valid = [make_indicator(name=f"ok {i}") for i in range(3)]
    broken = make_indicator(pattern="[ipv4-addr:value = ", name="broken pattern")
    collection = live.collection()

    # add_objects also takes the envelope as JSON text.
    status = collection.add_objects(
        json.dumps({"objects": [valid[0], broken, valid[1], valid[2]]}), wait_for_completion=False
    )
    assert status.status == "complete"
    assert status.total_count == 4
    assert (status.success_count, status.failure_count, status.pending_count) == (3, 1, 0)
    assert ts(status.request_timestamp)
    assert sorted(s["id"] for s in status.successes) == sorted(o["id"] for o in valid)
    assert all(ts(s["version"]) == ts(valid[0]["modified"]) for s in status.successes)
    [failure] = status.failures
    assert failure["id"] == broken["id"] and ts(failure["version"]) == ts(broken["modified"])
    assert "pattern" in failure["message"].lower()

    again = live.api_root().get_status(status.id)
    assert (
        again.id,
        again.status,
        again.total_count,
        again.success_count,
        again.failure_count,
        again.pending_count,
    ) == (status.id, "complete", 4, 3, 1, 0)

    # Nothing invalid is stored.
    assert sorted(collection.get_objects()["objects"], key=lambda o: o["id"]) == sorted(
        valid, key=lambda o: o["id"]
    )


def test_reposting_an_identical_version_succeeds_without_duplicates(live):
    sent = [make_indicator(name=f"repost {i}") for i in range(5)]
    collection = live.collection()
    first = collection.add_objects({"objects": sent}, wait_for_completion=False)
    manifest_before = collection.get_manifest()["objects"]

    second = collection.add_objects({"objects": sent}, wait_for_completion=False)
    assert second.id != first.id
    assert second.status == "complete"
    assert (second.total_count, second.success_count, second.failure_count) == (5, 5, 0)

    objects = collection.get_objects(version="all")["objects"]
    assert sorted(o["id"] for o in objects) == sorted(o["id"] for o in sent)
    assert collection.get_manifest()["objects"] == manifest_before  # no new date_added either


def test_submissions_of_a_review_organisation_are_pending_and_invisible(live):
    cast = live.cast
    sent = [make_indicator(name=f"needs review {i}") for i in range(2)]
    status = live.collection(cast.cloud).add_objects({"objects": sent}, wait_for_completion=False)
    assert status.status == "pending"
    counts = (status.total_count, status.success_count, status.failure_count, status.pending_count)
    assert counts == (2, 0, 0, 2)
    assert sorted(p["id"] for p in status.pendings) == sorted(o["id"] for o in sent)

    for who in (cast.cloud, cast.lab, cast.reader):
        assert live.collection(who).get_objects().get("objects", []) == []
        assert live.collection(who).get_manifest().get("objects", []) == []
    assert live.api_root(cast.cloud).get_status(status.id).pending_count == 2


def test_the_client_can_poll_a_pending_status(live):
    """taxii2-client polls Status.url, which it builds as <api-root>/status/<id> (no trailing slash)."""
    status = live.collection(live.cast.cloud).add_objects(
        {"objects": [make_indicator()]}, wait_for_completion=False
    )
    assert status.status == "pending"
    status.refresh()  # what add_objects(wait_for_completion=True) does until the status is final
    assert (status.status, status.pending_count) == ("pending", 1)
