"""The hydra-cluster pages: list, filters and charts, members and link breakdown, audited decisions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from indicators import cluster_service as cs
from indicators import matching_service as ms
from indicators.matching import AccountRecord, ClientRecord, IpRecord, PaymentRecord
from indicators.models import AccountCluster, Alert
from sharing.models import AuditEvent, Membership
from tests.indicators.matching_helpers import publish_indicators, records_store
from tests.stix_builders import make_indicator

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SEEN = NOW - timedelta(days=5)


def carded(card: str, count: int, prefix: str) -> list[int]:
    payment = (PaymentRecord("par", "k", card, first_used=SEEN),)
    return records_store(
        [AccountRecord(pseudonym=f"{prefix}{i}", created_at=SEEN, tier="research-program", payments=payment)
         for i in range(count)],
        prefix,
    )  # fmt: skip


@pytest.fixture
def clusters(web, settings):
    """``farm``: 3 accounts on one card, matched by an indicator (the candidate, with alerts);
    ``pair``: 2 accounts tied by a signup /24 within 24 h plus a rare ja4; ``loner``: in no cluster."""
    settings.MDX_CLUSTER_MIN_SIZE = 3
    farm = carded("aa" * 32, 3, "farm")
    pair = records_store(
        [
            AccountRecord(
                pseudonym=f"p{i}",
                created_at=SEEN,
                ips=(IpRecord(f"198.51.100.{i}", signup=True),),
                clients=(ClientRecord(ja4="t13d-rare"),),
            )  # fmt: skip
            for i in (1, 2)
        ],
        "pair",
    )
    loner = carded("ff" * 32, 1, "loner")
    [indicator] = publish_indicators(
        [make_indicator(pattern=f"[mdx-payment-fingerprint:value = '{'aa' * 32}']", confidence=90)]
    )
    ms.indicator_match(indicator.pk)
    cs.clusters_link(NOW)
    return {
        "farm": AccountCluster.objects.get(members__account_id=farm[0]),
        "pair": AccountCluster.objects.get(members__account_id=pair[0]),
        "farm_pks": farm,
        "pair_pks": pair,
        "loner": loner[0],
    }


def rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-cluster="(\d+)"', html)]


# --- List --------------------------------------------------------------------------------------------


def test_the_list_shows_candidates_first_with_reasons_link_types_and_charts(web, clusters, client_for):
    page = client_for(web.viewer).get(reverse("web:clusters"))
    assert page.status_code == 200
    html = page.content.decode()
    assert rows(html) == [clusters["farm"].pk, clusters["pair"].pk]
    assert html.count('<svg class="chart"') == 2
    assert "Clusters by size" in html and "Link types" in html
    assert "<title>2–4: 2</title>" in html and "<title>20–49: 0</title>" in html
    assert "<title>card: 1</title>" in html and "<title>net: 1</title>" in html
    farm_row = html[html.index(f'data-cluster="{clusters["farm"].pk}"') :].split("</tr>")[0]
    assert "candidate" in farm_row and "3 members matched by indicators" in farm_row
    assert "card 3" in farm_row
    pair_row = html[html.index(f'data-cluster="{clusters["pair"].pk}"') :].split("</tr>")[0]
    assert "signup net 2" in pair_row and "client 2" in pair_row and "pill-bad" not in pair_row
    assert 'data-testid="cluster-total">2<' in html
    assert "Last linked with the window ending 2026-11-23 00:00 UTC" in html


def test_the_filters_return_the_right_rows(web, clusters, client_for):
    client = client_for(web.reviewer)

    def listed(**params) -> list[int]:
        page = client.get(reverse("web:clusters"), params)
        assert page.status_code == 200
        return rows(page.content.decode())

    assert listed(candidate="on") == [clusters["farm"].pk]
    assert listed(min_size="3") == [clusters["farm"].pk]
    cs.cluster_review(cluster=clusters["pair"], status="dismissed")
    assert listed(status="dismissed") == [clusters["pair"].pk]
    assert listed(status="new", candidate="on") == [clusters["farm"].pk]
    assert listed(status="confirmed") == []
    # A bad value is reported, not a server error; the list is then unfiltered.
    page = client.get(reverse("web:clusters"), {"min_size": "lots"})
    assert page.status_code == 200 and "Min accounts: Enter a whole number." in page.content.decode()
    assert rows(page.content.decode()) == [clusters["farm"].pk, clusters["pair"].pk]


# --- Detail ------------------------------------------------------------------------------------------


def test_the_detail_lists_members_with_links_scores_and_the_link_breakdown(web, clusters, client_for):
    farm = clusters["farm"]
    html = client_for(web.viewer).get(reverse("web:cluster", args=[farm.pk])).content.decode()
    for pk in clusters["farm_pks"]:
        assert f'href="{reverse("web:account", args=[pk])}"' in html
    scores = Alert.objects.filter(account_id__in=clusters["farm_pks"]).values_list("score", flat=True)
    assert len(scores) == 3 and f"{max(scores):.2f}" in html
    assert 'data-link="payment"' in html and "same payment HMAC (PAN or PAR basis)" in html
    assert "<title>card: 3</title>" in html  # the breakdown chart
    assert "3 members matched by active indicators" in html
    assert 'data-testid="candidate-reason">yes: 3 members matched by indicators' in html
    assert "Viewers see clusters read-only" in html and 'name="decision"' not in html


def test_the_detail_of_a_missing_cluster_is_a_404(web, db, client_for):
    assert client_for(web.viewer).get(reverse("web:cluster", args=[999999])).status_code == 404


def test_the_account_page_shows_the_accounts_cluster(web, clusters, client_for):
    client = client_for(web.viewer)
    html = client.get(reverse("web:account", args=[clusters["farm_pks"][0]])).content.decode()
    cell = html[html.index('data-testid="account-cluster"') :].split("</dd>")[0]
    assert f'href="{reverse("web:cluster", args=[clusters["farm"].pk])}"' in cell
    assert "3 accounts" in cell and "candidate" in cell
    loner = client.get(reverse("web:account", args=[clusters["loner"]])).content.decode()
    assert 'data-testid="account-cluster">none</dd>' in loner


def test_the_navigation_links_the_clusters_page(web, db, client_for):
    html = client_for(web.viewer).get(reverse("web:clusters")).content.decode()
    assert f'<a href="{reverse("web:clusters")}" class="active">Hydra clusters</a>' in html


# --- Decisions ---------------------------------------------------------------------------------------


def test_a_reviewer_confirms_dismisses_and_reopens_audited(web, clusters, client_for):
    farm = clusters["farm"]
    client = client_for(web.reviewer)
    page = client.get(reverse("web:cluster", args=[farm.pk])).content.decode()
    assert 'value="confirm"' in page and 'value="reopen"' not in page  # new: nothing to reopen
    response = client.post(
        reverse("web:cluster-review", args=[farm.pk]),
        {"decision": "confirm", "note": "one operator"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("web:cluster", args=[farm.pk])
    assert f"Confirm: cluster #{farm.pk} is now confirmed." in response.content.decode()
    farm.refresh_from_db()
    assert (farm.status, farm.review_note, farm.reviewer) == ("confirmed", "one operator", web.reviewer)
    client.post(reverse("web:cluster-review", args=[farm.pk]), {"decision": "reopen"})
    farm.refresh_from_db()
    assert farm.status == "new"
    events = list(AuditEvent.objects.filter(action="cluster.review").order_by("pk"))
    assert [(e.details["from"], e.details["status"]) for e in events] == [
        ("new", "confirmed"),
        ("confirmed", "new"),
    ]
    assert all(e.actor_user == web.reviewer and e.target_id == str(farm.pk) for e in events)


def test_a_bad_decision_is_reported_and_changes_nothing(web, clusters, client_for):
    farm = clusters["farm"]
    response = client_for(web.reviewer).post(
        reverse("web:cluster-review", args=[farm.pk]), {"decision": "enforce"}, follow=True
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    farm.refresh_from_db()
    assert farm.status == "new" and not AuditEvent.objects.filter(action="cluster.review").exists()


def test_decisions_are_post_only_and_need_the_csrf_token(web, clusters):
    url = reverse("web:cluster-review", args=[clusters["farm"].pk])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(web.reviewer)
    assert strict.get(url).status_code == 405
    assert strict.post(url, {"decision": "confirm"}).status_code == 403
    assert AccountCluster.objects.get(pk=clusters["farm"].pk).status == "new"


# --- Permissions -------------------------------------------------------------------------------------


def test_viewers_cannot_decide(web, clusters, client_for):
    url = reverse("web:cluster-review", args=[clusters["farm"].pk])
    assert client_for(web.viewer).post(url, {"decision": "confirm"}).status_code == 403
    assert AccountCluster.objects.get(pk=clusters["farm"].pk).status == "new"


def test_anonymous_users_are_sent_to_sign_in(clusters):
    client = Client()
    for url in (reverse("web:clusters"), reverse("web:cluster", args=[clusters["farm"].pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = client.post(reverse("web:cluster-review", args=[clusters["farm"].pk]), {"decision": "confirm"})
    assert response.status_code == 302
    assert AccountCluster.objects.get(pk=clusters["farm"].pk).status == "new"


def test_a_user_without_an_operator_role_gets_403(web, clusters, django_user_model):
    outsider = django_user_model.objects.create_user("olga")
    Membership.objects.create(user=outsider, organisation=web.partner, role="admin")  # partner staff only
    client = Client()
    client.force_login(outsider)
    for url in (reverse("web:clusters"), reverse("web:cluster", args=[clusters["farm"].pk])):
        assert client.get(url).status_code == 403
    assert (
        client.post(
            reverse("web:cluster-review", args=[clusters["farm"].pk]), {"decision": "confirm"}
        ).status_code
        == 403
    )
