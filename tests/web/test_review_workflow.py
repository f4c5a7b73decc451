"""The review services: publishing on approval, failures with reasons, status, audit, matching hook,
and that pending or rejected objects never leave the node through any feed, export or API read."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sharing.models import AuditEvent, CollectionEntry, SubmissionItem
from sharing.review import (
    ReviewError,
    submission_approve_all,
    submission_item_approve,
    submission_item_reject,
    submission_items_decide,
    submission_reject_all,
    user_role,
)
from sharing.taxii.views import status_resource
from tests.stix_builders import make_indicator

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
def two(submit):
    keep, drop = make_indicator(name="keep"), make_indicator(name="drop")
    submission = submit([keep, drop])
    return submission, keep, drop


def test_approving_publishes_with_a_new_date_added_and_completes_the_status(web, two, submit):
    submission, keep, drop = two
    before = web.feed.__class__.objects.get(pk=web.feed.pk).last_added
    item = submission.items.get(position=0)
    submission_item_approve(item=item, user=web.reviewer)
    entry = CollectionEntry.objects.get(collection=web.feed, stix_id=keep["id"])
    assert before is None or entry.date_added > before
    assert entry.submitted_by == web.partner and entry.stix_object_id == item.stix_object_id
    submission.refresh_from_db()
    assert submission.completed_at is None  # one object still pending
    submission_item_reject(
        item=submission.items.get(position=1), user=web.reviewer, reason="  looks   benign "
    )
    submission.refresh_from_db()
    assert submission.completed_at is not None
    status = status_resource(submission)
    assert (status["status"], status["success_count"], status["failure_count"]) == ("complete", 1, 1)
    assert status["failures"] == [{"id": drop["id"], "version": drop["modified"], "message": "looks benign"}]
    actions = list(AuditEvent.objects.filter(actor_user=web.reviewer).values_list("action", flat=True))
    assert sorted(actions) == ["submission.approve", "submission.reject"]


def test_rejecting_needs_a_reason(web, two):
    submission, _, _ = two
    with pytest.raises(ReviewError, match="reason"):
        submission_item_reject(item=submission.items.get(position=0), user=web.reviewer, reason="   ")
    with pytest.raises(ReviewError, match="reason"):
        submission_reject_all(submission=submission, user=web.reviewer, reason="")
    assert set(submission.items.values_list("state", flat=True)) == {"pending"}


def test_a_decided_object_cannot_be_decided_again(web, two):
    submission, _, _ = two
    item = submission.items.get(position=0)
    submission_item_approve(item=item, user=web.reviewer)
    with pytest.raises(ReviewError, match="already decided"):
        submission_item_reject(item=item, user=web.reviewer, reason="changed my mind")
    stale = SubmissionItem.objects.get(pk=submission.items.get(position=1).pk)
    submission_item_reject(item=submission.items.get(position=1), user=web.reviewer, reason="no")
    with pytest.raises(ReviewError):
        submission_item_approve(item=stale, user=web.reviewer)  # a stale copy: someone else decided
    assert CollectionEntry.objects.count() == 1


def test_approve_all_and_reject_all_decide_only_pending_objects(web, two, submit):
    submission, _, _ = two
    submission_item_reject(item=submission.items.get(position=0), user=web.reviewer, reason="dup")
    decided = submission_approve_all(submission=submission, user=web.reviewer)
    assert [i.position for i in decided] == [1]
    other = submit([make_indicator(), make_indicator()])
    assert len(submission_reject_all(submission=other, user=web.reviewer, reason="stale")) == 2
    other.refresh_from_db()
    assert other.completed_at is not None


def test_bulk_decisions_span_submissions(web, submit):
    first, second = submit([make_indicator()]), submit([make_indicator()])
    items = [first.items.get(), second.items.get()]
    decided = submission_items_decide(items=items, user=web.reviewer, approve=True)
    assert len(decided) == 2 and CollectionEntry.objects.count() == 2


def test_viewers_cannot_decide_even_through_the_service(web, two):
    submission, _, _ = two
    assert user_role(web.viewer) == "viewer"
    with pytest.raises(ReviewError, match="reviewers"):
        submission_approve_all(submission=submission, user=web.viewer)


def test_the_highest_operator_membership_role_wins(web, make_org):
    from sharing.models import Membership

    second_hub = make_org("Second Operator", "hub")
    Membership.objects.create(user=web.viewer, organisation=second_hub, role="admin")
    assert user_role(web.viewer) == "admin"


def test_a_partner_membership_grants_no_role_in_the_operators_console(web, client, django_user_model):
    from sharing.models import Membership

    partner_admin = django_user_model.objects.create_user("parker", password="a-long-passphrase-1")
    Membership.objects.create(user=partner_admin, organisation=web.partner, role="admin")
    assert user_role(partner_admin) is None
    client.force_login(partner_admin)
    for url in ("/review/", "/objects/", "/alerts/", "/audit/"):
        assert client.get(url).status_code == 403, url


def test_four_eyes_blocks_approval_by_a_member_of_the_submitter(web, two, settings):
    submission, _, _ = two
    settings.MDX_FOUR_EYES = True
    with pytest.raises(ReviewError, match="four-eyes"):
        submission_approve_all(submission=submission, user=web.partner_reviewer)
    submission_approve_all(submission=submission, user=web.reviewer)
    assert set(submission.items.values_list("state", flat=True)) == {"success"}


def test_approval_queues_matching_of_the_published_versions_after_commit(
    web, two, monkeypatch, django_capture_on_commit_callbacks
):
    from indicators import tasks

    queued = []
    monkeypatch.setattr(tasks.match_indicators, "delay", queued.extend)
    submission, _, _ = two
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission_approve_all(submission=submission, user=web.reviewer)
    assert queued == []  # nothing leaves the transaction before it commits
    for callback in callbacks:
        callback()
    assert sorted(queued) == sorted(submission.items.values_list("stix_object_id", flat=True))


def _reads(web, client, stix_id: str) -> dict[str, list[str]]:
    """What the partner sees of the collection through every TAXII and REST read."""
    base = f"/taxii2/api/collections/{web.feed.pk}"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {web.partner_plaintext}", "HTTP_ACCEPT": TAXII}
    seen = {}
    objects = client.get(f"{base}/objects/", **auth)
    seen["taxii objects"] = [o["id"] for o in objects.json().get("objects", [])]
    manifest = client.get(f"{base}/manifest/", **auth)
    seen["taxii manifest"] = [o["id"] for o in manifest.json().get("objects", [])]
    one = client.get(f"{base}/objects/{stix_id}/", **auth)
    seen["taxii object"] = [o["id"] for o in one.json().get("objects", [])] if one.status_code == 200 else []
    versions = client.get(f"{base}/objects/{stix_id}/versions/", **auth)
    seen["taxii versions"] = versions.json().get("versions", []) if versions.status_code == 200 else []
    rest = APIClient()
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {web.partner_plaintext}")
    listing = rest.get("/api/v1/objects/")
    body = listing.json()
    rows = body.get("results", body.get("objects", [])) if isinstance(body, dict) else body
    seen["rest objects"] = [str(r) for r in rows if stix_id in str(r)]
    detail = rest.get(f"/api/v1/objects/{stix_id}/")
    seen["rest object"] = [stix_id] if detail.status_code == 200 else []
    for export in ("stix/", "csv/", "ips.txt"):
        response = rest.get(f"/api/v1/collections/{web.feed.pk}/export/{export}")
        text = b"".join(response.streaming_content) if response.streaming else response.content
        seen[f"export {export}"] = [stix_id] if stix_id.encode() in text or b"45.146.164" in text else []
    return seen


def test_pending_and_rejected_objects_are_never_visible(web, submit, client):
    pending = make_indicator(pattern="[ipv4-addr:value ISSUBSET '45.146.164.0/24']")
    rejected = make_indicator(pattern="[ipv4-addr:value ISSUBSET '45.146.164.0/24']")
    submission = submit([pending, rejected])
    submission_item_reject(item=submission.items.get(position=1), user=web.reviewer, reason="no")
    for obj in (pending, rejected):
        seen = _reads(web, client, obj["id"])
        assert all(not ids for ids in seen.values()), seen
    # The control: once approved, the same reads do show the object.
    submission_item_approve(item=submission.items.get(position=0), user=web.reviewer)
    seen = _reads(web, client, pending["id"])
    assert all(seen.values()), seen
    assert seen["taxii objects"] == [pending["id"]]


def test_a_repeated_version_waits_once_and_one_decision_settles_every_copy(web, submit, client_for):
    from django.urls import reverse

    indicator = make_indicator(name="retried by its client")
    first, second = submit([indicator]), submit([indicator])  # a client retried its POST
    assert [i.state for i in (*first.items.all(), *second.items.all())] == ["pending", "pending"]
    queue = client_for(web.reviewer).get(reverse("web:queue")).content.decode()
    assert queue.count("retried by its client") == 1
    assert client_for(web.reviewer).get(reverse("home")).context["pending_count"] == 1

    submission_item_approve(item=first.items.get(), user=web.reviewer)
    for submission in (first, second):
        submission.refresh_from_db()
        assert submission.completed_at is not None
        assert status_resource(submission)["success_count"] == 1
    assert CollectionEntry.objects.filter(stix_id=indicator["id"]).count() == 1


def test_a_rejected_version_sent_again_stays_rejected_with_the_reason(web, submit):
    indicator = make_indicator(name="rejected once")
    first, pending_copy = submit([indicator]), submit([indicator])
    submission_item_reject(item=first.items.get(), user=web.reviewer, reason="university NAT")
    assert pending_copy.items.get().state == "failure"  # decided with it
    again = submit([indicator])  # e.g. a subscription re-pulling the page
    item = again.items.get()
    assert item.state == "failure" and item.message == "this version was rejected on review: university NAT"
    again.refresh_from_db()
    assert again.completed_at is not None
    changed = submit([{**indicator, "modified": "2026-11-24T00:00:00.000Z"}])
    assert changed.items.get().state == "pending"  # a new version is reviewed afresh
