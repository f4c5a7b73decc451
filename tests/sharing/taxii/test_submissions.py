"""Add Objects (TAXII 2.1 §5.5) and the status resource (§4.3), over raw HTTP."""

from __future__ import annotations

import pytest

from tests.sharing.taxii.helpers import (
    ROOT,
    assert_taxii_error,
    assert_taxii_response,
    ids_of,
    new_id,
    objects_of,
    ts,
)
from tests.stix_builders import make_indicator

REQUIRED_STATUS = ("id", "status", "total_count", "success_count", "failure_count", "pending_count")


def check_status_shape(status: dict) -> None:
    """§4.3.1: required properties, consistent counts, and status-details with id and version."""
    for key in REQUIRED_STATUS:
        assert key in status, key
    assert status["status"] in ("complete", "pending")
    assert (
        status["total_count"] == status["success_count"] + status["failure_count"] + status["pending_count"]
    )
    for listed, count in (
        ("successes", "success_count"),
        ("failures", "failure_count"),
        ("pendings", "pending_count"),
    ):
        details = status.get(listed, [])
        assert len(details) in (0, status[count]), listed
        for detail in details:
            assert isinstance(detail["id"], str) and detail["id"]
            # A failure may be about the version itself ("modified": "yesterday"): echoed as sent.
            assert ts(detail["version"]) if listed != "failures" else isinstance(detail["version"], str)
    assert status["status"] == ("pending" if status["pending_count"] else "complete")


def test_a_trusted_submission_is_complete_and_its_status_can_be_fetched_again(taxii, cast):
    sent = [make_indicator(name=f"n{i}") for i in range(3)]
    response = taxii.post(cast.objects_url, cast.lab, body={"objects": sent})
    status = assert_taxii_response(response, 202)
    check_status_shape(status)
    assert status["status"] == "complete" and status["success_count"] == 3
    assert ts(status["request_timestamp"])

    again = assert_taxii_response(taxii.get(f"{ROOT}status/{status['id']}/", cast.lab), 200)
    check_status_shape(again)
    assert {k: again[k] for k in REQUIRED_STATUS} == {k: status[k] for k in REQUIRED_STATUS}
    assert sorted(ids_of(taxii.ok(cast.objects_url, cast.lab))) == sorted(o["id"] for o in sent)


def test_a_review_submission_is_pending_and_nothing_is_served_yet(taxii, cast):
    sent = [make_indicator(name=f"r{i}") for i in range(2)]
    status = taxii.submit(cast, sent, auth=cast.cloud)
    check_status_shape(status)
    assert status["status"] == "pending"
    assert (status["success_count"], status["failure_count"], status["pending_count"]) == (0, 0, 2)
    assert sorted(p["id"] for p in status["pendings"]) == sorted(o["id"] for o in sent)

    for obj in sent:
        assert_taxii_error(taxii.get(cast.object_url(obj["id"]), cast.lab), 404)
        assert_taxii_error(taxii.get(cast.object_url(obj["id"]), cast.cloud), 404)
    assert objects_of(taxii.ok(cast.manifest_url, cast.cloud)) == []

    again = assert_taxii_response(taxii.get(f"{ROOT}status/{status['id']}/", cast.cloud), 200)
    assert again["status"] == "pending" and again["pending_count"] == 2


def test_a_review_submission_with_an_invalid_object_lists_the_failure_and_the_pendings(taxii, cast):
    good = make_indicator()
    bad = make_indicator(pattern="[file:hashes.'SHA-256' = ]")
    status = taxii.submit(cast, [good, bad], auth=cast.cloud)
    check_status_shape(status)
    assert (status["total_count"], status["pending_count"], status["failure_count"]) == (2, 1, 1)
    assert [f["id"] for f in status["failures"]] == [bad["id"]]
    assert [p["id"] for p in status["pendings"]] == [good["id"]]


