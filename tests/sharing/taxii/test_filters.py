"""TAXII 2.1 §3.4 filtering and paging, and the X-TAXII-Date-Added-* headers (§3.2), over raw HTTP."""

from __future__ import annotations

import pytest

from tests.sharing.taxii.helpers import (
    STIX,
    assert_taxii_response,
    envelope_pages,
    ids_of,
    new_id,
    objects_of,
    ts,
)
from tests.stix_builders import make_indicator

V1, V2, V3 = "2026-11-21T08:00:00.000Z", "2026-11-22T08:00:00.000Z", "2026-11-23T08:00:00.000Z"


def identity(name: str) -> dict:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": new_id("identity"),
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "name": name,
        "identity_class": "organization",
        "object_marking_refs": [make_indicator()["object_marking_refs"][0]],
    }


@pytest.fixture
def mixed(publish):
    """Five indicators, two identities, and one indicator with three versions, each published separately."""
    indicators = [make_indicator(name=f"ind {i}") for i in range(5)]
    identities = [identity(f"Org {i}") for i in range(2)]
    versioned_id = new_id()
    versions = [
        make_indicator(stix_id=versioned_id, modified=m, name=f"v{n}") for n, m in enumerate((V1, V2, V3), 1)
    ]
    for obj in [*indicators[:3], versions[0], *identities, versions[1], *indicators[3:], versions[2]]:
        publish([obj])
    return {
        "indicators": indicators,
        "identities": identities,
        "versioned_id": versioned_id,
        "versions": versions,
    }


def test_match_type_accepts_a_comma_separated_list(taxii, cast, mixed):
    only_identities = taxii.ok(cast.objects_url, cast.lab, params={"match[type]": "identity"})
    assert sorted(ids_of(only_identities)) == sorted(o["id"] for o in mixed["identities"])
    both = taxii.ok(cast.objects_url, cast.lab, params={"match[type]": "identity,indicator"})
    assert len(objects_of(both)) == 5 + 2 + 1
    none = taxii.ok(cast.objects_url, cast.lab, params={"match[type]": "malware"})
    assert objects_of(none) == []


def test_match_id_accepts_a_comma_separated_list_and_combines_with_other_filters(taxii, cast, mixed):
    wanted = [mixed["indicators"][1]["id"], mixed["identities"][0]["id"], mixed["versioned_id"]]
    body = taxii.ok(cast.objects_url, cast.lab, params={"match[id]": ",".join(wanted)})
    assert sorted(ids_of(body)) == sorted(wanted)
    # Different match fields are ANDed (TAXII 2.1 §3.4.2).
    body = taxii.ok(
        cast.objects_url, cast.lab, params={"match[id]": ",".join(wanted), "match[type]": "identity"}
    )
    assert ids_of(body) == [mixed["identities"][0]["id"]]
    body = taxii.ok(
        cast.objects_url, cast.lab, params={"match[id]": mixed["versioned_id"], "match[version]": "all"}
    )
    assert [o["name"] for o in objects_of(body)] == ["v1", "v2", "v3"]


def test_match_spec_version_filters_by_stix_version(taxii, cast, mixed):
    assert len(objects_of(taxii.ok(cast.objects_url, cast.lab, params={"match[spec_version]": "2.1"}))) == 8
    assert objects_of(taxii.ok(cast.objects_url, cast.lab, params={"match[spec_version]": "2.0"})) == []
    assert objects_of(taxii.ok(cast.manifest_url, cast.lab, params={"match[spec_version]": "2.0"})) == []


def test_match_version_on_the_manifest(taxii, cast, mixed):
    vid = mixed["versioned_id"]

    def versions(value: str | None) -> list:
        params = {"match[id]": vid} | ({"match[version]": value} if value else {})
        return [ts(m["version"]) for m in objects_of(taxii.ok(cast.manifest_url, cast.lab, params=params))]

    assert versions(None) == [ts(V3)]
    assert versions("first") == [ts(V1)]
    assert versions("all") == [ts(V1), ts(V2), ts(V3)]
    assert versions(f"{V1},{V3}") == [ts(V1), ts(V3)]


def test_results_are_sorted_by_date_added_and_the_headers_frame_the_page(taxii, cast, mixed):
    response = taxii.get(cast.manifest_url, cast.lab, params={"match[version]": "all"})
    manifest = objects_of(assert_taxii_response(response, 200))
    added = [ts(m["date_added"]) for m in manifest]
    assert len(added) == 10 and added == sorted(added) and len(set(added)) == 10
    assert all(m["media_type"] == STIX for m in manifest)
    assert ts(response.headers["X-TAXII-Date-Added-First"]) == added[0]
    assert ts(response.headers["X-TAXII-Date-Added-Last"]) == added[-1]

    objects_response = taxii.get(cast.objects_url, cast.lab, params={"match[version]": "all"})
    objects = objects_of(assert_taxii_response(objects_response, 200))
    assert [(o["id"], ts(o["modified"])) for o in objects] == [(m["id"], ts(m["version"])) for m in manifest]
    assert ts(objects_response.headers["X-TAXII-Date-Added-First"]) == added[0]
    assert ts(objects_response.headers["X-TAXII-Date-Added-Last"]) == added[-1]


