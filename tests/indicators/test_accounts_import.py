"""Local account import (DOMAIN.md §4.0): service, CLI, REST endpoint and the demo generator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from indicators import hashing
from indicators.accounts import AccountImportError, accounts_import
from indicators.demo_accounts import DEMO_CLUSTER, demo_accounts_generate
from indicators.hashing import Keyring
from indicators.matching.plan import ip_to_range
from indicators.models import (
    Account,
    AccountApiKey,
    AccountClient,
    AccountIdentifier,
    AccountIp,
    AccountLshBand,
    AccountPayment,
    AccountPromptSignature,
    AccountTiming,
)

ROOT = Path(__file__).resolve().parents[2]
KEYRING = Keyring.for_tests()
KEY = KEYRING.key()
ATTRIBUTE_MODELS = (
    AccountIdentifier,
    AccountPayment,
    AccountIp,
    AccountApiKey,
    AccountClient,
    AccountPromptSignature,
    AccountLshBand,
    AccountTiming,
)
PAR = "V0010013018000000000000000001"
PAN = "4111 1111 1111 1111"
API_KEY = "sk-test-0123456789abcdef0123456789abcdef"
HEX = "ab" * 32


def account(account_id: str = "acct-0001", **fields) -> dict:
    return {"account_id": account_id, "created_at": "2026-09-14T10:02:00Z", **fields}


def jsonl(*accounts: dict | str) -> list[str]:
    return [a if isinstance(a, str) else json.dumps(a) for a in accounts]


def run(*accounts: dict | str, **kwargs):
    return accounts_import(jsonl(*accounts), keyring=KEYRING, **kwargs)


def full_account(account_id: str = "acct-0001") -> dict:
    """The §4.0 example with every attribute list filled."""
    minhash = hashing.keyed_minhash(
        KEY, hashing.shingles(hashing.normalize_prompt("write a function that sorts"))
    )
    return account(
        account_id,
        status="active",
        tier="education-program",
        org_category="university",
        access_channel="first-party-api",
        signup_country="US",
        identifiers=[
            {"type": "email", "value": "John.Smith+x@gmail.com"},
            {"type": "phone", "value": "020 7946 0018", "region": "GB"},
            {"type": "email-canonical", "key_id": "mdx-2026q4", "hmac": HEX},
        ],
        payments=[
            {
                "basis": "par",
                "key_id": "mdx-2026q4",
                "hmac": HEX,
                "card_iin": "411111",
                "card_funding": "prepaid",
                "is_virtual": True,
                "issuer_country": "US",
            }
        ],  # fmt: skip
        ips=[
            {
                "ip": "198.51.100.7",
                "first_seen": "2026-09-14T10:02:00Z",
                "last_seen": "2026-11-01T00:00:00Z",
                "asn": 64500,
                "signup": True,
                "proxy_type": "residential",
            }
        ],  # fmt: skip
        api_keys=[{"sha256": HEX}],
        clients=[
            {
                "user_agent": "python-httpx/0.27",
                "sdk_name": "custom",
                "sdk_version": "1.0",
                "ja4": "t13d1516h2_8daaf6152771_02713d6af862",
            }
        ],  # fmt: skip
        prompt_signatures=[
            {
                "key_id": "mdx-test-0",
                "window_start": "2026-10-01T00:00:00Z",
                "window_end": "2026-10-08T00:00:00Z",
                "minhash": minhash,
                "lsh_bands": hashing.lsh_bands(minhash),
                "template_hmac": HEX,
                "capability_tags": ["agentic-coding"],
                "sample_size": 5000,
            }
        ],  # fmt: skip
        timing=[
            {
                "window_start": "2026-10-01T00:00:00Z",
                "window_end": "2026-10-08T00:00:00Z",
                "request_count": 12000,
                "iat_histogram": [1 / 16] * 16,
                "hour_of_day_histogram": [1 / 24] * 24,
                "median_iat_ms": 800.0,
                "iat_cv": 0.2,
            }
        ],  # fmt: skip
    )


def snapshot() -> dict:
    """Every account and attribute row, without surrogate keys (those change on replace)."""
    data = {
        "accounts": sorted(Account.objects.values_list("pk", "account_id", "pseudonym", "status", "tier"))
    }
    for model in ATTRIBUTE_MODELS:
        rows = model.objects.values()
        data[model.__name__] = sorted(
            repr(
                sorted(
                    (k, bytes(v) if isinstance(v, memoryview) else v)
                    for k, v in row.items()
                    if k not in ("id", "signature_id")
                )
            )
            for row in rows
        )
    return data


def database_text() -> str:
    """Every value of every row of every table, as one string (cf. test_tokens)."""
    dumped = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dumped.extend(" ".join(str(v) for v in row) for row in cursor.fetchall())
    return "\n".join(dumped)


# --- The service ---------------------------------------------------------------------------------


@pytest.mark.django_db
class TestImport:
    def test_only_account_id_and_created_at_are_required(self):
        result = run(account())
        assert (result.imported, result.created, result.updated, result.errors) == (1, 1, 0, [])
        row = Account.objects.get()
        assert row.pseudonym == hashing.account_pseudonym(KEYRING.pseudonym_key, "acct-0001")
        assert row.created_at.isoformat() == "2026-09-14T10:02:00+00:00"
        assert result.changed_account_pks == [row.pk]

    def test_the_full_example_fills_every_table(self):
        result = run(full_account())
        assert result.errors == []
        pk = Account.objects.get().pk
        counts = {m.__name__: m.objects.filter(account_id=pk).count() for m in ATTRIBUTE_MODELS}
        assert counts == {
            "AccountIdentifier": 4,  # email, email-canonical, phone, pre-hashed email-canonical
            "AccountPayment": 1,
            "AccountIp": 1,
            "AccountApiKey": 1,
            "AccountClient": 1,
            "AccountPromptSignature": 1,
            "AccountLshBand": 16,
            "AccountTiming": 1,
        }
        ip = AccountIp.objects.get()
        assert (ip.ip, ip.asn, ip.is_signup, ip.proxy_type) == ("198.51.100.7", 64500, True, "residential")
        payment = AccountPayment.objects.get()
        assert (payment.basis, payment.key_id, payment.value, payment.card_funding) == (
            "par",
            "mdx-2026q4",
            HEX,
            "prepaid",
        )
        assert AccountTiming.objects.get().hour_of_day_histogram == [1 / 24] * 24
        signature = AccountPromptSignature.objects.get()
        assert sorted(signature.bands.values_list("band_key", flat=True)) == sorted(
            hashing.lsh_bands(signature.minhash)
        )

    def test_an_email_gives_both_hashes_under_the_current_key(self):
        run(account(identifiers=[{"type": "email", "value": "John.Smith+x@gmail.com"}]))
        rows = {r.identifier_type: r for r in AccountIdentifier.objects.all()}
        assert set(rows) == {"email", "email-canonical"}
        for id_type, normalization in (
            ("email", "mdx-email-v1"),
            ("email-canonical", "mdx-email-canonical-v1"),
        ):
            assert rows[id_type].value == hashing.hash_identifier(id_type, "John.Smith+x@gmail.com", key=KEY)
            assert (rows[id_type].key_id, rows[id_type].normalization) == ("mdx-test-0", normalization)

    @pytest.mark.parametrize(
        ("identifier", "signup_country", "expected"),
        [
            ({"type": "email", "value": "  John.Smith+promo@GoogleMail.com "}, "",
             {("email", "ed38a0c12bff09400152eeea10aa56c9554308b56f07d19bf084131649b6fc43"),
              ("email-canonical", "eff348c3c5f97d74b3c9457896ea9de6aa6258448ff5a93b461ea9d8901fa5cb")}),
            ({"type": "email-canonical", "value": "Alice+x@Example.COM"}, "",
             {("email-canonical", "7224261626a706a1ecf8b827fc6dfd2ad70b7b6876dde5c0d0b5a12ac43fdd7d")}),
            ({"type": "email", "value": "bob@Bücher.example"}, "",
             {("email", "de71afeb9cfb9e015b0f60b0afb7471310bc1671b2d0299b4dccccf531898c40"),
              ("email-canonical", hashing.keyed_hash(KEY, "email-canonical", "bob@xn--bcher-kva.example"))}),
            ({"type": "phone", "value": "020 7946 0018", "region": "GB"}, "",
             {("phone", "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926")}),
            ({"type": "phone", "value": "+44 (0)20 7946 0018"}, "",
             {("phone", "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926")}),
            # No region on the identifier: the account's signup_country is the default region.
            ({"type": "phone", "value": "020 7946 0018"}, "GB",
             {("phone", "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926")}),
            ({"type": "org-domain", "value": "example.edu"}, "",
             {("org-domain", "5be82165e09e4d1aadc5db62538be6df6c78ba9e244f5b51a0df48a84ba47d1a")}),
        ],
    )  # fmt: skip
    def test_the_domain_test_vectors_survive_the_import_path(self, identifier, signup_country, expected):
        result = run(account(identifiers=[identifier], signup_country=signup_country))
        assert result.errors == []
        assert set(AccountIdentifier.objects.values_list("identifier_type", "value")) == expected
        assert set(AccountIdentifier.objects.values_list("key_id", flat=True)) == {"mdx-test-0"}

    def test_pre_hashed_values_are_kept_as_they_are_even_under_other_key_epochs(self):
        run(
            account(
                identifiers=[{"type": "device-id", "key_id": "mdx-2025q1", "hmac": HEX}],
                payments=[{"basis": "pan", "key_id": "mdx-2025q1", "hmac": HEX}],
                api_keys=[{"sha256": HEX}],
            )
        )
        identifier = AccountIdentifier.objects.get()
        assert (
            identifier.identifier_type,
            identifier.key_id,
            identifier.value,
            identifier.normalization,
        ) == (
            "device-id",
            "mdx-2025q1",
            HEX,
            "raw",
        )
        assert AccountPayment.objects.get().value == HEX
        assert AccountApiKey.objects.get().key_sha256 == HEX

    def test_raw_cards_and_api_keys_are_hashed(self):
        run(account(payments=[{"pan": PAN, "par": PAR, "card_iin": "411111"}], api_keys=[{"key": API_KEY}]))
        assert set(AccountPayment.objects.values_list("basis", "key_id", "value", "card_iin")) == {
            ("pan", "mdx-test-0", hashing.payment_hash(KEY, "pan", PAN), "411111"),
            ("par", "mdx-test-0", hashing.payment_hash(KEY, "par", PAR), "411111"),
        }
        assert AccountApiKey.objects.get().key_sha256 == hashing.api_key_fingerprint(API_KEY)

    def test_raw_values_are_hashed_under_every_key_epoch_the_node_holds(self):
        # DOMAIN §3.2: during a rotation overlap members compute the current and the previous epoch.
        keyring = Keyring(
            keys={"mdx-new": b"\x03" * 32, "mdx-old": b"\x04" * 32},
            current="mdx-new",
            pseudonym_key=b"\x01" * 32,
        )
        accounts_import(
            jsonl(account(identifiers=[{"type": "device-id", "value": "dev-1"}])), keyring=keyring
        )
        assert set(AccountIdentifier.objects.values_list("key_id", "value")) == {
            ("mdx-new", hashing.hash_identifier("device-id", "dev-1", key=b"\x03" * 32)),
            ("mdx-old", hashing.hash_identifier("device-id", "dev-1", key=b"\x04" * 32)),
        }

    def test_duplicate_identifiers_of_one_account_are_stored_once(self):
        run(
            account(
                identifiers=[
                    {"type": "email", "value": "a+1@example.com"},
                    {"type": "email", "value": "A+2@Example.com"},
                ]
            )
        )
        assert AccountIdentifier.objects.filter(identifier_type="email-canonical").count() == 1
        assert AccountIdentifier.objects.filter(identifier_type="email").count() == 2

    def test_without_a_keyring_the_import_refuses_to_run(self):
        with pytest.raises(AccountImportError, match="no keyring"):
            accounts_import(jsonl(account()), keyring=None)

    def test_bytes_lines_a_bom_and_blank_lines(self):
        lines = ["\ufeff" + json.dumps(account("a")), "", "   ", json.dumps(account("b"))]
        result = accounts_import([line.encode() for line in lines], keyring=KEYRING)
        assert (result.imported, result.errors) == (2, [])


# --- Bad lines -----------------------------------------------------------------------------------

BAD_LINES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "line: must be a JSON object, not an array"),
    ('{"account_id": "x", "created_at": "2026-09-14T10:02:00Z", "n": NaN}', "NaN is not a JSON number"),
    (account(account_id=None), "account_id: is required"),
    ({"account_id": "x"}, "created_at: is required"),
    (account(account_id=42), "account_id: must be a string, not a number"),
    (account(account_id="x" * 201), "account_id: must be at most 200 characters"),
    (account(account_id="a\x00b"), "account_id: must not contain NUL characters"),
    (account(created_at="2026-09-14T10:02:00"), "created_at: must be an RFC 3339 timestamp with a time zone"),
    (account(created_at="yesterday"), "created_at: must be an RFC 3339 timestamp with a time zone"),
    (account(status="gone"), "status: must be one of active, suspended, terminated"),
    (account(signup_country="USA"), "signup_country: must be a 2-letter country code"),
    (account(colour="blue"), "unknown field(s) colour"),
    (account(identifiers={"type": "email"}), "identifiers: must be an array, not an object"),
    (account(identifiers=["x"]), "identifiers[0]: must be a JSON object, not a string"),
    (account(identifiers=[{"type": "fax", "value": "1"}]), "identifiers[0].type: must be one of email,"),
    (account(identifiers=[{"type": "api-key", "value": "1"}]), "identifiers[0].type: must be one of"),
    (account(identifiers=[{"type": "email"}]), "identifiers[0].value: is required"),
    (
        account(identifiers=[{"type": "email", "value": "no-at-sign"}]),
        "identifiers[0].value: not a valid email address",
    ),
    (
        account(identifiers=[{"type": "phone", "value": "12"}]),
        "identifiers[0].value: not a valid phone number (no region",
    ),
    (
        account(identifiers=[{"type": "phone", "value": "020 7946", "region": "GB"}]),
        "identifiers[0].value: not a valid phone number for region GB",
    ),
    (
        account(identifiers=[{"type": "email", "value": "a@example.com", "region": "GB"}]),
        "identifiers[0].region: only applies to phone identifiers",
    ),
    (
        account(identifiers=[{"type": "email", "key_id": "mdx-2026q4", "hmac": HEX.upper()}]),
        "identifiers[0].hmac: must be 64 lowercase hex characters",
    ),
    (account(identifiers=[{"type": "email", "hmac": HEX}]), "identifiers[0].key_id: is required"),
    (
        account(identifiers=[{"type": "email", "key_id": "Bad Key", "hmac": HEX}]),
        "identifiers[0].key_id: must be a key id",
    ),
    (
        account(identifiers=[{"type": "email", "value": "a@example.com", "hmac": HEX, "key_id": "k"}]),
        "identifiers[0]: give either a raw value or a pre-hashed hmac, not both",
    ),
    (
        account(identifiers=[{"type": "email", "value": "a@example.com", "key_id": "k"}]),
        "identifiers[0].key_id: only with a pre-hashed hmac",
    ),
    (
        account(identifiers=[{"type": "email", "value": "a@example.com", "first_seen": 5}]),
        "identifiers[0].first_seen: must be an RFC 3339 timestamp",
    ),
    (
        account(payments=[{"card_iin": "411111"}]),
        "payments[0]: needs a pre-hashed hmac (with basis and key_id) or a raw pan or par",
    ),
    (
        account(payments=[{"pan": "4111 1111 1111 1112"}]),
        "payments[0].pan: not a valid PAN (12-19 digits, Luhn-valid)",
    ),
    (account(payments=[{"par": "short"}]), "payments[0].par: not a valid PAR (29 letters or digits)"),
    (account(payments=[{"key_id": "k", "hmac": HEX}]), "payments[0].basis: is required with hmac"),
    (
        account(payments=[{"basis": "par", "key_id": "k", "hmac": HEX, "card_iin": "4111"}]),
        "payments[0].card_iin: must be 6 to 8 digits",
    ),
    (
        account(payments=[{"basis": "par", "key_id": "k", "hmac": HEX, "is_virtual": "yes"}]),
        "payments[0].is_virtual: must be true or false, not a string",
    ),
    (
        account(payments=[{"basis": "par", "key_id": "k", "hmac": HEX, "card_funding": "gift"}]),
        "payments[0].card_funding: must be one of credit, debit, prepaid, unknown",
    ),
    (
        account(payments=[{"basis": "pan", "par": PAR}]),
        "payments[0].basis: does not match the raw pan/par given",
    ),
    (account(ips=[{"ip": "198.51.100.300"}]), "ips[0].ip: not an IP address or CIDR block"),
    (account(ips=[{"ip": "198.51.100.7", "asn": -1}]), "ips[0].asn: must be an integer from 0 to 4294967295"),
    (account(ips=[{"ip": "198.51.100.7", "asn": True}]), "ips[0].asn: must be an integer"),
    (
        account(ips=[{"ip": "198.51.100.7", "signup": 1}]),
        "ips[0].signup: must be true or false, not a number",
    ),
    (
        account(ips=[{"ip": "198.51.100.7", "proxy_type": "home"}]),
        "ips[0].proxy_type: must be one of residential",
    ),
    (
        account(api_keys=[{"sha256": HEX, "key": API_KEY}]),
        "api_keys[0]: give exactly one of sha256 (pre-hashed) or key (raw)",
    ),
    (account(clients=[{}]), "clients[0]: needs at least one of user_agent"),
    (account(clients=[{"ja4": ["x"]}]), "clients[0].ja4: must be a string, not an array"),
    (
        account(
            prompt_signatures=[
                {
                    "key_id": "k",
                    "window_start": "2026-10-08T00:00:00Z",
                    "window_end": "2026-10-01T00:00:00Z",
                    "minhash": [1] * 128,
                }
            ]
        ),
        "prompt_signatures[0].window_end: is before window_start",
    ),
    (
        account(
            prompt_signatures=[
                {
                    "key_id": "k",
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "minhash": [1] * 127,
                }
            ]
        ),
        "prompt_signatures[0].minhash: must have 128 values, got 127",
    ),
    (
        account(
            prompt_signatures=[
                {
                    "key_id": "k",
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "minhash": [],
                }
            ]
        ),
        "prompt_signatures[0].minhash: must have 128 values, got 0",
    ),
    (
        account(
            prompt_signatures=[
                {
                    "key_id": "k",
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "minhash": [2**32] * 128,
                }
            ]
        ),
        "prompt_signatures[0].minhash: must be an integer from 0 to 4294967295",
    ),
    (
        account(
            prompt_signatures=[
                {
                    "key_id": "k",
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "minhash": [1] * 128,
                    "lsh_bands": hashing.lsh_bands([2] * 128),
                }
            ]
        ),
        "prompt_signatures[0].lsh_bands: do not match minhash",
    ),
    (
        account(
            timing=[
                {
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "request_count": 5,
                    "iat_histogram": [0.0] * 16,
                    "hour_of_day_histogram": [0.0] * 23,
                }
            ]
        ),
        "timing[0].hour_of_day_histogram: must have 24 values, got 23",
    ),
    (
        account(
            timing=[
                {
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "request_count": 5,
                    "iat_histogram": ["a"] * 16,
                    "hour_of_day_histogram": [0.0] * 24,
                }
            ]
        ),
        "timing[0].iat_histogram: must be a finite number",
    ),
    (
        account(
            timing=[
                {
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-08T00:00:00Z",
                    "iat_histogram": [0.0] * 16,
                    "hour_of_day_histogram": [0.0] * 24,
                }
            ]
        ),
        "timing[0].request_count: is required",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("bad", "message"), BAD_LINES)
def test_a_bad_line_is_reported_with_its_number_and_skipped(bad, message):
    result = run(account("good-1"), bad, account("good-2"))
    assert len(result.errors) == 1, result.errors
    line, text = result.errors[0]
    assert line == 2
    assert message in text
    assert (result.imported, result.created) == (2, 2)
    assert set(Account.objects.values_list("account_id", flat=True)) == {"good-1", "good-2"}


@pytest.mark.django_db
def test_a_bad_attribute_skips_the_whole_line():
    result = run(account(identifiers=[{"type": "email", "value": "a@example.com"}], ips=[{"ip": "nope"}]))
    assert result.imported == 0 and len(result.errors) == 1
    assert not Account.objects.exists() and not AccountIdentifier.objects.exists()


@pytest.mark.django_db
def test_invalid_utf8_is_reported():
    result = accounts_import([json.dumps(account()).encode(), b"\xff\xfe{}"], keyring=KEYRING)
    assert result.errors == [(2, "line is not valid UTF-8")]


RAW_VALUES = {
    "email": "Zelda.Quux+farm7@example.org",
    "phone": "020 7946 0321",
    "pan": PAN,
    "par": PAR,
    "key": API_KEY,
}


@pytest.mark.django_db
def test_no_raw_identifier_appears_anywhere_in_the_database():
    run(
        account(
            signup_country="GB",
            identifiers=[
                {"type": "email", "value": RAW_VALUES["email"]},
                {"type": "phone", "value": RAW_VALUES["phone"]},
            ],
            payments=[{"pan": RAW_VALUES["pan"], "par": RAW_VALUES["par"]}],
            api_keys=[{"key": RAW_VALUES["key"]}],
        )
    )
    assert AccountIdentifier.objects.count() == 3
    dumped = database_text().lower()
    forbidden = [
        *RAW_VALUES.values(),
        "zelda.quux",  # the normalised forms too
        "zelda.quux+farm7@example.org",
        "zeldaquux",
        "+442079460321",
        "2079460321",
        "4111111111111111",
    ]
    for value in forbidden:
        assert value.lower() not in dumped, value


@pytest.mark.django_db
@pytest.mark.parametrize(
    "entry",
    [
        {"identifiers": [{"type": "email", "value": "zelda.quux@exa mple.org"}]},
        {"identifiers": [{"type": "phone", "value": "+44 20 7946 03211"}]},
        {"identifiers": [{"type": "org-domain", "value": "zelda-quux"}]},
        {"payments": [{"pan": "4111 1111 1111 1113"}]},
        {"payments": [{"par": "ZELDAQUUX"}]},
        {"identifiers": [{"type": "email", "value": "zelda.quux@example.org" + "x" * 1000}]},
    ],
)
def test_error_messages_never_echo_raw_values(entry):
    result = run(account(**entry))
    [(_, message)] = result.errors
    lowered = message.lower()
    for fragment in ("zelda", "quux", "7946", "1111", "exa mple"):
        assert fragment not in lowered, message


# --- Re-import -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_importing_the_same_file_twice_leaves_identical_data():
    lines = [full_account("a"), full_account("b"), account("c", ips=[{"ip": "2001:db8::1"}])]
    first = run(*lines)
    before = snapshot()
    changed = dict(Account.objects.values_list("account_id", "changed_at"))
    second = run(*lines)
    assert (first.created, first.updated, second.created, second.updated) == (3, 0, 0, 3)
    assert snapshot() == before
    assert sorted(first.changed_account_pks) == sorted(second.changed_account_pks)
    for account_id, changed_at in Account.objects.values_list("account_id", "changed_at"):
        assert changed_at > changed[account_id]


@pytest.mark.django_db
def test_a_changed_line_replaces_the_attributes():
    run(full_account("a"), full_account("b"))
    pk = Account.objects.get(account_id="a").pk
    other = snapshot()
    run(account("a", status="suspended", ips=[{"ip": "203.0.113.9"}]))
    row = Account.objects.get(account_id="a")
    assert (row.pk, row.status, row.tier) == (pk, "suspended", "")
    assert list(AccountIp.objects.filter(account_id=pk).values_list("ip", flat=True)) == ["203.0.113.9"]
    for model in ATTRIBUTE_MODELS:
        if model is not AccountIp:
            assert not model.objects.filter(account_id=pk).exists(), model
    # The other account is untouched.
    b = Account.objects.get(account_id="b").pk
    assert AccountIdentifier.objects.filter(account_id=b).count() == len(
        [r for r in other["AccountIdentifier"] if f"('account_id', {b})" in r]
    )


@pytest.mark.django_db
def test_a_later_line_for_the_same_account_wins():
    result = run(account("a", status="active"), account("a", status="terminated"), batch_size=10)
    assert (result.imported, result.created, result.updated) == (2, 1, 1)
    assert Account.objects.get().status == "terminated"


@pytest.mark.django_db
def test_batches_report_progress_and_notify_the_matching_engine(monkeypatch):
    import indicators.tasks

    notified: list[list[int]] = []
    monkeypatch.setattr(indicators.tasks, "accounts_changed", lambda pks: notified.append(list(pks)))
    seen: list[int] = []
    result = run(*(account(f"a{i}") for i in range(5)), "{bad", progress=seen.append, batch_size=2)
    assert [len(batch) for batch in notified] == [2, 2, 1]
    assert sorted(pk for batch in notified for pk in batch) == sorted(result.changed_account_pks)
    assert seen == [2, 4, 6]


@pytest.mark.django_db
def test_a_failing_input_stops_the_import_after_the_committed_batches():
    def lines():
        yield from jsonl(account("a"), account("b"))
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        accounts_import(lines(), keyring=KEYRING, batch_size=2)
    assert set(Account.objects.values_list("account_id", flat=True)) == {"a", "b"}


# --- IP ranges -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "stored", "probe", "outside"),
    [
        ("198.51.100.7", "198.51.100.7", "198.51.100.7", "198.51.100.8"),
        ("203.0.113.77/24", "203.0.113.0/24", "203.0.113.200", "203.0.114.0"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", "2001:db8::1", "2001:db8::2"),
        ("2001:db8:1::/48", "2001:db8:1::/48", "2001:db8:1:ffff::5", "2001:db8:2::"),
        ("::ffff:192.0.2.5", "192.0.2.5", "192.0.2.5", "::192.0.2.5"),
    ],
)
def test_ips_are_stored_for_an_indexed_range_query(given, stored, probe, outside):
    run(account(ips=[{"ip": given}]))
    row = AccountIp.objects.get()
    assert row.ip == stored
    low, high = ip_to_range(stored)
    assert (bytes(row.ip_low), bytes(row.ip_high)) == (low.to_bytes(16, "big"), high.to_bytes(16, "big"))

    def containing(address: str):
        point = ip_to_range(address)[0].to_bytes(16, "big")
        return AccountIp.objects.filter(ip_low__lte=point, ip_high__gte=point)

    assert list(containing(probe)) == [row]
    assert not containing(outside).exists()


# --- Fast path and COPY writer -------------------------------------------------------------------

ODD_TEXT = "tab\there, back\\slash, new\nline, cr\r, \\N, naïve"  # COPY's special characters
ODD_SHORT = "a\tb\\c\nd\re\\N"

VARIANTS = [
    account(),
    account(status="", tier="", signup_country="gb", org_category="university"),
    account(created_at="2026-09-14T12:02:00.123456+02:00", tier=ODD_SHORT, access_channel="x" * 40),
    account(tier=ODD_TEXT),
    account(identifiers=[{"type": "email", "value": "Bob@Bücher.example"}]),
    account(identifiers=[{"type": "email", "value": "  John.Smith+promo@GoogleMail.com "}]),
    account(
        identifiers=[{"type": "email", "value": "a@example.com"}, {"type": "email", "value": "A@example.com"}]
    ),
    account(signup_country="GB", identifiers=[{"type": "phone", "value": "020 7946 0018"}]),
    account(identifiers=[{"type": "phone", "value": "+44 (0)20 7946 0018", "region": "gb"}]),
    account(
        identifiers=[{"type": "org-domain", "value": "CS.Example.EDU.", "first_seen": "2026-09-14T10:02:00Z"}]
    ),
    account(identifiers=[{"type": "device-id", "value": ODD_TEXT, "last_seen": "2026-09-14T10:02:00+01:00"}]),
    account(identifiers=[{"type": "email-canonical", "key_id": "mdx-2026q4", "hmac": HEX}]),
    account(identifiers=[{"type": "email", "key_id": "mdx-2026q4", "hmac": ""}]),
    account(identifiers=[{"type": "phone", "value": "12"}]),
    account(identifiers=[{"type": "email", "value": "   "}]),
    account(payments=[{"pan": PAN, "par": PAR, "card_network": ODD_SHORT, "is_virtual": False}]),
    account(payments=[{"par": PAR, "card_network": ODD_TEXT}]),
    account(payments=[{"basis": "par", "par": PAR, "card_iin": "411111", "issuer_country": "us"}]),
    account(payments=[{"basis": "iban", "key_id": "k", "hmac": HEX, "instrument_type": "bank-account"}]),
    account(payments=[{"basis": "par", "par": ""}]),
    account(ips=[{"ip": " 2001:DB8::1 ", "asn": 2**32 - 1, "request_count": 2**63 - 1, "signup": True}]),
    account(
        ips=[{"ip": "::ffff:192.0.2.5", "proxy_type": "residential", "first_seen": "2026-09-14T10:02:00Z"}]
    ),
    account(ips=[{"ip": "fe80::1%eth0"}, {"ip": "203.0.113.77/24"}, {"ip": "::1.2.3.4"}]),
    account(ips=[{"ip": "198.51.100.7", "asn": 2**64}]),
    account(ips=[{"ip": "198.51.100.7", "asn": 1.0}]),
    account(api_keys=[{"key": API_KEY, "revoked_at": "2026-09-14T10:02:00Z"}, {"sha256": HEX}]),
    account(api_keys=[{"sha256": ""}]),
    account(clients=[{"user_agent": ODD_TEXT, "ja4h": "x", "request_count": 0}]),
    account(clients=[{"header_order_sha256": HEX}]),
    account(clients=[{"user_agent": " "}]),
    account(timing=[]),
    account(prompt_signatures=None),
    '{"account_id": "x", "created_at": "2026-09-14T10:02:00Z", "tier": "\\ud800"}',
    '{"account_id": "x", "account_id": "y", "created_at": "2026-09-14T10:02:00Z"}',
    '{"account_id": "x", "created_at": "2026-09-14T10:02:00Z", "ips": [{"ip": "192.0.2.1", "asn": 1e400}]}',
    "\ufeff" + json.dumps(account()),
    "",
    "\u00a0",
]


def careful_or_fast(line: str | bytes, fast: bool):
    from indicators.accounts.importer import _parse_line
    from indicators.accounts.lines import _BadLine, _Keys, _parse_careful

    try:
        if fast:
            return _parse_line(line, KEYRING, _Keys.of(KEYRING))
        return _parse_careful(line, KEYRING)
    except _BadLine as exc:
        return f"error: {exc}"


@pytest.mark.parametrize(
    "line",
    [*VARIANTS, full_account(), *(bad for bad, _ in BAD_LINES)],
    ids=lambda value: str(value)[:60],
)
def test_the_fast_path_parses_exactly_like_the_careful_path(line):
    """The fast path may give up on a line, never give another answer (rows or error)."""
    text = line if isinstance(line, str) else json.dumps(line)
    for raw in (text, text.encode()):
        assert careful_or_fast(raw, fast=True) == careful_or_fast(raw, fast=False)


def test_the_fast_path_takes_the_usual_lines():
    from indicators.accounts.fastpath import _parse_fast
    from indicators.accounts.lines import _Keys

    keys = _Keys.of(KEYRING)
    for line in demo_accounts_generate(300, seed=3):
        parsed = _parse_fast(json.loads(line), keys)  # raises _Slow if it gave up
        assert parsed == careful_or_fast(line, fast=False)


@pytest.mark.django_db
def test_odd_text_is_stored_exactly():
    """COPY text format escapes backslash, tab, newline and carriage return."""
    assert not run(
        account(
            tier=ODD_SHORT,
            identifiers=[{"type": "device-id", "value": "d", "first_seen": "2026-09-14T12:02:00.5+02:00"}],
            payments=[{"par": PAR, "card_network": ODD_SHORT}],
            clients=[{"user_agent": ODD_TEXT, "sdk_name": "\\", "ja4": "a\tb"}],
            ips=[{"ip": "2001:db8::7", "asn": 2**32 - 1, "request_count": 2**63 - 1}],
        )
    ).errors
    assert Account.objects.get().tier == ODD_SHORT
    assert AccountPayment.objects.get().card_network == ODD_SHORT
    assert AccountClient.objects.values_list("user_agent", "sdk_name", "ja4").get() == (
        ODD_TEXT,
        "\\",
        "a\tb",
    )
    assert AccountIdentifier.objects.get().first_seen.isoformat() == "2026-09-14T10:02:00.500000+00:00"
    ip = AccountIp.objects.get()
    assert (ip.asn, ip.request_count, bytes(ip.ip_low)) == (
        2**32 - 1,
        2**63 - 1,
        ip_to_range("2001:db8::7")[0].to_bytes(16, "big"),
    )


def test_canonical_ips_agree_with_the_range_query_encoding():
    import ipaddress
    import random

    from indicators.accounts.lines import _canonical_ip

    rng = random.Random(7)
    texts = ["::", "::1", "1::", "::1.2.3.4", "::ffff:1.2.3.4/120", "fe80::1%eth0", "2001:db8:0:1:1:1:1:1"]
    texts += [str(ipaddress.IPv6Address(rng.getrandbits(rng.choice((16, 48, 128))))) for _ in range(300)]
    for text in texts:
        canonical, low, high = _canonical_ip(text)
        assert canonical == str(ipaddress.ip_network(canonical, strict=False).network_address) or "/" in text
        expected = ip_to_range(canonical)
        assert (low, high) == tuple(value.to_bytes(16, "big") for value in expected)


@pytest.mark.django_db
def test_an_import_switches_threads_quickly_and_restores_the_interval(monkeypatch):
    import sys

    import indicators.accounts.importer as accounts

    seen = []
    original = accounts._parse_line

    def spy(*args, **kwargs):
        seen.append(sys.getswitchinterval())
        return original(*args, **kwargs)

    monkeypatch.setattr(accounts, "_parse_line", spy)
    before = sys.getswitchinterval()
    run(account(), account("b"))
    assert seen and all(value == pytest.approx(accounts.SWITCH_INTERVAL) for value in seen)
    assert before > accounts.SWITCH_INTERVAL
    assert sys.getswitchinterval() == before
    with pytest.raises(AccountImportError):
        accounts_import(["{}"], keyring=None)
    assert sys.getswitchinterval() == before


@pytest.mark.django_db
def test_an_import_leaves_the_garbage_collector_as_it_found_it():
    import gc

    run(account())
    assert gc.isenabled()
    gc.disable()
    try:
        run(account("b"))
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.django_db
def test_deleting_an_account_deletes_its_attributes():
    """The attribute foreign keys have no database constraint: Django's CASCADE does it."""
    run(full_account("a"), full_account("b"))
    Account.objects.get(account_id="a").delete()
    b = Account.objects.get(account_id="b").pk
    for model in ATTRIBUTE_MODELS:
        assert model.objects.exists(), model
        assert not model.objects.exclude(account_id=b).exists(), model


