"""The alerts pages: filters and charts, account evidence, quarantine flags, audited decisions by role."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from indicators.models import Account, Alert, IndicatorMatchState, Match
from indicators.services import stix_objects_store
from sharing.models import AuditEvent
from tests.stix_builders import make_indicator


def _indicator(name: str, *, status: str = "done", matched: int = 1):
    obj = stix_objects_store([make_indicator(name=name)])[0].stix_object
    IndicatorMatchState.objects.create(indicator=obj, status=status, matched_count=matched)
    return obj


def _account(account_id: str, tier: str = "free") -> Account:
    now = timezone.now()
    return Account.objects.create(
        account_id=account_id,
        pseudonym=f"ps-{account_id}",
        created_at=now - timedelta(days=30),
        changed_at=now,
        status="active",
        tier=tier,
        signup_country="NL",
    )


def _match(indicator, account, *, weight=0.9, kind="network-range", evidence=None) -> Match:
    return Match.objects.create(
        indicator=indicator,
        account=account,
        kind=kind,
        weight=weight,
        evidence=evidence or {"table": "account_ip", "column": "ip", "range": "198.51.100.0/24"},
        matched_at=timezone.now(),
    )


@pytest.fixture
def alerts(web):
    """Three alerts: high and new (two matches), mid and triaged, low on a quarantined indicator."""
    proxy = _indicator("Proxy pool egress")
    harness = _indicator("Harness client fingerprint")
    flood = _indicator("Over-broad range", status=IndicatorMatchState.Status.QUARANTINED, matched=812)
    acme, beta, gamma = _account("acct-acme", "pro"), _account("acct-beta", "free"), _account("acct-gamma")
    _match(proxy, acme, weight=0.9)
    _match(
        harness,
        acme,
        weight=0.6,
        kind="client-fingerprint",
        evidence={"table": "account_client", "column": "ja4"},
    )
    _match(harness, beta, weight=0.6, kind="client-fingerprint")
    _match(flood, gamma, weight=0.7)
    return {
        "high": Alert.objects.create(account=acme, score=0.93),
        "mid": Alert.objects.create(account=beta, score=0.62, status=Alert.Status.TRIAGED),
        "low": Alert.objects.create(account=gamma, score=0.51),
        "proxy": proxy,
        "harness": harness,
        "flood": flood,
    }


def _listed(client, **params) -> list[str]:
    page = client.get(reverse("web:alerts"), params)
    assert page.status_code == 200
    html = page.content.decode()
    found = [(html.index(f">{a}<"), a) for a in ("acct-acme", "acct-beta", "acct-gamma") if f">{a}<" in html]
    return [a for _, a in sorted(found)]


# --- List -----------------------------------------------------------------------------------------


def test_the_list_is_sorted_by_score_with_bars_badges_counts_and_charts(web, alerts, client_for):
    client = client_for(web.viewer)
    assert _listed(client) == ["acct-acme", "acct-beta", "acct-gamma"]
    html = client.get(reverse("web:alerts")).content.decode()
    assert html.count('<svg class="chart"') == 2
    assert "Alerts by status" in html and "Score histogram" in html
    assert "<title>New: 2</title>" in html and "<title>Triaged: 1</title>" in html  # alerts, not matches
    assert "<title>0.9: 1</title>" in html and "<title>0.6: 1</title>" in html
    assert 'class="scorebar high" style="--v: 93%"' in html
    assert 'class="astatus astatus-triaged"' in html
    row = html[html.index(f'data-alert="{alerts["high"].pk}"') :].split("</tr>")[0]
    assert '<td class="num">2</td>' in row  # two matches
    assert "Proxy pool egress" in row  # the heaviest match is the top indicator
    assert reverse("web:object-detail", args=[alerts["proxy"].pk]) in row
    low_row = html[html.index(f'data-alert="{alerts["low"].pk}"') :].split("</tr>")[0]
    assert "over-match" in low_row


def test_the_filters_return_the_right_rows(web, alerts, client_for):
    client = client_for(web.reviewer)
    assert _listed(client, status="triaged") == ["acct-beta"]
    assert _listed(client, status="open") == ["acct-acme", "acct-beta", "acct-gamma"]
    assert _listed(client, status="open", min_score="0.55") == ["acct-acme", "acct-beta"]
    assert _listed(client, status="new") == ["acct-acme", "acct-gamma"]
    assert _listed(client, min_score="0.6") == ["acct-acme", "acct-beta"]
    assert _listed(client, min_score="0.9") == ["acct-acme"]
    assert _listed(client, tier="pro") == ["acct-acme"]
    assert _listed(client, indicator="harness") == ["acct-acme", "acct-beta"]
    assert _listed(client, indicator=alerts["flood"].stix_id) == ["acct-gamma"]
    assert _listed(client, tier="free", min_score="0.6") == ["acct-beta"]
    # A bad value is reported, not a server error; the list is then unfiltered.
    assert client.get(reverse("web:alerts"), {"min_score": "lots"}).status_code == 200


# --- Detail ---------------------------------------------------------------------------------------


def test_the_detail_shows_the_account_and_each_match_evidence(web, alerts, client_for):
    page = client_for(web.viewer).get(reverse("web:alert", args=[alerts["high"].pk]))
    html = page.content.decode()
    assert page.status_code == 200
    for text in (
        "acct-acme",
        "ps-acct-acme",
        "pro",
        "NL",
        "active",
        "Proxy pool egress",
        "Harness client fingerprint",
    ):
        assert text in html, text
    assert "network-range" in html and "client-fingerprint" in html and "0.90" in html
    assert "&quot;column&quot;: &quot;ja4&quot;" in html  # evidence JSON, pretty-printed and escaped
    assert reverse("web:object-detail", args=[alerts["harness"].pk]) in html
    assert "over-match" not in html
    # The same page by account.
    by_account = client_for(web.viewer).get(reverse("web:account", args=[alerts["high"].account_id]))
    assert by_account.status_code == 200 and "Proxy pool egress" in by_account.content.decode()


def test_matches_of_a_quarantined_indicator_carry_the_over_match_warning(web, alerts, client_for, settings):
    settings.MDX_MATCH_QUARANTINE_THRESHOLD = 250
    html = client_for(web.reviewer).get(reverse("web:alert", args=[alerts["low"].pk])).content.decode()
    assert "over-match: this indicator hit more than 250 accounts and raises no alerts until reviewed" in html
    assert "812 accounts matched" in html


def test_a_reviewer_releases_a_quarantined_indicator_from_its_page(web, alerts, client_for):
    from indicators.models import IndicatorMatchState
    from sharing.models import AuditEvent

    state = IndicatorMatchState.objects.get(status="quarantined")
    url = reverse("web:object-detail", args=[state.indicator_id])
    assert 'data-testid="release"' not in client_for(web.viewer).get(url).content.decode()
    assert (
        client_for(web.viewer).post(reverse("web:object-release", args=[state.indicator_id])).status_code
        == 403
    )
    page = client_for(web.reviewer).get(url).content.decode()
    assert 'data-testid="release"' in page and "Quarantined" in page
    client_for(web.reviewer).post(reverse("web:object-release", args=[state.indicator_id]))
    state.refresh_from_db()
    assert state.status == "released"
    assert AuditEvent.objects.filter(action="indicator.release", target_id=state.indicator.stix_id).exists()
    again = client_for(web.reviewer).post(
        reverse("web:object-release", args=[state.indicator_id]), follow=True
    )
    assert "not quarantined" in again.content.decode()


def test_viewers_see_no_decision_buttons_reviewers_do(web, alerts, client_for):
    url = reverse("web:alert", args=[alerts["high"].pk])
    viewer_html = client_for(web.viewer).get(url).content.decode()
    assert ">Confirm</button>" not in viewer_html
    reviewer_html = client_for(web.reviewer).get(url).content.decode()
    for label in ("Confirm", "False positive", "Dismiss"):
        assert f">{label}</button>" in reviewer_html


# --- Decisions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "status"),
    [("confirm", "confirmed"), ("false-positive", "false-positive"), ("dismiss", "triaged")],
)
def test_a_reviewer_decision_changes_the_alert_and_is_audited(web, alerts, client_for, decision, status):
    alert = alerts["high"]
    response = client_for(web.reviewer).post(
        reverse("web:alert-decide", args=[alert.pk]), {"decision": decision, "note": "  checked the logs "}
    )
    assert response.status_code == 302 and response["Location"] == reverse("web:alert", args=[alert.pk])
    alert.refresh_from_db()
    assert alert.status == status and alert.reviewer == web.reviewer
    assert alert.decision_note == "checked the logs" and alert.reviewed_at is not None
    event = AuditEvent.objects.get(action="alert.decide")
    assert event.actor_user == web.reviewer and event.target_type == "alert"
    assert event.target_id == str(alert.pk) and event.details["status"] == status
    page = client_for(web.reviewer).get(response["Location"]).content.decode()
    assert "checked the logs" in page


def test_admins_decide_too(web, alerts, client_for):
    alert = alerts["mid"]
    client_for(web.admin_user).post(reverse("web:alert-decide", args=[alert.pk]), {"decision": "confirm"})
    alert.refresh_from_db()
    assert alert.status == "confirmed" and alert.reviewer == web.admin_user


def test_viewers_cannot_decide(web, alerts, client_for):
    alert = alerts["high"]
    response = client_for(web.viewer).post(
        reverse("web:alert-decide", args=[alert.pk]), {"decision": "confirm"}
    )
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "new" and alert.reviewer is None
    assert not AuditEvent.objects.filter(action="alert.decide").exists()


def test_an_unknown_decision_changes_nothing(web, alerts, client_for):
    alert = alerts["high"]
    client = client_for(web.reviewer)
    response = client.post(reverse("web:alert-decide", args=[alert.pk]), {"decision": "withdrawn"})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "new" and not AuditEvent.objects.filter(action="alert.decide").exists()


def test_anonymous_users_are_sent_to_sign_in(web, alerts, client):
    for url in (
        reverse("web:alerts"),
        reverse("web:alert", args=[alerts["high"].pk]),
        reverse("web:account", args=[alerts["high"].account_id]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("web:alert-decide", args=[alerts["high"].pk]), {"decision": "confirm"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert Alert.objects.get(pk=alerts["high"].pk).status == "new"


def test_the_decision_form_enforces_csrf(web, alerts):
    client = Client(enforce_csrf_checks=True)
    client.force_login(web.reviewer)
    html = client.get(reverse("web:alert", args=[alerts["high"].pk])).content.decode()
    assert "csrfmiddlewaretoken" in html
    response = client.post(reverse("web:alert-decide", args=[alerts["high"].pk]), {"decision": "confirm"})
    assert response.status_code == 403
    assert Alert.objects.get(pk=alerts["high"].pk).status == "new"


def test_alerts_are_in_the_navigation(web, client_for):
    html = client_for(web.viewer).get(reverse("home")).content.decode()
    assert f'href="{reverse("web:alerts")}"' in html
