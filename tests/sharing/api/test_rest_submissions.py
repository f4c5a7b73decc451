"""POST /api/v1/collections/<id>/submissions/ and GET /api/v1/submissions/<id>/."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.sharing.api.helpers import ids, indicator


def submit(member, collection, body, content_type="application/json"):
    payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return member.client().post(
        f"/api/v1/collections/{collection.pk}/submissions/", payload, content_type=content_type
    )


def bundle(*objects) -> dict:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}


def test_trusted_lab_submission_is_published_and_searchable(cast):
    obj = indicator(name="Trusted proxy range")
    response = submit(cast.alice, cast.feed, bundle(obj))
    assert response.status_code == 202
    status = response.json()
    assert status["status"] == "complete"
    assert status["success_count"] == 1 and status["pending_count"] == 0
    assert status["successes"] == [{"id": obj["id"], "version": obj["modified"]}]
    assert response["Location"] == f"/api/v1/submissions/{status['id']}/"
    assert ids(cast.dana.client().get("/api/v1/objects/")) == {obj["id"]}


def test_a_bare_json_list_of_objects_is_accepted(cast):
    obj = indicator()
    response = submit(cast.alice, cast.feed, [obj])
    assert response.status_code == 202
    assert response.json()["success_count"] == 1


def test_stix_media_type_is_accepted(cast):
    response = submit(
        cast.alice, cast.feed, bundle(indicator()), content_type="application/stix+json;version=2.1"
    )
    assert response.status_code == 202


def test_review_org_submission_stays_pending_and_invisible_everywhere(cast):
    obj = indicator(name="Pending range", tlp="green")
    response = submit(cast.bob, cast.feed, bundle(obj))
    assert response.status_code == 202
    status = response.json()
    assert status["status"] == "pending"
    assert status["pending_count"] == 1
    assert status["pendings"] == [{"id": obj["id"], "version": obj["modified"]}]
    for member in (cast.alice, cast.bob, cast.dana):
        client = member.client()
        assert ids(client.get("/api/v1/objects/")) == set()
        assert client.get(f"/api/v1/objects/{obj['id']}/").status_code == 404
    export = cast.alice.client().get(f"/api/v1/collections/{cast.feed.pk}/export/stix/")
    assert obj["id"] not in b"".join(export.streaming_content).decode()


def test_invalid_objects_are_failures_with_a_message(cast):
    good, bad = indicator(), indicator(pattern="[not a pattern")
    response = submit(cast.alice, cast.feed, bundle(good, bad))
    assert response.status_code == 202
    status = response.json()
    assert status["success_count"] == 1 and status["failure_count"] == 1
    assert status["failures"][0]["id"] == bad["id"]
    assert status["failures"][0]["message"]


def test_submission_to_an_invisible_collection_is_404(cast):
    for member in (cast.charlie, cast.bob):
        response = submit(member, cast.secret, bundle(indicator()))
        assert response.status_code == 404
        assert response.json() == {"detail": "no such collection"}


def test_submission_to_an_unknown_or_malformed_collection_id_is_404(cast):
    client = cast.alice.client()
    for collection_id in (uuid.uuid4(), "not-a-uuid"):
        response = client.post(
            f"/api/v1/collections/{collection_id}/submissions/", "[]", content_type="application/json"
        )
        assert response.status_code == 404


def test_read_only_grant_gets_403(cast):
    response = submit(cast.dana, cast.feed, bundle(indicator()))
    assert response.status_code == 403
    assert "may not add objects" in response.json()["detail"]


def test_token_without_write_scope_gets_403(cast):
    response = submit(cast.alice_ro, cast.feed, bundle(indicator()))
    assert response.status_code == 403
    assert "'write' scope" in response.json()["detail"]


def test_public_collection_without_write_grant_gets_403_not_404(cast):
    response = submit(cast.charlie, cast.public, bundle(indicator()))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not valid JSON"),
        (b'"a string"', "expected a STIX bundle"),
        (b'{"type": "indicator", "id": "x"}', "single 'indicator' object"),
        (b'{"type": "bundle", "id": "bundle--x", "objects": []}', "bundle--<UUID>"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[]", "no objects"),
    ],
)
def test_malformed_bodies_get_400_with_a_message(cast, body, message):
    response = submit(cast.alice, cast.feed, body)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_non_json_content_type_is_rejected(cast):
    response = submit(cast.alice, cast.feed, "id,type\n", content_type="text/csv")
    assert response.status_code == 415
    assert "detail" in response.json()


def test_bodies_over_max_content_length_get_413(cast, settings):
    settings.TAXII_MAX_CONTENT_LENGTH = 2048
    big = bundle(*[indicator(name="x" * 200) for _ in range(20)])
    response = submit(cast.alice, cast.feed, big)
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


def test_submission_status_is_visible_only_to_the_submitting_organisation(cast):
    status_id = submit(cast.bob, cast.feed, bundle(indicator())).json()["id"]
    own = cast.bob.client().get(f"/api/v1/submissions/{status_id}/")
    assert own.status_code == 200
    assert own.json()["id"] == status_id and own.json()["status"] == "pending"
    for member in (cast.alice, cast.charlie):
        assert member.client().get(f"/api/v1/submissions/{status_id}/").status_code == 404


def test_unknown_and_malformed_submission_ids_are_404(cast):
    client = cast.alice.client()
    assert client.get(f"/api/v1/submissions/{uuid.uuid4()}/").status_code == 404
    assert client.get("/api/v1/submissions/nope/").status_code == 404