# --- Management command --------------------------------------------------------------------------


@pytest.fixture
def keyring(settings):
    settings.MDX_KEYRING = KEYRING
    return KEYRING


def command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_accounts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
class TestImportCommand:
    def test_imports_a_file_with_progress_a_summary_and_the_bad_lines(self, keyring, tmp_path):
        path = tmp_path / "accounts.jsonl"
        path.write_text("\n".join(jsonl(account("a"), account("b", status="x"), account("c"))) + "\n")
        out, err = command(str(path))
        assert out.strip() == "Imported 2 accounts (2 created, 0 updated); skipped 1 bad lines."
        assert "line 2: status: must be one of active, suspended, terminated" in err
        assert "100%" in err and "lines/s" in err and "[" + "#" * 30 + "]" in err
        assert Account.objects.count() == 2

    def test_reads_standard_input(self, keyring, monkeypatch):
        data = "\n".join(jsonl(account("a"), account("b"))).encode()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        out, err = command("-")
        assert "Imported 2 accounts (2 created, 0 updated)" in out
        assert "2 lines" in err and "%" not in err  # size unknown: no percentage

    def test_a_second_run_updates(self, keyring, tmp_path):
        path = tmp_path / "accounts.jsonl"
        path.write_text(json.dumps(account("a")) + "\n")
        command(str(path))
        out, _ = command(str(path))
        assert "(0 created, 1 updated)" in out

    def test_fails_when_every_line_is_bad(self, keyring, tmp_path):
        path = tmp_path / "bad.jsonl"
        path.write_text("{\n[]\n")
        with pytest.raises(CommandError, match=r"every line failed \(2 bad lines\)"):
            command(str(path))

    def test_fails_on_a_missing_file(self, keyring, tmp_path):
        with pytest.raises(CommandError, match="cannot read .*missing.jsonl: No such file"):
            command(str(tmp_path / "missing.jsonl"))

    def test_fails_without_a_keyring(self, settings, tmp_path):
        settings.MDX_KEYRING = None
        path = tmp_path / "a.jsonl"
        path.write_text(json.dumps(account()) + "\n")
        with pytest.raises(CommandError, match="no keyring"):
            command(str(path))

    def test_an_empty_file_succeeds_with_nothing_imported(self, keyring, tmp_path):
        path = tmp_path / "empty.jsonl"
        path.write_text("")
        out, _ = command(str(path))
        assert "Imported 0 accounts" in out


