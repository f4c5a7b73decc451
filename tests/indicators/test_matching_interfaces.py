"""Thin interfaces over matching: management commands and the admin-only REST endpoints."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from indicators import matching_service as ms
from indicators.models import Alert, IndicatorMatchState, Match, MatchJob
from tests.indicators.matching_helpers import publish_indicators
from tests.indicators.test_matching_service import CARD, accounts, eager_tasks, email_pattern, indicator  # noqa: F401
from tests.sharing.api.helpers import Member


@pytest.fixture
def matched(accounts):  # noqa: F811
    email, card = publish_indicators(
        [indicator(email_pattern()), indicator(f"[mdx-payment-fingerprint:value = '{CARD}']")]
    )
    ms.indicator_match(email.pk)
    ms.indicator_match(card.pk)
    return accounts, email, card


def test_export_matches_writes_one_json_object_per_match(matched):
    account_pks, email, _ = matched
    out = io.StringIO()
    call_command("export_matches", "--format", "jsonl", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == Match.objects.count() == 4
    assert set(lines[0]) == {
        "indicator_id",
        "indicator_modified",
        "account_id",
        "kind",
        "weight",
        "matched_at",
    }
    email_rows = [row for row in lines if row["indicator_id"] == email.stix_id]
    assert {row["account_id"] for row in email_rows} == {"acct-3", "acct-4"}
    assert email_rows[0]["indicator_modified"] == "2026-11-23T00:00:00Z"


def test_run_matching_full_runs_every_active_indicator_with_a_progress_bar(accounts):  # noqa: F811
    publish_indicators([indicator(email_pattern()), indicator(f"[mdx-payment-fingerprint:value = '{CARD}']")])
    out, err = io.StringIO(), io.StringIO()
    call_command("run_matching", "--full", stdout=out, stderr=err)
    assert "4 match(es)" in out.getvalue()
    assert "1/1" in err.getvalue()
    assert Match.objects.count() == 4
    call_command("run_matching", "--full", stdout=io.StringIO(), stderr=io.StringIO())
    assert Match.objects.count() == 4


def test_run_matching_incremental_runs_pending_indicators_and_changed_accounts(accounts):  # noqa: F811
    [obj] = publish_indicators([indicator(email_pattern())])
    IndicatorMatchState.objects.get_or_create(indicator=obj)  # publishing queues it as pending
    out = io.StringIO()
    call_command("run_matching", stdout=out, stderr=io.StringIO())
    assert IndicatorMatchState.objects.get(indicator=obj).status == "done"
    assert Match.objects.count() == 2
    assert MatchJob.objects.filter(label__contains="incremental").count() == 1
    call_command("run_matching", stdout=io.StringIO(), stderr=io.StringIO())
    assert MatchJob.objects.filter(label__contains="incremental").count() == 1  # nothing changed since


# --- REST ------------------------------------------------------------------------------------------


@pytest.fixture
def tokens(db, make_org):
    from sharing.services import token_issue

    operator = make_org("Node Operator", "hub", trusted=True)  # node-private data: operator tokens

    def member(scopes: str) -> Member:
        token, plaintext = token_issue(organisation=operator, scopes=scopes)
        return Member(operator, token, plaintext)

    return member("admin"), member("read,write")


def test_matches_and_alerts_need_the_admin_scope(matched, tokens):
    _, reader = tokens
    for url in ("/api/v1/matches/", "/api/v1/alerts/", f"/api/v1/alerts/{Alert.objects.first().pk}/"):
        response = reader.client().get(url)
        assert response.status_code == 403, url
        assert "admin" in response.json()["detail"]
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/alerts/").status_code == 401


def test_match_list_filters_by_indicator_and_pages(matched, tokens):
    _, email, _ = matched
    admin, _ = tokens
    response = admin.client().get("/api/v1/matches/", {"indicator": email.stix_id, "page_size": 1})
    body = response.json()
    assert response.status_code == 200 and len(body["results"]) == 1 and body["next"]
    second = admin.client().get(body["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    ids = {r["account_id"] for r in body["results"] + second["results"]}
    assert ids == {"acct-3", "acct-4"}
    assert body["results"][0]["evidence"]["lookups"][0]["table"] == "account_identifiers"


def test_alert_list_filters_and_orders_by_score(matched, tokens):
    admin, _ = tokens
    body = admin.client().get("/api/v1/alerts/", {"min_score": "0.8"}).json()
    scores = [a["score"] for a in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(s >= 0.8 for s in scores)
    assert len(admin.client().get("/api/v1/alerts/", {"status": "new"}).json()["results"]) == 3
    assert admin.client().get("/api/v1/alerts/", {"status": "nope"}).status_code == 400
    paged = admin.client().get("/api/v1/alerts/", {"page_size": 2}).json()
    rest = admin.client().get(paged["next"]).json()
    assert len(paged["results"]) + len(rest["results"]) == 3


def test_alert_detail_and_decision(matched, tokens):
    account_pks, *_ = matched
    admin, _ = tokens
    alert = Alert.objects.get(account_id=account_pks[4])
    detail = admin.client().get(f"/api/v1/alerts/{alert.pk}/").json()
    assert len(detail["matches"]) == 2
    response = admin.client().post(
        f"/api/v1/alerts/{alert.pk}/decision/", {"status": "confirmed", "note": "same card"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "confirmed"
    alert.refresh_from_db()
    assert (alert.status, alert.decision_note) == ("confirmed", "same card") and alert.reviewed_at
    bad = admin.client().post(f"/api/v1/alerts/{alert.pk}/decision/", {"status": "new"}, format="json")
    assert bad.status_code == 400
    assert admin.client().get("/api/v1/alerts/999999/").status_code == 404


def test_run_matching_async_enqueues_the_retro_hunt(accounts):  # noqa: F811
    publish_indicators([indicator(email_pattern())])
    out = io.StringIO()
    call_command("run_matching", "--full", "--async", stdout=out)  # eager here: runs at once
    assert "Enqueued a full matching run" in out.getvalue()
    assert Match.objects.count() == 2


@pytest.mark.django_db
def test_a_partner_organisations_admin_token_gets_no_matches_or_alerts(alice_lab):
    from rest_framework.test import APIClient

    from sharing.services import token_issue

    _, plaintext = token_issue(organisation=alice_lab, scopes="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    for url in ("/api/v1/matches/", "/api/v1/alerts/"):
        response = api.get(url)
        assert response.status_code == 403 and "node-private" in response.json()["detail"], url


def test_match_states_list_quarantined_versions_and_release_them_audited(matched, tokens):
    from sharing.models import AuditEvent

    _, email, card = matched
    admin, reader = tokens
    IndicatorMatchState.objects.filter(indicator=card).update(status=IndicatorMatchState.Status.QUARANTINED)
    api = admin.client()
    listed = api.get("/api/v1/match-states/", {"status": "quarantined"}).json()["results"]
    assert [(s["indicator_id"], s["status"]) for s in listed] == [(card.stix_id, "quarantined")]
    assert api.get("/api/v1/match-states/", {"status": "stuck"}).status_code == 400
    state_id = listed[0]["id"]
    assert reader.client().post(f"/api/v1/match-states/{state_id}/release/").status_code == 403

    released = api.post(f"/api/v1/match-states/{state_id}/release/")
    assert released.status_code == 200 and released.json()["status"] == "released"
    event = AuditEvent.objects.get(action="indicator.release")
    assert event.target_id == card.stix_id and event.details["accounts"] == 2
    assert Alert.objects.filter(account__matches__indicator=card).count() == 2

    again = api.post(f"/api/v1/match-states/{state_id}/release/")
    assert again.status_code == 409 and "not quarantined" in again.json()["detail"]
    assert api.post("/api/v1/match-states/999999/release/").status_code == 404
    email_state = IndicatorMatchState.objects.get(indicator=email)
    assert api.post(f"/api/v1/match-states/{email_state.pk}/release/").status_code == 409
    assert AuditEvent.objects.filter(action="indicator.release").count() == 1
