"""Token guessing: after too many rejected tokens from one address, that address gets 429 —
on REST and TAXII alike — until the window ends; other addresses and the limit's absence are
unaffected."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

TAXII = "application/taxii+json;version=2.1"
GUESS = "mdx_00000000_" + "A" * 43


@pytest.fixture
def three_guesses(settings):
    settings.MDX_AUTH_FAILURE_LIMIT = 3
    settings.MDX_AUTH_FAILURE_WINDOW_SECONDS = 600
    addresses = ("198.51.100.7", "198.51.100.8", "127.0.0.1")
    cache.delete_many([f"mdx:auth-failures:{a}" for a in addresses])
    yield
    cache.delete_many([f"mdx:auth-failures:{a}" for a in addresses])


def client_from(address: str, token: str) -> APIClient:
    api = APIClient(REMOTE_ADDR=address)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_an_address_that_keeps_presenting_bad_tokens_is_throttled(cast, three_guesses):
    guesser = client_from("198.51.100.7", GUESS)
    for _ in range(3):
        assert guesser.get("/api/v1/objects/").status_code == 401
    refused = guesser.get("/api/v1/objects/")
    assert refused.status_code == 429 and refused["Retry-After"] == "600"
    assert "too many rejected tokens" in refused.json()["detail"]
    # Even a valid token from that address waits out the window: the guesser may have found one.
    assert client_from("198.51.100.7", cast.alice.plaintext).get("/api/v1/objects/").status_code == 429
    # Another address is not affected.
    assert client_from("198.51.100.8", cast.alice.plaintext).get("/api/v1/objects/").status_code == 200


def test_taxii_answers_with_an_error_resource(cast, three_guesses):
    guesser = client_from("198.51.100.7", GUESS)
    for _ in range(3):
        assert guesser.get("/taxii2/", HTTP_ACCEPT=TAXII).status_code == 401
    refused = guesser.get("/taxii2/", HTTP_ACCEPT=TAXII)
    assert refused.status_code == 429 and refused["Content-Type"].startswith("application/taxii+json")
    assert refused.json()["http_status"] == "429"


def test_malformed_credentials_count_and_good_tokens_do_not(cast, three_guesses):
    good = client_from("198.51.100.8", cast.alice.plaintext)
    for _ in range(10):
        assert good.get("/api/v1/objects/").status_code == 200
    malformed = APIClient(REMOTE_ADDR="198.51.100.8")
    malformed.credentials(HTTP_AUTHORIZATION="Basic !!!")
    for _ in range(3):
        assert malformed.get("/api/v1/objects/").status_code == 401
    assert good.get("/api/v1/objects/").status_code == 429


def test_zero_turns_the_limit_off(cast, three_guesses, settings):
    settings.MDX_AUTH_FAILURE_LIMIT = 0
    guesser = client_from("198.51.100.7", GUESS)
    assert all(guesser.get("/api/v1/objects/").status_code == 401 for _ in range(6))