TEST_KEYRING_JSON = json.dumps(
    {"current": "mdx-test-0", "keys": {"mdx-test-0": "00" * 32}, "pseudonym_key": "01" * 32}
)


@pytest.fixture(scope="module")
def process_env(tmp_path_factory):
    """A migrated SQLite database and the test keyring, for running manage.py as a real process."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"}}
    env.update(
        SQLITE_PATH=str(tmp_path_factory.mktemp("import") / "import.sqlite3"),
        SECRET_KEY="cli-test",
        MDX_KEYRING=TEST_KEYRING_JSON,
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


@pytest.mark.slow
def test_exit_codes_as_a_process(process_env, tmp_path):
    def manage(*args, stdin: str = ""):
        return subprocess.run(
            [sys.executable, "manage.py", "import_accounts", *args],
            cwd=ROOT,
            env=process_env,
            input=stdin,
            capture_output=True,
            text=True,
        )

    ok = manage("-", stdin="\n".join(jsonl(account("p1"), "{bad")))
    assert ok.returncode == 0, ok.stderr
    assert "Imported 1 accounts" in ok.stdout and "line 2: not valid JSON" in ok.stderr
    all_bad = manage("-", stdin="{bad\n")
    assert all_bad.returncode == 1
    assert (
        all_bad.stderr.strip().splitlines()[-1]
        == "CommandError: every line failed (1 bad lines); nothing was imported"
    )
    missing = manage(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    no_keyring = subprocess.run(
        [sys.executable, "manage.py", "import_accounts", "-"],
        cwd=ROOT,
        env={**process_env, "MDX_KEYRING": ""},
        input="",
        capture_output=True,
        text=True,
    )
    assert no_keyring.returncode == 1 and "no keyring" in no_keyring.stderr


# --- REST endpoint -------------------------------------------------------------------------------

URL = "/api/v1/accounts/import/"


@pytest.fixture
def clients(make_org, alice_lab):
    from sharing.services import token_issue

    operator = make_org("Node Operator", "hub", trusted=True)

    def client(organisation, scopes: str) -> APIClient:
        _, plaintext = token_issue(organisation=organisation, scopes=scopes)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        return api

    return {
        "admin": client(operator, "admin"),
        "member": client(operator, "read,write"),
        "partner_admin": client(alice_lab, "admin"),
    }


def post(api: APIClient, body: bytes | str, content_type: str = "application/x-ndjson"):
    return api.generic("POST", URL, body, content_type=content_type)


@pytest.mark.django_db
class TestImportApi:
    def test_an_admin_imports_and_gets_the_line_errors(self, clients, keyring):
        body = "\n".join(
            jsonl(account("a", identifiers=[{"type": "email", "value": "a@example.com"}]), "{x", account("b"))
        )
        response = post(clients["admin"], body)
        assert response.status_code == 200, response.content
        assert response.json() == {
            "imported": 2,
            "created": 2,
            "updated": 0,
            "errors": [{"line": 2, "message": response.json()["errors"][0]["message"]}],
        }
        assert response.json()["errors"][0]["message"].startswith("not valid JSON")
        assert AccountIdentifier.objects.count() == 2

    @pytest.mark.parametrize(
        "content_type", ["application/jsonl", "text/plain", "application/x-ndjson; charset=utf-8"]
    )
    def test_accepts_the_json_lines_media_types(self, clients, keyring, content_type):
        response = post(clients["admin"], json.dumps(account()), content_type)
        assert response.status_code == 200, response.content
        assert response.json()["created"] == 1

    def test_other_scopes_are_refused(self, clients, keyring):
        response = post(clients["member"], json.dumps(account()))
        assert response.status_code == 403
        assert "admin" in response.json()["detail"]
        assert not Account.objects.exists()

    def test_no_token_is_refused(self, keyring, db):
        assert post(APIClient(), json.dumps(account())).status_code == 401

    def test_without_a_keyring_the_node_answers_503(self, clients, settings):
        settings.MDX_KEYRING = None
        response = post(clients["admin"], json.dumps(account()))
        assert response.status_code == 503
        assert "no keyring" in response.json()["detail"]

    def test_a_body_over_the_limit_is_refused(self, clients, keyring, settings):
        settings.TAXII_MAX_CONTENT_LENGTH = 1024
        response = post(clients["admin"], (json.dumps(account()) + "\n") * 40)
        assert response.status_code == 413
        assert not Account.objects.exists()

    def test_other_media_types_and_empty_bodies_are_refused(self, clients, keyring):
        assert post(clients["admin"], json.dumps(account()), "application/json").status_code == 415
        assert post(clients["admin"], "  \n").status_code == 400

    def test_messages_do_not_echo_raw_identifiers(self, clients, keyring):
        bad = account(identifiers=[{"type": "email", "value": "zelda.quux-at-example.org"}])
        response = post(clients["admin"], json.dumps(bad))
        assert "zelda" not in response.content.decode()


# --- Demo generator ------------------------------------------------------------------------------


def test_the_demo_generator_is_deterministic():
    assert list(demo_accounts_generate(300, seed=3)) == list(demo_accounts_generate(300, seed=3))
    assert list(demo_accounts_generate(300, seed=3)) != list(demo_accounts_generate(300, seed=4))


def test_the_demo_plants_the_hydra_cluster():
    accounts = [json.loads(line) for line in demo_accounts_generate(3000)]
    assert len(accounts) == 3000 and len({a["account_id"] for a in accounts}) == 3000
    cluster = [a for a in accounts if any(p.get("par") == DEMO_CLUSTER.par for p in a["payments"])]
    assert len(cluster) == DEMO_CLUSTER.size == 40
    for member in cluster:
        assert member["tier"] in ("education-program", "research-program", "startup-program")
        assert {c["ja4"] for c in member["clients"]} == {DEMO_CLUSTER.ja4}
        assert all(
            ip["ip"].startswith("198.51.100.") and ip["proxy_type"] == "residential" for ip in member["ips"]
        )
    outsiders = [a for a in accounts if a not in cluster]
    assert not any(ip["ip"].startswith("198.51.100.") for a in outsiders for ip in a["ips"])
    assert not any(c["ja4"] == DEMO_CLUSTER.ja4 for a in outsiders for c in a["clients"])


@pytest.mark.django_db
def test_the_demo_imports_cleanly_and_the_cluster_shares_one_payment_hash():
    result = accounts_import(demo_accounts_generate(500, seed=7), keyring=KEYRING)
    assert (result.imported, result.errors) == (500, [])
    shared = hashing.payment_hash(KEY, "par", DEMO_CLUSTER.par)
    assert AccountPayment.objects.filter(value=shared).count() == min(DEMO_CLUSTER.size, 500)
    low, high = (v.to_bytes(16, "big") for v in ip_to_range(DEMO_CLUSTER.cidr))
    in_block = AccountIp.objects.filter(ip_low__gte=low, ip_high__lte=high)
    assert in_block.values("account").distinct().count() == DEMO_CLUSTER.size


@pytest.mark.django_db
def test_four_byte_as_numbers_are_stored():
    result = accounts_import(
        jsonl(account(ips=[{"ip": "198.51.100.7", "asn": 4_200_000_000}])), keyring=KEYRING
    )
    assert result.errors == []
    assert AccountIp.objects.get().asn == 4_200_000_000


@pytest.mark.django_db
def test_a_partner_organisations_admin_token_cannot_import_accounts(clients, settings):
    settings.MDX_KEYRING = KEYRING
    response = post(clients["partner_admin"], json.dumps(account()) + "\n")
    assert response.status_code == 403 and "node-private" in response.json()["detail"]
    assert Account.objects.count() == 0


def test_the_precomputed_hmac_is_hmac_sha256():
    """hashing._hmac_hex starts from cached key pads (import speed); it must be plain HMAC."""
    import hmac
    import random

    rng = random.Random(11)
    for _ in range(2000):
        key = rng.randbytes(rng.choice((0, 1, 32, 64, 65, 200)))
        message = rng.randbytes(rng.randrange(300))
        expected = hmac.new(key, message, "sha256").hexdigest()
        assert hashing._hmac_hex(key, message) == hashing._hmac_hex(bytearray(key), message) == expected


@pytest.mark.django_db
def test_an_empty_raw_api_key_is_a_bad_line_not_a_failed_import():
    result = run(account("bad", api_keys=[{"key": ""}]), account("good", api_keys=[{"key": "sk-live-1"}]))
    assert [line for line, _ in result.errors] == [1]
    assert "api_keys[0].key" in result.errors[0][1]
    assert Account.objects.filter(account_id="good").exists()
    assert not Account.objects.filter(account_id="bad").exists()
