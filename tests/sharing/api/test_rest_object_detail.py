"""GET /api/v1/objects/<stix-id>/: latest visible version, visible history, visible relationships."""

from __future__ import annotations

from tests.sharing.api.helpers import campaign, indicator, relationship


def detail(member, stix_id):
    return member.client().get(f"/api/v1/objects/{stix_id}/")


def test_detail_shows_latest_version_history_and_relationships(cast, publish):
    v1 = indicator(modified="2026-11-01T00:00:00.000Z", name="v1", tlp="green")
    v2 = dict(v1, modified="2026-11-02T00:00:00.000Z", name="v2")
    hydra = campaign("Hydra")
    points_in = relationship(v1["id"], hydra["id"])
    other = campaign("Other")
    points_out = relationship(other["id"], v1["id"])
    unrelated = relationship(other["id"], hydra["id"])
    publish([v1, hydra, other, points_in, points_out, unrelated])
    publish([v2])
    response = detail(cast.alice, v1["id"])
    assert response.status_code == 200
    body = response.json()
    assert body["object"]["name"] == "v2"
    assert body["object"]["object"]["modified"] == "2026-11-02T00:00:00.000Z"
    assert [v["modified"] for v in body["versions"]] == ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"]
    assert body["versions"][0]["collections"] == [
        {"id": str(cast.feed.pk), "title": "Distillation campaigns"}
    ]
    assert {r["id"] for r in body["relationships"]} == {points_in["id"], points_out["id"]}
    assert body["relationships_truncated"] is False


def test_versions_above_the_ceiling_are_hidden(cast, publish):
    v1 = indicator(modified="2026-11-01T00:00:00.000Z", name="amber v1", tlp="amber")
    v2 = dict(
        v1,
        modified="2026-11-02T00:00:00.000Z",
        name="red v2",
        object_marking_refs=["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"],
    )
    publish([v1])
    publish([v2])
    seen_by_dana = detail(cast.dana, v1["id"]).json()
    assert seen_by_dana["object"]["name"] == "amber v1"
    assert [v["modified"] for v in seen_by_dana["versions"]] == ["2026-11-01T00:00:00Z"]
    assert detail(cast.alice, v1["id"]).json()["object"]["name"] == "red v2"


def test_hidden_relationships_are_excluded(cast, publish):
    target = indicator(tlp="green")
    visible = relationship(campaign()["id"], target["id"], tlp="amber")
    too_red = relationship(campaign()["id"], target["id"], tlp="red")
    private = relationship(campaign()["id"], target["id"], tlp="green")
    publish([target, visible, too_red])
    publish([private], collection=cast.secret)
    rels = {r["id"] for r in detail(cast.dana, target["id"]).json()["relationships"]}
    assert rels == {visible["id"]}
    rels = {r["id"] for r in detail(cast.alice, target["id"]).json()["relationships"]}
    assert rels == {visible["id"], too_red["id"], private["id"]}


def test_an_object_in_a_collection_you_cannot_see_is_404(cast, publish):
    private = indicator(tlp="clear")
    publish([private], collection=cast.secret)
    for member in (cast.dana, cast.charlie, cast.bob):
        response = detail(member, private["id"])
        assert response.status_code == 404
        assert response.json() == {"detail": "no such object"}


def test_an_object_above_your_ceiling_is_404(cast, publish):
    red = indicator(tlp="red")
    publish([red])
    assert detail(cast.dana, red["id"]).status_code == 404
    assert detail(cast.alice, red["id"]).status_code == 200


def test_an_object_in_two_collections_lists_both(cast, publish):
    obj = campaign(tlp="clear")
    publish([obj])
    publish([obj], collection=cast.public)
    body = detail(cast.alice, obj["id"]).json()
    assert [c["title"] for c in body["object"]["collections"]] == ["Distillation campaigns", "Public feed"]
    assert len(body["versions"]) == 1
    assert [c["title"] for c in detail(cast.charlie, obj["id"]).json()["object"]["collections"]] == [
        "Public feed"
    ]


def test_unknown_and_absurd_ids_are_404(cast):
    assert detail(cast.alice, "indicator--00000000-0000-4000-8000-000000000000").status_code == 404
    assert detail(cast.alice, "x" * 1000).status_code == 404
