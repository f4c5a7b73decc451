"""REST: subscription health for the node operator's admin tokens only; the token never appears."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sharing import tasks
from sharing.federation import subscription_add
from sharing.models import AuditEvent
from sharing.services import token_issue

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.sharing.federation.urls")]

SECRET = "mdx_abcdef12_ThisRemoteTokenMustNeverBeShownByTheApi000000000"


def client_for(org, scopes: str) -> APIClient:
    _, plaintext = token_issue(organisation=org, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def operator(make_org):
    return make_org("Node Operator", "hub", trusted=True)


@pytest.fixture
def sub(fed_cast):
    return subscription_add(
        name="Upstream Hub",
        discovery_url="https://hub.example.org/taxii2/",
        collection_id="4b0e6c1d-9a7f-4e2b-8c3d-1f2a3b4c5d6e",
        into=str(fed_cast.mirror.pk),
        token=SECRET,
        review=True,
    )


def test_the_operator_lists_subscriptions_with_their_health_and_never_the_token(operator, sub):
    response = client_for(operator, "admin").get("/api/v1/subscriptions/")
    assert response.status_code == 200
    [row] = response.json()
    assert row["id"] == sub.pk and row["name"] == "Upstream Hub"
    assert row["collection"] == {"id": str(sub.collection_id), "title": "Local mirror"}
    assert row["organisation"] == "Upstream Hub" and row["review"] is True
    assert row["token_source"] == "encrypted"
    for field in ("last_success_at", "last_error", "last_error_at", "consecutive_failures"):
        assert field in row
    assert row["objects_received"] == 0 and row["cursor"] == "" and row["next_poll_at"]
    assert row["is_polling"] is False
    assert SECRET not in response.content.decode() and sub.token_ciphertext not in response.content.decode()
    assert "token_ciphertext" not in row


def test_the_operator_reads_one_subscription(operator, sub):
    client = client_for(operator, "admin")
    response = client.get(f"/api/v1/subscriptions/{sub.pk}/")
    assert response.status_code == 200 and response.json()["name"] == "Upstream Hub"
    assert SECRET not in response.content.decode()
    assert client.get("/api/v1/subscriptions/999999/").status_code == 404
    assert client.get("/api/v1/subscriptions/abc/").status_code == 404


@pytest.mark.parametrize(
    "who, scopes, status",
    [
        ("operator", "read,write", 403),  # not the admin scope
        ("lab", "admin", 403),  # an admin token, but of a member organisation
        ("source", "admin", 403),  # the organisation standing for the remote hub
    ],
)
def test_anyone_but_the_operators_admin_tokens_is_refused(operator, sub, alice_lab, who, scopes, status):
    org = {"operator": operator, "lab": alice_lab, "source": sub.organisation}[who]
    client = client_for(org, scopes)
    assert client.get("/api/v1/subscriptions/").status_code == status
    assert client.get(f"/api/v1/subscriptions/{sub.pk}/").status_code == status
    assert client.post(f"/api/v1/subscriptions/{sub.pk}/poll/").status_code == status


def test_without_a_token_the_answer_is_401(sub):
    assert APIClient().get("/api/v1/subscriptions/").status_code == 401


def test_poll_now_enqueues_a_forced_poll_after_commit(
    operator, sub, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(tasks.poll_subscription, "delay", lambda pk, **kw: queued.append((pk, kw)))
    client = client_for(operator, "admin")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/subscriptions/{sub.pk}/poll/")

    assert response.status_code == 202 and response.json() == {"id": sub.pk, "queued": True}
    assert queued == [(sub.pk, {"force": True})]
    assert AuditEvent.objects.filter(action="subscription.poll", target_id=str(sub.pk)).count() == 1
    assert client.post("/api/v1/subscriptions/999999/poll/").status_code == 404


def test_the_admin_shows_subscriptions_without_the_token(admin_client, sub):
    changelist = admin_client.get("/admin/sharing/subscription/")
    assert changelist.status_code == 200 and "Upstream Hub" in changelist.content.decode()
    change = admin_client.get(f"/admin/sharing/subscription/{sub.pk}/change/")
    assert change.status_code == 200
    page = change.content.decode()
    assert sub.token_ciphertext not in page and SECRET not in page
