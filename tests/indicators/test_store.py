"""The STIX store: immutable version rows, idempotent re-adds, strictly increasing date_added."""

from __future__ import annotations

import pytest

from indicators.models import StixObject
from indicators.services import UNVERSIONED, stix_objects_store
from sharing.models import Collection, CollectionEntry
from sharing.services import collection_create, collection_publish, objects_publish
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    return collection_create(title="store-test")


def test_each_version_is_its_own_row_with_indexed_columns():
    v1 = make_indicator(
        stix_id="indicator--5a1b0e0e-3e6c-4f43-9d1a-0c1c2e3f4a5b",
        confidence=40,
        valid_until="2027-01-01T00:00:00Z",
        labels=["hydra", "proxy"],
    )
    v2 = dict(v1, modified="2026-11-24T00:00:00.000Z", confidence=80, revoked=True)
    results = stix_objects_store([v1, v2])
    assert [r.created for r in results] == [True, True]
    rows = list(StixObject.objects.filter(stix_id=v1["id"]).order_by("modified"))
    assert [r.confidence for r in rows] == [40, 80]
    assert [r.revoked for r in rows] == [False, True]
    assert rows[0].tlp == "amber" and rows[0].tlp_rank == 2
    assert rows[0].valid_until.isoformat() == "2027-01-01T00:00:00+00:00"
    assert rows[0].labels_text == "|hydra|proxy|"
    assert rows[0].type == "indicator" and rows[0].pattern_type == "stix"


def test_re_adding_an_identical_version_is_a_no_op():
    obj = make_indicator()
    first = stix_objects_store([obj])[0]
    again = stix_objects_store([dict(obj)])[0]
    assert first.created and not again.created
    assert again.stix_object.pk == first.stix_object.pk
    assert StixObject.objects.count() == 1


def test_a_different_object_under_an_existing_version_is_refused():
    obj = make_indicator()
    stix_objects_store([obj])
    clash = stix_objects_store([dict(obj, name="tampered")])[0]
    assert clash.stix_object is None
    assert "already stored" in clash.error and obj["id"] in clash.error
    assert StixObject.objects.get(stix_id=obj["id"]).name == obj["name"]


def test_scos_are_stored_under_the_unversioned_key():
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--1ea47840-aa39-5aa8-b4a2-cd203eb6662a",
        "value": "198.51.100.0/24",
    }
    row = stix_objects_store([sco])[0].stix_object
    assert row.modified == UNVERSIONED and not row.has_modified


def test_served_json_is_canonical_and_equal_to_the_input():
    import json

    obj = make_indicator(description="Ünïcode stays as is")
    row = stix_objects_store([obj])[0].stix_object
    assert json.loads(row.json_text) == obj
    assert row.json_text == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_date_added_strictly_increases_across_a_5000_object_bulk(collection):
    objects = [
        make_indicator(pattern=f"[ipv4-addr:value = '10.{i // 65536}.{i // 256 % 256}.{i % 256}']")
        for i in range(5000)
    ]
    published, errors = objects_publish(collection=collection, objects=objects)
    assert not errors and len(published) == 5000
    stamps = list(
        CollectionEntry.objects.filter(collection=collection)
        .order_by("date_added", "id")
        .values_list("date_added", flat=True)
    )
    assert len(stamps) == 5000
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    # A second bulk continues after the first, even though the clock may not have moved.
    more, _ = objects_publish(collection=collection, objects=[make_indicator() for _ in range(10)])
    later = CollectionEntry.objects.filter(collection=collection, stix_object__in=more).order_by("date_added")
    assert later.first().date_added > stamps[-1]
    collection.refresh_from_db()
    assert collection.last_added == later.last().date_added


def test_publishing_the_same_versions_again_adds_no_entries(collection):
    objects = [make_indicator() for _ in range(3)]
    objects_publish(collection=collection, objects=objects)
    objects_publish(collection=collection, objects=objects)
    assert CollectionEntry.objects.filter(collection=collection).count() == 3
    assert StixObject.objects.count() == 3


def test_one_version_can_be_published_in_two_collections(collection):
    other = collection_create(title="another")
    row = stix_objects_store([make_indicator()])[0].stix_object
    collection_publish(collection=collection, stix_objects=[row])
    collection_publish(collection=other, stix_objects=[row])
    assert CollectionEntry.objects.filter(stix_object=row).count() == 2
    assert Collection.objects.count() == 2


def test_unmarked_objects_get_the_configured_default_tlp(settings):
    settings.MDX_UNMARKED_TLP = "amber"
    row = stix_objects_store([make_indicator(tlp=None)])[0].stix_object
    assert row.tlp == "amber"
