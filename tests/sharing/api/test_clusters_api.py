"""REST API v1 for hydra clusters: operator admin tokens only, filters, keyset pages, audited reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from indicators import cluster_service as cs
from indicators import matching_service as ms
from indicators.matching import AccountRecord, PaymentRecord
from indicators.models import AccountCluster, Alert
from sharing.models import AuditEvent
from tests.indicators.matching_helpers import publish_indicators, records_store
from tests.sharing.api.helpers import Member
from tests.stix_builders import make_indicator

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SEEN = NOW - timedelta(days=5)

pytestmark = pytest.mark.django_db


def accounts(card: str, count: int, prefix: str) -> list[int]:
    records = [
        AccountRecord(
            pseudonym=f"{prefix}{i}",
            created_at=SEEN,
            payments=(PaymentRecord("par", "k", card, first_used=SEEN),),
        )
        for i in range(count)
    ]
    return records_store(records, prefix)


@pytest.fixture
def clusters(settings):
    """Three clusters: ``big`` (4 accounts), ``hit`` (3, matched by an indicator: the candidate), ``pair``."""
    settings.MDX_CLUSTER_MIN_SIZE = 3
    big = accounts("aa" * 32, 4, "big")
    hit = accounts("bb" * 32, 3, "hit")
    pair = accounts("cc" * 32, 2, "pair")
    [indicator] = publish_indicators(
        [make_indicator(pattern=f"[mdx-payment-fingerprint:value = '{'bb' * 32}']", confidence=90)]
    )
    ms.indicator_match(indicator.pk)
    cs.clusters_link(NOW)
    by_first = {c.members.order_by("account_id").first().account_id: c for c in AccountCluster.objects.all()}
    return {"big": by_first[big[0]], "hit": by_first[hit[0]], "pair": by_first[pair[0]], "hit_pks": hit}


@pytest.fixture
def operator(make_org):
    from sharing.services import token_issue

    hub = make_org("Node Operator", "hub", trusted=True)

    def member(scopes: str) -> Member:
        token, plaintext = token_issue(organisation=hub, scopes=scopes)
        return Member(hub, token, plaintext)

    return member("admin"), member("read,write")


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


# --- Access --------------------------------------------------------------------------------------------


def test_only_the_operators_admin_tokens_reach_clusters(clusters, operator, alice_lab):
    from sharing.services import token_issue

    _, reader = operator
    _, partner_plaintext = token_issue(organisation=alice_lab, scopes="read,write,admin")
    partner = APIClient()
    partner.credentials(HTTP_AUTHORIZATION=f"Bearer {partner_plaintext}")
    pk = clusters["hit"].pk
    for method, url in (
        ("get", "/api/v1/clusters/"),
        ("get", f"/api/v1/clusters/{pk}/"),
        ("post", f"/api/v1/clusters/{pk}/review/"),
    ):
        for client in (partner, reader.client()):
            response = getattr(client, method)(url, {"status": "confirmed"}, format="json")
            assert response.status_code == 403, (url, response.content)
            assert "node-private" in response.json()["detail"]
        assert getattr(APIClient(), method)(url).status_code == 401
    assert AccountCluster.objects.get(pk=pk).status == "new"


# --- List ------------------------------------------------------------------------------------------------


def test_the_list_is_largest_first_with_link_counts_and_candidates(clusters, operator):
    admin, _ = operator
    body = admin.client().get("/api/v1/clusters/").json()
    assert [c["id"] for c in body["results"]] == [clusters[k].pk for k in ("big", "hit", "pair")]
    hit = body["results"][1]
    assert hit["size"] == 3 and hit["link_counts"] == {"payment": 3}
    assert hit["is_candidate"] and hit["indicator_hits"] == 3
    assert hit["candidate_reason"] == "3 members matched by indicators"
    assert hit["max_alert_score"] == max(Alert.objects.values_list("score", flat=True))
    assert hit["status"] == "new" and hit["reviewer"] is None
    assert body["results"][0]["is_candidate"] is False and body["next"] is None


def test_the_list_filters(clusters, operator):
    api = operator[0].client()
    assert ids(api.get("/api/v1/clusters/", {"candidate": "true"})) == [clusters["hit"].pk]
    assert ids(api.get("/api/v1/clusters/", {"candidate": "false"})) == [
        clusters["big"].pk,
        clusters["pair"].pk,
    ]
    assert ids(api.get("/api/v1/clusters/", {"min_size": "3"})) == [clusters["big"].pk, clusters["hit"].pk]
    cs.cluster_review(cluster=clusters["pair"], status="dismissed")
    assert ids(api.get("/api/v1/clusters/", {"status": "dismissed"})) == [clusters["pair"].pk]
    assert ids(api.get("/api/v1/clusters/", {"status": "new,confirmed"})) == [
        clusters["big"].pk,
        clusters["hit"].pk,
    ]


def test_the_list_pages_with_an_opaque_cursor(clusters, operator):
    api = operator[0].client()
    first = api.get("/api/v1/clusters/", {"page_size": 2}).json()
    assert [c["id"] for c in first["results"]] == [clusters["big"].pk, clusters["hit"].pk]
    second = api.get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == [clusters["pair"].pk] and second["next"] is None


@pytest.mark.parametrize(
    "params, message",
    [
        ({"candidate": "yes"}, "candidate must be true or false"),
        ({"status": "new,enforced"}, "unknown status 'enforced'"),
        ({"min_size": "many"}, "min_size must be a non-negative integer"),
        ({"min_size": "²"}, "min_size must be a non-negative integer"),
        ({"page_size": "0"}, "page_size must be an integer from 1"),
        ({"page_size": "²"}, "page_size must be an integer from 1"),
        ({"cursor": "!!not-a-cursor"}, "invalid cursor"),
        ({"cursor": "MTI"}, "invalid cursor"),  # base64 of "12": no separator
    ],
)
def test_bad_list_parameters_are_400s_with_a_message(clusters, operator, params, message):
    response = operator[0].client().get("/api/v1/clusters/", params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


# --- Detail and review -------------------------------------------------------------------------------------


def test_the_detail_lists_member_account_ids_with_alert_scores(clusters, operator):
    api = operator[0].client()
    body = api.get(f"/api/v1/clusters/{clusters['hit'].pk}/").json()
    assert {m["account"] for m in body["members"]} == set(clusters["hit_pks"])
    assert {m["account_id"] for m in body["members"]} == {"hit-0", "hit-1", "hit-2"}
    assert all(m["alert_score"] is not None for m in body["members"])
    assert body["members_truncated"] is False and body["size"] == 3
    pair = api.get(f"/api/v1/clusters/{clusters['pair'].pk}/").json()
    assert [m["alert_score"] for m in pair["members"]] == [None, None]
    assert api.get("/api/v1/clusters/999999/").status_code == 404


def test_a_review_is_recorded_audited_and_kept_by_relinking(clusters, operator):
    admin, _ = operator
    pk = clusters["hit"].pk
    response = admin.client().post(
        f"/api/v1/clusters/{pk}/review/",
        {"status": "confirmed", "note": "one card, one operator"},
        format="json",
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["review_note"]) == (
        "confirmed",
        "one card, one operator",
    )
    assert len(response.json()["members"]) == 3
    event = AuditEvent.objects.get(action="cluster.review")
    assert (event.target_type, event.target_id, event.actor_token_id) == (
        "account_cluster",
        str(pk),
        admin.token.pk,
    )
    assert event.details == {"status": "confirmed", "from": "new", "size": 3}
    cs.clusters_link(NOW)
    cluster = AccountCluster.objects.get(pk=pk)
    assert (cluster.status, cluster.review_note) == ("confirmed", "one card, one operator")


@pytest.mark.parametrize(
    "body",
    [{"status": "enforced"}, {}, {"status": "confirmed", "note": "x" * 5001}, {"status": ["confirmed"]}],
)
def test_a_bad_review_is_a_400_and_changes_nothing(clusters, operator, body):
    pk = clusters["hit"].pk
    response = operator[0].client().post(f"/api/v1/clusters/{pk}/review/", body, format="json")
    assert response.status_code == 400
    assert AccountCluster.objects.get(pk=pk).status == "new"
    assert not AuditEvent.objects.filter(action="cluster.review").exists()


def test_a_review_of_a_missing_cluster_is_a_404(operator, db):
    response = operator[0].client().post("/api/v1/clusters/999999/review/", {"status": "new"}, format="json")
    assert response.status_code == 404 and response.json()["detail"] == "no such cluster"


def test_the_schema_documents_the_cluster_endpoints(db):
    from django.test import Client
    from drf_spectacular.validation import validate_schema

    schema = Client().get("/api/v1/schema/?format=json").json()
    validate_schema(schema)
    operations = {
        path: {method: op["operationId"] for method, op in ops.items()}
        for path, ops in schema["paths"].items()
        if path.startswith("/api/v1/clusters/")
    }
    assert operations == {
        "/api/v1/clusters/": {"get": "clusters_list"},
        "/api/v1/clusters/{cluster_id}/": {"get": "clusters_retrieve"},
        "/api/v1/clusters/{cluster_id}/review/": {"post": "clusters_review"},
        "/api/v1/clusters/{cluster_id}/report/": {"post": "clusters_report"},
    }
