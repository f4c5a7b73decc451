"""Token management over REST: admin scope, own organisation only, audited."""

from __future__ import annotations

from rest_framework.test import APIClient

from sharing.models import ApiToken, AuditEvent


def test_admin_lists_own_organisations_tokens_without_digests(cast):
    response = cast.alice_admin.client().get("/api/v1/tokens/")
    assert response.status_code == 200
    rows = response.json()
    assert {r["prefix"] for r in rows} == {
        cast.alice.token.prefix,
        cast.alice_ro.token.prefix,
        cast.alice_admin.token.prefix,
    }
    assert all("digest" not in r and "token" not in r for r in rows)
    assert cast.alice.token.digest not in response.content.decode()
    ro = next(r for r in rows if r["prefix"] == cast.alice_ro.token.prefix)
    assert ro["scopes"] == ["read"] and ro["revoked_at"] is None and ro["is_active"] is True
    assert set(ro) >= {"name", "expires_at", "last_used_at", "last_used_ip", "allowed_cidrs"}


def test_non_admin_tokens_get_403_on_every_token_endpoint(cast):
    client = cast.alice.client()
    assert client.get("/api/v1/tokens/").status_code == 403
    assert client.post("/api/v1/tokens/", {"scopes": ["read"]}, format="json").status_code == 403
    response = client.post(f"/api/v1/tokens/{cast.alice_ro.token.prefix}/revoke/")
    assert response.status_code == 403
    assert "'admin' scope" in response.json()["detail"]


def test_issue_returns_the_plaintext_once_and_it_authenticates(cast):
    response = cast.alice_admin.client().post(
        "/api/v1/tokens/",
        {"scopes": ["read"], "name": "siem pull", "expires_days": 30, "allowed_cidrs": ["127.0.0.1/32"]},
        format="json",
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token"].startswith(body["prefix"])
    assert body["scopes"] == ["read"] and body["name"] == "siem pull"
    assert body["allowed_cidrs"] == ["127.0.0.1/32"] and body["expires_at"]
    token = ApiToken.objects.get(prefix=body["prefix"])
    assert token.organisation == cast.alice.org
    assert body["token"] not in token.digest
    new = APIClient()
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert new.get("/api/v1/objects/").status_code == 200
    listed = cast.alice_admin.client().get("/api/v1/tokens/").json()
    assert all("token" not in r for r in listed)
    event = AuditEvent.objects.get(action="token.issue", target_id=body["prefix"])
    assert event.actor_token_id == cast.alice_admin.token.pk


def test_issue_rejects_bad_input_with_400(cast):
    client = cast.alice_admin.client()
    for payload, field in (
        ({"scopes": ["root"]}, "unknown scope"),
        ({"scopes": []}, "at least one scope"),
        ({"scopes": ["read"], "expires_days": 0}, "expires_days"),
        ({"scopes": ["read"], "expires_days": "soon"}, "expires_days"),
        ({"scopes": ["read"], "allowed_cidrs": ["not-a-cidr"]}, "not-a-cidr"),
        ({}, "scopes"),
    ):
        response = client.post("/api/v1/tokens/", payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["detail"], (payload, response.json())
    response = client.post("/api/v1/tokens/", "{oops", content_type="application/json")
    assert response.status_code == 400


def test_revoke_stops_the_token_from_authenticating(cast):
    response = cast.alice_admin.client().post(f"/api/v1/tokens/{cast.alice.token.prefix}/revoke/")
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None and response.json()["is_active"] is False
    refused = cast.alice.client().get("/api/v1/objects/")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "token revoked"}
    assert AuditEvent.objects.filter(action="token.revoke", target_id=cast.alice.token.prefix).count() == 1


def test_revoking_another_organisations_token_is_404(cast):
    response = cast.alice_admin.client().post(f"/api/v1/tokens/{cast.bob.token.prefix}/revoke/")
    assert response.status_code == 404
    cast.bob.token.refresh_from_db()
    assert cast.bob.token.revoked_at is None
    assert cast.alice_admin.client().post("/api/v1/tokens/nope/revoke/").status_code == 404


def test_admins_never_see_other_organisations_tokens(cast):
    prefixes = {r["prefix"] for r in cast.bob_admin.client().get("/api/v1/tokens/").json()}
    assert prefixes == {cast.bob.token.prefix, cast.bob_admin.token.prefix}
