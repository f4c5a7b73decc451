"""Member side of feedback: what a report may carry, built from this node's decided alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from indicators.models import Account, Alert, Match
from sharing.feedback_outbound import FeedbackError, count_bucket, feedback_prepare, feedback_send
from sharing.models import FeedbackReport
from sharing.services import GrantSpec, collection_create, objects_publish, organisation_create
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed(settings):
    """An indicator that arrived through a subscription, matched on three local accounts."""
    from sharing.federation import subscription_add

    operator = organisation_create(name="Node Operator", kind="hub")
    mirror = collection_create(title="Mirror", grants=[GrantSpec(operator, True, False)])
    subscription = subscription_add(
        name="Consortium",
        discovery_url="http://127.0.0.1:9/taxii2/",
        collection_id="6b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b",
        into=str(mirror.pk),
        token="t0ken",
        inbox="7c1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b",
        identity="identity--8d1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b",
    )
    indicator = make_indicator()
    [stored], _ = objects_publish(
        collection=mirror, objects=[indicator], submitted_by=subscription.organisation
    )
    accounts = []
    for i, status in enumerate([Alert.Status.CONFIRMED, Alert.Status.CONFIRMED, Alert.Status.FALSE_POSITIVE]):
        account = Account.objects.create(
            account_id=f"acct-secret-{i}", pseudonym=f"{i:064x}", created_at=datetime(2026, 9, 1, tzinfo=UTC),
            changed_at=datetime(2026, 9, 1, tzinfo=UTC),
        )  # fmt: skip
        Match.objects.create(
            indicator=stored, account=account, kind="network-range", weight=0.5,
            matched_at=datetime(2026, 11, 10 + i, 15, 42, 7, tzinfo=UTC),
        )  # fmt: skip
        Alert.objects.create(account=account, score=0.9, status=status)
        accounts.append(account)
    return indicator["id"], subscription, accounts


def test_a_report_is_a_count_only_amber_strict_sighting_and_an_optional_opinion(subscribed):
    stix_id, subscription, accounts = subscribed
    report = feedback_prepare(
        stix_id=stix_id, review_state="confirmed", opinion="agree", explanation="Suspended."
    )
    objects = json.loads(report.payload)["objects"]
    sighting, opinion = objects
    assert sighting["count"] == 2 and sighting["mdx_count_bucket"] == "2-9"
    assert sighting["mdx_review_state"] == "confirmed" and sighting["mdx_match_kind"] == "network-range"
    assert (sighting["first_seen"], sighting["last_seen"]) == ("2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z")
    assert sighting["sighting_of_ref"] == stix_id and "observed_data_refs" not in sighting
    assert sighting["object_marking_refs"] == ["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]
    assert sighting["where_sighted_refs"] == [subscription.member_identity] == [sighting["created_by_ref"]]
    assert opinion["opinion"] == "agree" and opinion["object_refs"] == [stix_id]
    assert opinion["explanation"] == "Suspended."
    for account in accounts:
        assert account.account_id not in report.payload and account.pseudonym not in report.payload
    assert report.status == FeedbackReport.Status.DRAFT  # nothing left the node


def test_false_positives_are_reported_as_such_and_bucket_policy_hides_the_exact_count(subscribed, settings):
    stix_id, _, _ = subscribed
    report = feedback_prepare(stix_id=stix_id, review_state="false-positive", opinion="disagree")
    sighting = json.loads(report.payload)["objects"][0]
    assert (sighting["count"], sighting["mdx_review_state"]) == (1, "false-positive")
    settings.MDX_FEEDBACK_COUNT = "bucket"
    for n in range(3, 15):  # 14 confirmed accounts in all: bucket 10-99, reported as 10
        account = Account.objects.create(
            account_id=f"more-{n}", pseudonym=f"{n:064x}", created_at=datetime(2026, 9, 1, tzinfo=UTC),
            changed_at=datetime(2026, 9, 1, tzinfo=UTC),
        )  # fmt: skip
        Match.objects.create(
            indicator=Match.objects.first().indicator, account=account, kind="network-range", weight=0.5,
            matched_at=datetime(2026, 11, 12, tzinfo=UTC),
        )  # fmt: skip
        Alert.objects.create(account=account, score=0.9, status=Alert.Status.CONFIRMED)
    sighting = json.loads(feedback_prepare(stix_id=stix_id, review_state="confirmed").payload)["objects"][0]
    assert (sighting["count"], sighting["mdx_count_bucket"]) == (10, "10-99")


@pytest.mark.parametrize(
    "explanation, problem",
    [
        ("Owner is hydra.op@example.org", "e-mail address"),
        ("Called +44 20 7946 0321 to verify", "long number"),
        ("see account acct-secret-1 for details", "names one of this node's accounts"),
        ("pseudonym " + "ab" * 32, "hash or pseudonym"),
    ],
)
def test_an_explanation_carrying_account_data_is_refused(subscribed, explanation, problem):
    stix_id, _, _ = subscribed
    with pytest.raises(FeedbackError, match=problem):
        feedback_prepare(stix_id=stix_id, review_state="confirmed", opinion="agree", explanation=explanation)
    assert not FeedbackReport.objects.exists()


def test_reports_need_a_source_hub_decided_alerts_and_valid_choices(subscribed, db):
    stix_id, subscription, _ = subscribed
    with pytest.raises(FeedbackError, match="did not arrive through a subscription"):
        feedback_prepare(stix_id="indicator--9e1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b", review_state="confirmed")
    with pytest.raises(FeedbackError, match="no alert raised by"):
        feedback_prepare(stix_id=stix_id, review_state="inconclusive")
    with pytest.raises(FeedbackError, match="unknown review state"):
        feedback_prepare(stix_id=stix_id, review_state="maybe")
    with pytest.raises(FeedbackError, match="unknown opinion"):
        feedback_prepare(stix_id=stix_id, review_state="confirmed", opinion="love-it")
    with pytest.raises(FeedbackError, match="goes with an opinion"):
        feedback_prepare(stix_id=stix_id, review_state="confirmed", explanation="no verdict")
    report = feedback_prepare(stix_id=stix_id, review_state="confirmed")
    subscription.inbox_collection_id = None
    subscription.save()
    report = FeedbackReport.objects.get(pk=report.pk)
    with pytest.raises(FeedbackError, match="names no inbox collection"):
        feedback_send(report=report)


def test_count_buckets_follow_the_sighting_context_vocabulary():
    assert [count_bucket(n) for n in (0, 1, 2, 9, 10, 99, 100, 999, 1000, 10**6)] == [
        None, "1", "2-9", "2-9", "10-99", "10-99", "100-999", "100-999", "1000+", "1000+",
    ]  # fmt: skip


def test_the_rest_api_prepares_and_shows_reports_for_the_operator_only(subscribed, client):
    from sharing.models import Organisation
    from sharing.services import token_issue

    stix_id, subscription, accounts = subscribed
    operator = Organisation.objects.get(name="Node Operator")
    admin = {"HTTP_AUTHORIZATION": f"Bearer {token_issue(organisation=operator, scopes='admin')[1]}"}
    partner = organisation_create(name="Partner Lab", kind="lab")
    outsider = {"HTTP_AUTHORIZATION": f"Bearer {token_issue(organisation=partner, scopes='admin')[1]}"}
    body = {"indicator_id": stix_id, "review_state": "confirmed", "opinion": "agree"}

    assert (
        client.post(
            "/api/v1/feedback/reports/", body, content_type="application/json", **outsider
        ).status_code
        == 403
    )
    created = client.post("/api/v1/feedback/reports/", body, content_type="application/json", **admin)
    assert created.status_code == 201, created.content
    report = created.json()
    assert report["status"] == "draft" and report["count"] == 2
    assert json.loads(report["payload"])["objects"][0]["sighting_of_ref"] == stix_id
    assert client.get(f"/api/v1/feedback/reports/{report['id']}/", **admin).json() == report
    assert [r["id"] for r in client.get("/api/v1/feedback/reports/", **admin).json()] == [report["id"]]
    assert client.get(f"/api/v1/feedback/reports/{report['id']}/", **outsider).status_code == 403
    assert client.get("/api/v1/feedback/reports/999999/", **admin).status_code == 404

    refused = client.post(
        "/api/v1/feedback/reports/",
        {**body, "explanation": f"see {accounts[0].account_id}"},
        content_type="application/json",
        **admin,
    )
    assert refused.status_code == 400 and "accounts" in refused.json()["detail"]
    bad = client.post(
        "/api/v1/feedback/reports/",
        {**body, "review_state": "maybe"},
        content_type="application/json",
        **admin,
    )
    assert bad.status_code == 400
    assert FeedbackReport.objects.count() == 1
