"""The TLP ceiling holds on every REST read path: search, detail, collections and each export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.sharing.api.helpers import ids, ladder

AMBER_AND_BELOW = ("clear", "green", "amber")


@pytest.fixture
def tlp_ladder(cast, publish) -> dict[str, dict]:
    """One indicator per TLP level in feed (10.0.<rank>.0/24) and in public (10.9.<rank>.0/24)."""
    feed, public = ladder("10.0"), ladder("10.9")
    publish(list(feed.values()))
    publish(list(public.values()), collection=cast.public)
    return {"feed": feed, "public": public}


def export_text(member, collection, kind) -> str:
    response = member.client().get(f"/api/v1/collections/{collection.pk}/export/{kind}")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_amber_ceiling_org_never_sees_red_or_amber_strict_in_search(cast, tlp_ladder):
    feed = tlp_ladder["feed"]
    public_clear = tlp_ladder["public"]["clear"]["id"]
    assert ids(cast.dana.client().get("/api/v1/objects/")) == {feed[t]["id"] for t in AMBER_AND_BELOW} | {
        public_clear
    }
    for level in ("amber+strict", "red"):
        assert ids(cast.dana.client().get("/api/v1/objects/", {"tlp": level})) == set()


def test_amber_ceiling_org_gets_404_for_red_and_amber_strict_detail(cast, tlp_ladder):
    client = cast.dana.client()
    for level, obj in tlp_ladder["feed"].items():
        expected = 200 if level in AMBER_AND_BELOW else 404
        assert client.get(f"/api/v1/objects/{obj['id']}/").status_code == expected, level


def test_amber_ceiling_org_exports_stop_at_amber(cast, tlp_ladder):
    feed = tlp_ladder["feed"]
    allowed = {feed[t]["id"] for t in AMBER_AND_BELOW}
    bundle = json.loads(export_text(cast.dana, cast.feed, "stix/"))
    assert {o["id"] for o in bundle["objects"] if o["type"] == "indicator"} == allowed
    rows = csv.DictReader(io.StringIO(export_text(cast.dana, cast.feed, "csv/")))
    assert {r["id"] for r in rows} == allowed
    assert export_text(cast.dana, cast.feed, "ips.txt").splitlines() == [
        "10.0.0.0/24",
        "10.0.1.0/24",
        "10.0.2.0/24",
    ]


def test_amber_ceiling_org_hashes_export_stops_at_amber(cast, publish):
    from tests.sharing.api.helpers import indicator

    pattern = (
        "[mdx-hashed-identifier:identifier_type = 'phone' AND mdx-hashed-identifier:key_id = 'k' AND "
        "mdx-hashed-identifier:value = '{}']"
    )
    publish(
        [
            indicator(tlp="amber", pattern=pattern.format("a" * 64)),
            indicator(tlp="amber+strict", pattern=pattern.format("b" * 64)),
            indicator(tlp="red", pattern=pattern.format("c" * 64)),
        ]
    )
    assert export_text(cast.dana, cast.feed, "hashes.txt").splitlines() == [f"phone\tk\t{'a' * 64}"]
    assert len(export_text(cast.alice, cast.feed, "hashes.txt").splitlines()) == 3


def test_clear_only_public_reader_sees_only_clear_everywhere(cast, tlp_ladder):
    public = tlp_ladder["public"]
    client = cast.charlie.client()
    assert ids(client.get("/api/v1/objects/")) == {public["clear"]["id"]}
    for level, obj in public.items():
        assert client.get(f"/api/v1/objects/{obj['id']}/").status_code == (200 if level == "clear" else 404)
    bundle = json.loads(export_text(cast.charlie, cast.public, "stix/"))
    assert [o["id"] for o in bundle["objects"] if o["type"] == "indicator"] == [public["clear"]["id"]]
    assert [r["id"] for r in csv.DictReader(io.StringIO(export_text(cast.charlie, cast.public, "csv/")))] == [
        public["clear"]["id"]
    ]
    assert export_text(cast.charlie, cast.public, "ips.txt") == "10.9.0.0/24\n"


def test_full_ceiling_org_sees_every_level(cast, tlp_ladder):
    assert len(ids(cast.alice.client().get("/api/v1/objects/", {"page_size": 50}))) == 10
    assert len(export_text(cast.alice, cast.feed, "ips.txt").splitlines()) == 5


def test_collections_list_shows_access_and_readable_counts(cast, tlp_ladder):
    response = cast.dana.client().get("/api/v1/collections/")
    assert response.status_code == 200
    assert [
        (c["title"], c["can_read"], c["can_write"], c["tlp_ceiling"], c["object_count"])
        for c in response.json()
    ] == [("Distillation campaigns", True, False, "amber", 3), ("Public feed", True, False, "clear", 1)]
    titles = [c["title"] for c in cast.alice.client().get("/api/v1/collections/").json()]
    assert titles == ["Alice private", "Distillation campaigns", "Public feed"]
    [public] = cast.charlie.client().get("/api/v1/collections/").json()
    assert (public["title"], public["is_public"], public["object_count"]) == ("Public feed", True, 1)
