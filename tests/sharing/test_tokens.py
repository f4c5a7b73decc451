"""API tokens: format, hashed storage, expiry, revocation, scopes, CIDR allowlist, last use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sharing.models import ApiToken, AuditEvent
from sharing.services import ServiceError, TokenRejected, token_authenticate, token_issue, token_revoke
from sharing.tokens import TOKEN_RE, address_allowed, token_digest

pytestmark = pytest.mark.django_db


def test_issued_token_has_recognisable_format_and_enough_entropy(alice_lab):
    tokens = {token_issue(organisation=alice_lab, scopes="read")[1] for _ in range(50)}
    assert len(tokens) == 50
    for plaintext in tokens:
        assert TOKEN_RE.match(plaintext)
        assert plaintext.startswith("mdx_") and not plaintext.startswith("-")
        # 43 url-safe base64 characters carry 258 bits; at least 32 bytes of entropy.
        assert len(plaintext[len("mdx_12345678_") :]) == 43


def test_plaintext_appears_nowhere_in_the_database(alice_lab):
    token, plaintext = token_issue(organisation=alice_lab, scopes="read,write")
    secret = plaintext[len(token.prefix) + 1 :]
    assert token.digest == token_digest(plaintext)
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted}")
            for row in cursor.fetchall():
                dumped = " ".join(str(v) for v in row)
                assert plaintext not in dumped, table
                assert secret not in dumped, table


def test_valid_token_authenticates_and_records_last_use(alice_lab):
    token, plaintext = token_issue(organisation=alice_lab, scopes="read")
    found = token_authenticate(plaintext=plaintext, ip_address="192.0.2.10")
    assert found.pk == token.pk
    token.refresh_from_db()
    assert token.last_used_ip == "192.0.2.10"
    assert token.last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # right prefix, wrong secret
        lambda t: "mdx_00000000_" + t.rsplit("_", 1)[-1],  # unknown prefix
        lambda t: "",
        lambda t: "not-a-token",
    ],
)
def test_wrong_tokens_are_rejected(alice_lab, mangle):
    _, plaintext = token_issue(organisation=alice_lab, scopes="read")
    with pytest.raises(TokenRejected, match="invalid token"):
        token_authenticate(plaintext=mangle(plaintext), ip_address="192.0.2.1")


def test_expired_token_is_rejected(alice_lab):
    token, plaintext = token_issue(organisation=alice_lab, scopes="read", expires_days=1)
    assert token_authenticate(plaintext=plaintext, ip_address=None)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(TokenRejected, match="expired"):
        token_authenticate(plaintext=plaintext, ip_address=None)


def test_revoked_token_is_rejected_and_revocation_is_audited(alice_lab):
    token, plaintext = token_issue(organisation=alice_lab, scopes="read")
    token_revoke(token=token)
    with pytest.raises(TokenRejected, match="revoked"):
        token_authenticate(plaintext=plaintext, ip_address=None)
    assert AuditEvent.objects.filter(action="token.revoke", target_id=token.prefix).count() == 1


def test_cidr_allowlist_is_enforced(alice_lab):
    _, plaintext = token_issue(
        organisation=alice_lab, scopes="read", allowed_cidrs="198.51.100.0/24, 2001:db8::/32"
    )
    assert token_authenticate(plaintext=plaintext, ip_address="198.51.100.77")
    assert token_authenticate(plaintext=plaintext, ip_address="2001:db8::5")
    assert token_authenticate(plaintext=plaintext, ip_address="::ffff:198.51.100.9")
    for outside in ("203.0.113.5", "2001:db9::1", None):
        with pytest.raises(TokenRejected, match="address"):
            token_authenticate(plaintext=plaintext, ip_address=outside)


def test_scopes_are_validated_and_admin_implies_the_others(alice_lab):
    reader, _ = token_issue(organisation=alice_lab, scopes="read")
    assert reader.has_scope("read") and not reader.has_scope("write") and not reader.has_scope("admin")
    admin, _ = token_issue(organisation=alice_lab, scopes=["admin"])
    assert admin.has_scope("write") and admin.has_scope("read")
    with pytest.raises(ServiceError, match="unknown scope 'delete'"):
        token_issue(organisation=alice_lab, scopes="read,delete")
    with pytest.raises(ServiceError, match="at least one scope"):
        token_issue(organisation=alice_lab, scopes=" , ")


def test_bad_cidr_and_expiry_are_refused(alice_lab):
    with pytest.raises(ServiceError, match="not an IP network"):
        token_issue(organisation=alice_lab, scopes="read", allowed_cidrs="10.0.0.0/33")
    with pytest.raises(ServiceError, match="expiry"):
        token_issue(organisation=alice_lab, scopes="read", expires_days=0)
    assert ApiToken.objects.count() == 0


def test_address_allowed_without_allowlist_accepts_anything():
    assert address_allowed(None, [])
    assert address_allowed("203.0.113.1", [])