def test_object_and_versions_responses_carry_the_date_added_headers(taxii, cast, mixed):
    vid = mixed["versioned_id"]
    manifest = objects_of(
        taxii.ok(cast.manifest_url, cast.lab, params={"match[id]": vid, "match[version]": "all"})
    )
    first, last = ts(manifest[0]["date_added"]), ts(manifest[-1]["date_added"])

    for path, params in ((cast.object_url(vid), {"match[version]": "all"}), (cast.versions_url(vid), {})):
        response = taxii.get(path, cast.lab, params=params)
        assert_taxii_response(response, 200)
        assert ts(response.headers["X-TAXII-Date-Added-First"]) == first
        assert ts(response.headers["X-TAXII-Date-Added-Last"]) == last

    # Default (last version only): both headers name the one returned version.
    response = taxii.get(cast.object_url(vid), cast.lab)
    assert [o["name"] for o in objects_of(assert_taxii_response(response, 200))] == ["v3"]
    assert (
        ts(response.headers["X-TAXII-Date-Added-First"])
        == last
        == ts(response.headers["X-TAXII-Date-Added-Last"])
    )


def test_added_after_is_strictly_after(taxii, cast, mixed):
    manifest = objects_of(taxii.ok(cast.manifest_url, cast.lab, params={"match[version]": "all"}))
    pivot = manifest[3]
    body = taxii.ok(
        cast.manifest_url, cast.lab, params={"match[version]": "all", "added_after": pivot["date_added"]}
    )
    assert [(m["id"], m["version"]) for m in objects_of(body)] == [
        (m["id"], m["version"]) for m in manifest[4:]
    ]
    objects = taxii.ok(
        cast.objects_url, cast.lab, params={"match[version]": "all", "added_after": pivot["date_added"]}
    )
    assert len(objects_of(objects)) == 6
    last = taxii.ok(cast.objects_url, cast.lab, params={"added_after": manifest[-1]["date_added"]})
    assert objects_of(last) == [] and last.get("more", False) is False


def test_added_after_filters_versions_by_their_date_added(taxii, cast, mixed):
    vid = mixed["versioned_id"]
    manifest = objects_of(
        taxii.ok(cast.manifest_url, cast.lab, params={"match[id]": vid, "match[version]": "all"})
    )
    body = taxii.ok(cast.versions_url(vid), cast.lab, params={"added_after": manifest[0]["date_added"]})
    assert [ts(v) for v in body["versions"]] == [ts(V2), ts(V3)]


def test_limit_and_next_walk_every_object_once(taxii, cast, mixed):
    pages = envelope_pages(taxii, cast.objects_url, cast.lab, params={"limit": 3, "match[version]": "all"})
    assert [len(objects_of(p)) for p in pages] == [3, 3, 3, 1]
    assert all(p["more"] is True for p in pages[:-1]) and pages[-1].get("more", False) is False
    seen = [(o["id"], o["modified"]) for p in pages for o in objects_of(p)]
    assert len(seen) == len(set(seen)) == 10

    manifest_pages = envelope_pages(
        taxii, cast.manifest_url, cast.lab, params={"limit": 4, "match[version]": "all"}
    )
    assert [len(objects_of(p)) for p in manifest_pages] == [4, 4, 2]
    assert [(m["id"], m["version"]) for p in manifest_pages for m in objects_of(p)] == seen


def test_limit_and_next_page_through_versions_and_object_versions(taxii, cast, mixed):
    vid = mixed["versioned_id"]
    object_pages = envelope_pages(
        taxii, cast.object_url(vid), cast.lab, params={"limit": 2, "match[version]": "all"}
    )
    assert [[o["name"] for o in objects_of(p)] for p in object_pages] == [["v1", "v2"], ["v3"]]

    first = taxii.ok(cast.versions_url(vid), cast.lab, params={"limit": 2})
    assert first["more"] is True and len(first["versions"]) == 2 and first.get("next")
    rest = taxii.ok(cast.versions_url(vid), cast.lab, params={"limit": 2, "next": first["next"]})
    assert rest.get("more", False) is False
    assert [ts(v) for v in first["versions"] + rest["versions"]] == [ts(V1), ts(V2), ts(V3)]


def test_limit_above_the_server_maximum_is_capped(taxii, cast, mixed, settings):
    settings.TAXII_MAX_PAGE_SIZE = 4
    body = taxii.ok(cast.objects_url, cast.lab, params={"limit": 1000, "match[version]": "all"})
    assert len(objects_of(body)) == 4 and body["more"] is True
    unlimited = taxii.ok(cast.objects_url, cast.lab, params={"match[version]": "all"})
    assert len(objects_of(unlimited)) == 4 and unlimited["more"] is True
    pages = envelope_pages(taxii, cast.manifest_url, cast.lab, params={"limit": 50, "match[version]": "all"})
    assert sum(len(objects_of(p)) for p in pages) == 10


def test_next_keeps_working_when_objects_are_added_between_pages(taxii, cast, mixed, publish):
    first = taxii.ok(cast.objects_url, cast.lab, params={"limit": 5, "match[version]": "all"})
    late = make_indicator(name="late")
    publish([late])
    rest = envelope_pages(
        taxii, cast.objects_url, cast.lab, params={"limit": 5, "match[version]": "all", "next": first["next"]}
    )
    seen = [(o["id"], o["modified"]) for p in [first, *rest] for o in objects_of(p)]
    # A keyset cursor picks the late object up; a snapshot cursor may not. Neither loses or repeats.
    assert len(seen) == len(set(seen)) and len(seen) in (10, 11)
    everything = mixed["indicators"] + mixed["identities"] + mixed["versions"]
    assert set(seen) >= {(o["id"], o["modified"]) for o in everything}


def test_an_empty_collection_answers_with_an_empty_envelope(taxii, cast):
    body = taxii.ok(cast.objects_url, cast.lab)
    assert objects_of(body) == [] and body.get("more", False) is False
    assert objects_of(taxii.ok(cast.manifest_url, cast.lab)) == []


def test_a_huge_limit_is_capped_not_an_error(taxii, cast, publish):
    publish([make_indicator()])
    body = taxii.ok(cast.objects_url, cast.lab, params={"limit": "9" * 30})
    assert len(objects_of(body)) == 1
