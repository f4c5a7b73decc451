"""hash_identifier TYPE VALUE: the DOMAIN.md §3.3 vectors from the command line, and its errors."""

from __future__ import annotations

import hashlib
import hmac
import io

import pytest
from django.core.management import CommandError, call_command

from indicators.hashing import Keyring

VECTORS = [
    (
        "email",
        ["  John.Smith+promo@GoogleMail.com "],
        "ed38a0c12bff09400152eeea10aa56c9554308b56f07d19bf084131649b6fc43",
    ),
    (
        "email-canonical",
        ["  John.Smith+promo@GoogleMail.com "],
        "eff348c3c5f97d74b3c9457896ea9de6aa6258448ff5a93b461ea9d8901fa5cb",
    ),
    (
        "email-canonical",
        ["Alice+x@Example.COM"],
        "7224261626a706a1ecf8b827fc6dfd2ad70b7b6876dde5c0d0b5a12ac43fdd7d",
    ),
    ("email", ["bob@Bücher.example"], "de71afeb9cfb9e015b0f60b0afb7471310bc1671b2d0299b4dccccf531898c40"),
    (
        "phone",
        ["020 7946 0018", "--region", "GB"],
        "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926",
    ),
    ("phone", ["+44 (0)20 7946 0018"], "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926"),
    ("org-domain", ["example.edu"], "5be82165e09e4d1aadc5db62538be6df6c78ba9e244f5b51a0df48a84ba47d1a"),
    (
        "org-domain",
        ["example.edu", "--key-id", "mdx-test-0"],
        "5be82165e09e4d1aadc5db62538be6df6c78ba9e244f5b51a0df48a84ba47d1a",
    ),
]


@pytest.fixture
def keyring(settings):
    settings.MDX_KEYRING = Keyring.for_tests()


def hash_identifier(*args) -> list[str]:
    out = io.StringIO()
    call_command("hash_identifier", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()


@pytest.mark.parametrize(("identifier_type", "args", "expected"), VECTORS)
def test_prints_the_domain_test_vectors_alone_on_the_last_line(keyring, identifier_type, args, expected):
    lines = hash_identifier(identifier_type, *args)
    assert lines[-1] == expected
    assert "mdx-test-0" in lines[0]


def test_raw_identifier_types_are_hashed_as_given(keyring):
    expected = hmac.new(bytes(32), b"mdx:v1:device-id:Dev-1", hashlib.sha256).hexdigest()
    assert hash_identifier("device-id", "Dev-1")[-1] == expected


def test_api_keys_use_unkeyed_sha256_and_need_no_keyring(settings):
    settings.MDX_KEYRING = None
    assert hash_identifier("api-key", "sk-abc")[-1] == hashlib.sha256(b"sk-abc").hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["email", "no-at-sign"], "has no '@'"),
        (["phone", "020 7946 0018"], "cannot be parsed without a default region"),
        (["phone", "020 7946", "--region", "GB"], "is not a valid number for region GB"),
        (["org-domain", "edu"], "public suffix"),
        (["email", "a@example.com", "--key-id", "mdx-1999q1"], "unknown key id 'mdx-1999q1'"),
        (["email", "a@example.com", "--region", "GB"], "--region only applies to phone"),
        (["api-key", "sk-abc", "--key-id", "mdx-test-0"], "--key-id does not apply"),
        (["fax", "1"], "invalid choice: 'fax'"),
    ],
)
def test_bad_input_is_a_one_line_error(keyring, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        hash_identifier(*args)
    assert "\n" not in str(caught.value)


def test_without_a_keyring_keyed_types_fail(settings):
    settings.MDX_KEYRING = None
    with pytest.raises(CommandError, match="no keyring"):
        hash_identifier("email", "a@example.com")
