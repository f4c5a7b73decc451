"""GET /api/v1/objects/: search across every visible collection, filters and cursor paging."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.sharing.api.helpers import FUTURE, PAST, Member, campaign, ids, indicator


@pytest.fixture
def corpus(cast, publish):
    """Named objects in feed (and one also in public) covering every filter."""
    from sharing.services import organisation_create

    other = organisation_create(name="Other Lab", kind="lab")
    objs = {
        "active": indicator(
            name="Active proxy",
            labels=["proxy", "reseller"],
            valid_until=FUTURE,
            created_by_ref=cast.alice.org.identity_id,
            tlp="green",
        ),
        "open_ended": indicator(
            name="Open-ended",
            labels=["Proxy"],
            tlp="amber",
            description="Seen in the HYDRA cluster",
            created_by_ref=other.identity_id,
        ),
        "expired": indicator(name="Expired range", valid_until=PAST, tlp="amber"),
        "revoked": indicator(name="Revoked range", revoked=True, tlp="red"),
        "campaign": campaign("Hydra distillation", tlp="clear"),
    }
    publish(list(objs.values()))
    publish([objs["campaign"]], collection=cast.public)  # same version in two collections
    return {key: obj["id"] for key, obj in objs.items()}


def search(member, **params):
    return member.client().get("/api/v1/objects/", params)


def test_results_carry_columns_collections_and_the_object(cast, corpus):
    response = search(cast.alice, type="campaign")
    [row] = response.json()["results"]
    assert row["id"] == corpus["campaign"]
    assert row["type"] == "campaign" and row["name"] == "Hydra distillation"
    assert row["tlp"] == "clear" and row["revoked"] is False and row["spec_version"] == "2.1"
    assert row["modified"] == "2026-11-01T00:00:00Z"
    assert [c["title"] for c in row["collections"]] == ["Distillation campaigns", "Public feed"]
    assert row["object"]["id"] == corpus["campaign"]
    assert set(row) >= {
        "created",
        "created_by_ref",
        "confidence",
        "valid_from",
        "valid_until",
        "labels",
        "date_added",
    }


def test_an_object_in_two_collections_is_listed_once(cast, corpus):
    response = search(cast.alice)
    rows = response.json()["results"]
    assert len(rows) == len({r["id"] for r in rows}) == 5


def test_filter_by_type_takes_a_comma_list(cast, corpus):
    assert ids(search(cast.alice, type="campaign")) == {corpus["campaign"]}
    assert ids(search(cast.alice, type="campaign, indicator")) == set(corpus.values())
    assert ids(search(cast.alice, type="malware")) == set()


def test_filter_by_created_by(cast, corpus):
    assert ids(search(cast.alice, created_by=cast.alice.org.identity_id)) == {corpus["active"]}


def test_filter_by_tlp_matches_exactly_that_level(cast, corpus):
    assert ids(search(cast.alice, tlp="amber")) == {corpus["open_ended"], corpus["expired"]}
    assert ids(search(cast.alice, tlp="red")) == {corpus["revoked"]}
    assert ids(search(cast.alice, tlp="green")) == {corpus["active"]}
    assert ids(search(cast.alice, tlp="amber+strict")) == set()


def test_unknown_tlp_level_is_400(cast, corpus):
    response = search(cast.alice, tlp="white")
    assert response.status_code == 400
    assert "tlp" in response.json()["errors"]


def test_filter_by_label_is_whole_label_and_case_insensitive(cast, corpus):
    assert ids(search(cast.alice, label="proxy")) == {corpus["active"], corpus["open_ended"]}
    assert ids(search(cast.alice, label="reseller")) == {corpus["active"]}
    assert ids(search(cast.alice, label="prox")) == set()


def test_q_searches_name_and_description_case_insensitively(cast, corpus):
    assert ids(search(cast.alice, q="hydra")) == {corpus["open_ended"], corpus["campaign"]}
    assert ids(search(cast.alice, q="PROXY")) == {corpus["active"]}
    assert ids(search(cast.alice, q="cluster")) == {corpus["open_ended"]}
    assert ids(search(cast.alice, q="nothing like this")) == set()


def test_q_does_not_match_other_json_fields(cast, corpus):
    # "malicious-activity" is in every indicator's indicator_types, but not in a name or description.
    assert ids(search(cast.alice, q="malicious")) == set()


def test_state_filters_active_revoked_expired_and_all(cast, corpus):
    assert ids(search(cast.alice, state="active")) == {
        corpus["active"],
        corpus["open_ended"],
        corpus["campaign"],
    }
    assert ids(search(cast.alice, state="revoked")) == {corpus["revoked"]}
    assert ids(search(cast.alice, state="expired")) == {corpus["expired"]}
    assert ids(search(cast.alice, state="all")) == set(corpus.values())
    assert ids(search(cast.alice)) == set(corpus.values())


def test_unknown_state_is_400(cast, corpus):
    response = search(cast.alice, state="dormant")
    assert response.status_code == 400
    assert "state" in response.json()["detail"]


def test_added_window_filters_on_date_added(cast, corpus, publish):
    from sharing.models import CollectionEntry

    first = CollectionEntry.objects.filter(collection=cast.feed).order_by("date_added").first()
    late = indicator(name="Late")
    publish([late])
    late_added = CollectionEntry.objects.get(stix_id=late["id"]).date_added
    stamp = (late_added - timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    assert ids(search(cast.alice, added_after=stamp)) == {late["id"]}
    assert ids(search(cast.alice, added_before=stamp)) == set(corpus.values())
    exact = first.date_added.isoformat().replace("+00:00", "Z")
    assert first.stix_id not in ids(search(cast.alice, added_after=exact))  # strictly after
    assert ids(search(cast.alice, added_after=stamp, added_before=stamp)) == set()


def test_filter_by_collection(cast, corpus, publish):
    private = indicator(name="Private")
    publish([private], collection=cast.secret)
    assert ids(search(cast.alice, collection=str(cast.secret.pk))) == {private["id"]}
    assert ids(search(cast.alice, collection=str(cast.public.pk))) == {corpus["campaign"]}
    # A collection the caller cannot see yields nothing (and reveals nothing).
    assert ids(search(cast.dana, collection=str(cast.secret.pk))) == set()


def test_only_latest_versions_by_default_and_all_on_request(cast, publish):
    v1 = indicator(modified="2026-11-01T00:00:00.000Z", name="v1")
    v2 = dict(v1, modified="2026-11-02T00:00:00.000Z", name="v2")
    publish([v1])
    publish([v2])
    [latest] = search(cast.alice).json()["results"]
    assert latest["name"] == "v2"
    both = search(cast.alice, versions="all").json()["results"]
    assert sorted(r["name"] for r in both) == ["v1", "v2"]


def test_cursor_paging_returns_every_object_exactly_once(cast, publish):
    objects = [indicator(name=f"n{i}") for i in range(23)]
    publish(objects[:10])
    publish(objects[10:], collection=cast.public)
    publish(objects[5:15], collection=cast.secret)  # duplicates across collections
    client, seen, pages = cast.alice.client(), [], 0
    url, params = "/api/v1/objects/", {"page_size": 4}
    while url:
        response = client.get(url, params)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 4
        seen += [r["id"] for r in body["results"]]
        url, params, pages = body["next"], None, pages + 1
    assert sorted(seen) == sorted(o["id"] for o in objects)
    assert pages == 6


def test_page_size_is_capped_by_the_maximum(cast, settings, publish):
    settings.TAXII_MAX_PAGE_SIZE = 2
    publish([indicator(), indicator(), indicator()])
    assert len(search(cast.alice).json()["results"]) == 2
    response = search(cast.alice, page_size=3)
    assert response.status_code == 400
    assert "from 1 to 2" in response.json()["detail"]


def test_search_needs_the_read_scope(cast, corpus):
    from sharing.services import token_issue

    write_only = Member(cast.alice.org, *token_issue(organisation=cast.alice.org, scopes="write"))
    response = write_only.client().get("/api/v1/objects/")
    assert response.status_code == 403
    assert "'read' scope" in response.json()["detail"]


def test_organisation_without_grants_sees_only_public_clear_objects(cast, corpus):
    assert ids(search(cast.charlie)) == {corpus["campaign"]}


def test_search_without_a_token_is_401(cast):
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/objects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_empty_text_parameters_mean_no_filter(cast, corpus):
    assert ids(search(cast.alice, type="", created_by="", label="", q="", cursor="")) == set(corpus.values())
