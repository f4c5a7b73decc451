"""Polling a live remote hub (this app under live_server): exactly once, resumable, versions supersede."""

from __future__ import annotations

import pytest
import requests
from django.db import connection

from sharing import federation
from sharing.federation import subscription_poll
from sharing.models import CollectionEntry, Submission, SubmissionItem, Subscription
from sharing.taxii.query import taxii_timestamp
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.slow


def indicators(n: int, start: int = 0) -> list[dict]:
    return [
        make_indicator(name=f"Egress {i}", pattern=f"[ipv4-addr:value = '198.51.{i // 250}.{i % 250 + 1}']")
        for i in range(start, start + n)
    ]


def versions(collection) -> set[tuple[str, object]]:
    return set(CollectionEntry.objects.filter(collection=collection).values_list("stix_id", "modified"))


def poll(subscription) -> federation.PollResult:
    result = subscription_poll(subscription)
    subscription.refresh_from_db()
    return result


def test_a_poll_pulls_every_object_once_and_publishes_it_for_a_trusted_subscription(fed, monkeypatch):
    in_transaction: list[bool] = []
    original = federation._TimeoutSession.request

    def spy(self, method, url, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(federation._TimeoutSession, "request", spy)
    fed.publish(indicators(7))
    sub = fed.subscribe()
    assert sub.api_root_url == ""

    result = poll(sub)

    assert result.ok and (result.objects, result.published, result.pending, result.rejected) == (7, 7, 0, 0)
    assert versions(fed.mirror) == versions(fed.upstream)
    assert CollectionEntry.objects.filter(collection=fed.mirror).count() == 7
    assert set(
        CollectionEntry.objects.filter(collection=fed.mirror).values_list("submitted_by", flat=True)
    ) == {sub.organisation_id}
    assert (
        sub.organisation.kind == "hub" and sub.organisation.is_trusted and sub.organisation.name == sub.name
    )
    assert sub.api_root_url == fed.discovery_url + "api/"
    last_added = CollectionEntry.objects.filter(collection=fed.upstream).order_by("-date_added")[0].date_added
    assert sub.cursor_added_after == taxii_timestamp(last_added)
    assert sub.objects_received == 7 and sub.consecutive_failures == 0 and sub.last_success_at
    assert sub.next_poll_at > sub.last_success_at and sub.lease_until is None
    # No network call ran inside a database transaction.
    assert in_transaction and not any(in_transaction)

    again = poll(sub)
    assert again.ok and again.objects == 0 and sub.objects_received == 7
    assert CollectionEntry.objects.filter(collection=fed.mirror).count() == 7

    fed.publish(indicators(3, start=100))
    third = poll(sub)
    assert third.ok and third.objects == 3 and sub.objects_received == 10
    assert versions(fed.mirror) == versions(fed.upstream)
    assert SubmissionItem.objects.filter(submission__organisation=sub.organisation).count() == 10


def test_a_review_subscription_leaves_pulled_objects_pending(fed):
    fed.publish(indicators(4))
    sub = fed.subscribe(review=True)

    result = poll(sub)

    assert result.ok and (result.objects, result.published, result.pending) == (4, 0, 4)
    assert not sub.organisation.is_trusted
    assert not CollectionEntry.objects.filter(collection=fed.mirror).exists()
    items = SubmissionItem.objects.filter(submission__organisation=sub.organisation)
    assert items.count() == 4 and set(items.values_list("state", flat=True)) == {"pending"}
    assert poll(sub).objects == 0
    assert items.count() == 4  # nothing queued twice for review


def test_new_versions_and_revocations_upstream_supersede_local_versions(fed, client):
    keep, revoke = (
        make_indicator(name="v1 keep"),
        make_indicator(name="v1 revoke", pattern="[ipv4-addr:value = '203.0.113.9']"),
    )
    fed.publish([keep, revoke])
    sub = fed.subscribe()
    assert poll(sub).objects == 2

    newer = dict(keep, name="v2 keep", modified="2026-11-23T06:00:00.000Z")
    revoked = dict(revoke, revoked=True, modified="2026-11-23T07:00:00.000Z")
    fed.publish([newer, revoked])
    result = poll(sub)

    assert result.ok and result.objects == 2
    latest = CollectionEntry.objects.filter(collection=fed.mirror, is_latest=True)
    assert {(e.stix_id, e.modified.isoformat()) for e in latest} == {
        (keep["id"], "2026-11-23T06:00:00+00:00"),
        (revoke["id"], "2026-11-23T07:00:00+00:00"),
    }
    assert CollectionEntry.objects.filter(collection=fed.mirror).count() == 4
    # The local TAXII feed serves the latest versions only (match[version]=last by default).
    response = client.get(
        f"/taxii2/api/collections/{fed.mirror.pk}/objects/",
        HTTP_ACCEPT="application/taxii+json;version=2.1",
        HTTP_AUTHORIZATION=f"Bearer {fed.member_token}",
    )
    served = {o["id"]: o for o in response.json()["objects"]}
    assert served[keep["id"]]["name"] == "v2 keep"
    assert served[revoke["id"]]["revoked"] is True


def test_an_interrupted_paged_poll_resumes_from_its_cursor_without_loss_or_duplicates(
    fed, settings, monkeypatch
):
    settings.TAXII_MAX_PAGE_SIZE = 50
    fed.publish(indicators(250))
    sub = fed.subscribe()
    original = federation._TimeoutSession.request
    object_calls: list[str] = []

    def flaky(self, method, url, **kwargs):
        if "/objects/" in url:
            object_calls.append(url)
            if len(object_calls) >= 3:
                raise requests.ConnectionError("connection reset by peer")
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(federation._TimeoutSession, "request", flaky)
    first = poll(sub)

    assert not first.ok and first.pages == 2 and first.objects == 100
    assert "cannot connect" in sub.last_error and sub.consecutive_failures == 1
    assert len(object_calls) == 2 + 1 + settings.MDX_FEDERATION_RETRIES  # pages 1-2, then retries of page 3
    upstream = list(CollectionEntry.objects.filter(collection=fed.upstream).order_by("date_added"))
    assert sub.cursor_added_after == taxii_timestamp(upstream[99].date_added)
    assert versions(fed.mirror) == {(e.stix_id, e.modified) for e in upstream[:100]}
    assert sub.objects_received == 100

    monkeypatch.setattr(federation._TimeoutSession, "request", original)
    second = poll(sub)

    assert second.ok and second.pages == 3 and second.objects == 150
    mirror = CollectionEntry.objects.filter(collection=fed.mirror)
    assert mirror.count() == 250 and versions(fed.mirror) == versions(fed.upstream)
    assert len(set(mirror.values_list("stix_object", flat=True))) == 250
    pulled = SubmissionItem.objects.filter(submission__organisation=sub.organisation)
    assert pulled.count() == 250 and len(set(pulled.values_list("stix_id", flat=True))) == 250
    assert sub.objects_received == 250 and sub.consecutive_failures == 0
    assert Submission.objects.filter(organisation=sub.organisation).count() == 5  # one per page


def test_the_token_can_come_from_an_environment_variable(fed, monkeypatch):
    fed.publish(indicators(2))
    sub = fed.subscribe(token=None, token_env="MDX_TEST_UPSTREAM_TOKEN")
    assert sub.token_ciphertext == ""

    missing = poll(sub)
    assert not missing.ok and sub.last_error == "environment variable MDX_TEST_UPSTREAM_TOKEN is not set"

    monkeypatch.setenv("MDX_TEST_UPSTREAM_TOKEN", fed.member_token)
    assert poll(sub).objects == 2


def test_a_wrong_token_is_recorded_as_a_clear_error_without_retries(fed, monkeypatch):
    sub = fed.subscribe(token="mdx_00000000_" + "A" * 43)
    calls: list[str] = []
    original = federation._TimeoutSession.request

    def count(self, method, url, **kwargs):
        calls.append(url)
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(federation._TimeoutSession, "request", count)
    result = poll(sub)

    assert not result.ok and "rejected the token (HTTP 401)" in sub.last_error
    assert len(calls) == 1 and sub.consecutive_failures == 1
    assert Subscription.objects.get(pk=sub.pk).next_poll_at > sub.last_error_at


def test_a_poll_whose_lease_was_taken_over_stops_without_writing(fed, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    fed.publish(indicators(3))
    sub = fed.subscribe()
    original = federation._TimeoutSession.request
    takeover = timezone.now() + timedelta(hours=1)

    def slow_fetch(self, method, url, **kwargs):
        if "/objects/" in url:
            # Our lease ran out while we waited for the remote, and another worker claimed it.
            Subscription.objects.filter(pk=sub.pk).update(lease_until=takeover)
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(federation._TimeoutSession, "request", slow_fetch)
    result = poll(sub)

    assert not result.ok and "another poll took over" in result.error
    assert not CollectionEntry.objects.filter(collection=fed.mirror).exists()  # the page rolled back
    assert sub.cursor_added_after == "" and sub.objects_received == 0
    assert sub.lease_until == takeover and sub.consecutive_failures == 0
