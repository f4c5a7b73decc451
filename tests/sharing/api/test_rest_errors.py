"""Bad input answers 4xx with a JSON message, never a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"added_after": "yesterday"}, "added_after"),
        ({"added_before": "2026-13-45T00:00:00Z"}, "added_before"),
        ({"cursor": "!!!"}, "invalid cursor"),
        ({"cursor": "aGVsbG8"}, "invalid cursor"),
        ({"cursor": "MjAyNi0xMS0yM1QwMDowMDowMHw1"}, "invalid cursor"),  # naive timestamp
        ({"state": "sleeping"}, "state"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "-3"}, "page_size"),
        ({"collection": "not-a-uuid"}, "collection"),
        ({"tlp": "white"}, "tlp"),
        ({"label": "a|b"}, "label"),
        ({"versions": "some"}, "versions"),
    ],
)
def test_bad_search_parameters_are_400_with_a_message(cast, params, fragment):
    response = cast.alice.client().get("/api/v1/objects/", params)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_bad_collection_ids_are_404_json_on_every_collection_route(cast):
    client = cast.alice.client()
    for route in ("export/stix/", "export/csv/", "export/ips.txt", "export/hashes.txt"):
        response = client.get(f"/api/v1/collections/not-a-uuid/{route}")
        assert response.status_code == 404
        assert response.json() == {"detail": "no such collection"}


def test_unknown_api_paths_are_json_404(cast):
    response = cast.alice.client().get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_wrong_method_is_405(cast):
    response = cast.alice.client().delete("/api/v1/objects/")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_missing_and_invalid_tokens_are_401(db):
    assert APIClient().get("/api/v1/collections/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer mdx_nope_nope")
    response = client.get("/api/v1/collections/")
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid token"}