@pytest.mark.parametrize(
    "broken, word",
    [
        (lambda o: o.update(pattern="[ipv4-addr:value = "), "pattern"),
        (lambda o: o.pop("pattern_type"), "pattern_type"),
        (lambda o: o.update(modified="yesterday"), "modified"),
        (lambda o: o.update(created="2026-12-01T00:00:00.000Z"), "modified"),  # modified before created
        (lambda o: o.update(id="indicator--not-a-uuid"), "id"),
    ],
    ids=["bad pattern", "no pattern_type", "bad modified", "modified before created", "bad id"],
)
def test_each_invalid_object_is_a_failure_whose_message_names_the_problem(taxii, cast, broken, word):
    obj = make_indicator()
    broken(obj)
    status = taxii.submit(cast, [make_indicator(), obj])
    check_status_shape(status)
    assert (status["success_count"], status["failure_count"]) == (1, 1)
    [failure] = status["failures"]
    assert word in failure["message"], failure["message"]
    assert len(objects_of(taxii.ok(cast.objects_url, cast.lab))) == 1  # nothing invalid is stored


def test_a_different_object_under_an_existing_version_is_a_failure(taxii, cast):
    original = make_indicator(name="original")
    taxii.submit(cast, [original])
    forged = {**original, "name": "forged"}
    status = taxii.submit(cast, [forged])
    check_status_shape(status)
    assert (status["success_count"], status["failure_count"]) == (0, 1)
    body = taxii.ok(cast.object_url(original["id"]), cast.lab, params={"match[version]": "all"})
    assert [o["name"] for o in objects_of(body)] == ["original"]


def test_an_identical_repost_is_a_success_without_a_new_entry(taxii, cast):
    obj = make_indicator()
    taxii.submit(cast, [obj])
    manifest = objects_of(taxii.ok(cast.manifest_url, cast.lab))
    status = taxii.submit(cast, [obj, obj])
    check_status_shape(status)
    assert (status["total_count"], status["success_count"], status["failure_count"]) == (2, 2, 0)
    assert objects_of(taxii.ok(cast.manifest_url, cast.lab)) == manifest


def test_every_object_of_one_bulk_gets_its_own_date_added(taxii, cast):
    taxii.submit(cast, [make_indicator(name=f"bulk {i}") for i in range(25)])
    manifest = objects_of(taxii.ok(cast.manifest_url, cast.lab))
    added = [ts(m["date_added"]) for m in manifest]
    assert len(added) == 25 and len(set(added)) == 25 and added == sorted(added)


def test_an_sco_without_versions_is_stored_and_served(taxii, cast):
    ip = {"type": "ipv4-addr", "spec_version": "2.1", "id": new_id("ipv4-addr"), "value": "203.0.113.7"}
    status = taxii.submit(cast, [ip])
    assert status["success_count"] == 1, status
    assert objects_of(taxii.ok(cast.object_url(ip["id"]), cast.lab)) == [ip]
    [record] = objects_of(taxii.ok(cast.manifest_url, cast.lab))
    assert record["id"] == ip["id"] and ts(record["version"]) and ts(record["date_added"])


def test_older_versions_posted_later_do_not_replace_the_latest(taxii, cast):
    stix_id = new_id()
    newest = make_indicator(stix_id=stix_id, modified="2026-11-23T00:00:00.000Z", name="newest")
    oldest = make_indicator(stix_id=stix_id, modified="2026-11-01T00:00:00.000Z", name="oldest")
    taxii.submit(cast, [newest])
    taxii.submit(cast, [oldest])
    # TAXII 2.1 §3.4.2: "last"/"first" are about the object's versions, not about date_added.
    assert [o["name"] for o in objects_of(taxii.ok(cast.object_url(stix_id), cast.lab))] == ["newest"]
    body = taxii.ok(cast.objects_url, cast.lab, params={"match[version]": "first"})
    assert [o["name"] for o in objects_of(body)] == ["oldest"]
    versions = taxii.ok(cast.versions_url(stix_id), cast.lab)["versions"]
    assert sorted(ts(v) for v in versions) == [ts(oldest["modified"]), ts(newest["modified"])]


def test_an_envelope_with_more_and_next_members_is_still_an_envelope(taxii, cast):
    # TAXII 2.1 §3.7: more and next are envelope properties; a client may echo them back.
    obj = make_indicator()
    status = assert_taxii_response(
        taxii.post(cast.objects_url, cast.lab, body={"more": False, "objects": [obj]}), 202
    )
    assert status["success_count"] == 1
