"""The audit log: append-only, and feed pulls counted without a write per page."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import DatabaseError, transaction

from sharing.models import AuditEvent
from sharing.services import GrantSpec, collection_create, objects_publish, token_issue
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_paged_pull_is_recorded_once_per_token_collection_and_minute(client, alice_lab):
    feed = collection_create(title="feed", grants=[GrantSpec(alice_lab, True, True)])
    other = collection_create(title="other", grants=[GrantSpec(alice_lab, True, True)])
    objects_publish(collection=feed, objects=[make_indicator() for _ in range(3)])
    _, token = token_issue(organisation=alice_lab, scopes="read")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for _ in range(3):
        assert client.get(f"/taxii2/api/collections/{feed.pk}/objects/?limit=1", **auth).status_code == 200
    assert client.get(f"/taxii2/api/collections/{other.pk}/objects/", **auth).status_code == 200
    assert client.get(f"/api/v1/collections/{feed.pk}/export/csv/", **auth).status_code == 200
    pulls = AuditEvent.objects.filter(action="feed.pull")
    assert sorted(pulls.values_list("target_id", flat=True)) == sorted([str(feed.pk), str(other.pk)])
    assert pulls.get(target_id=str(feed.pk)).details == {"via": "taxii"}


def test_audit_events_cannot_be_changed_or_deleted_through_the_orm(alice_lab):
    event = AuditEvent.objects.create(action="test.event", organisation=alice_lab)
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


@pytest.mark.requires_postgres
def test_postgresql_refuses_updates_and_deletes_of_audit_events(alice_lab):
    event = AuditEvent.objects.create(action="test.event", organisation=alice_lab)
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="forged"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"
