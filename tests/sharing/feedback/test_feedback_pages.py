"""The feedback pages: the operator sees every aggregate (disputed first); a partner's member sees
the aggregates on its own organisation's indicators only; nobody sees who sighted what."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from sharing.models import Membership
from tests.sharing.feedback.conftest import opinion, sighting
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.django_db


def user_in(org, role="viewer", name=None):
    user = get_user_model().objects.create_user(name or f"user-{org.pk}-{role}", password="x")
    Membership.objects.create(user=user, organisation=org, role=role)
    return user


@pytest.fixture
def feedback_posted(client, hub):
    from sharing.services import objects_publish

    foreign = make_indicator(name="Another lab's range")
    objects_publish(collection=hub.feed, objects=[foreign], submitted_by=hub.members[3].org)
    a, b = hub.members[:2]
    hub.post(client, a, [sighting(a, hub.indicator["id"], count=6), opinion(a, hub.indicator["id"], "agree")])
    hub.post(
        client, b, [sighting(b, hub.indicator["id"], count=1), opinion(b, hub.indicator["id"], "disagree")]
    )
    hub.post(client, a, [sighting(a, foreign["id"], count=2)])
    return foreign


def test_the_operator_page_shows_every_aggregate_with_the_dispute_and_no_member_names(
    client, hub, feedback_posted
):
    client.force_login(user_in(hub.operator.org))
    html = client.get("/feedback/").content.decode()
    assert hub.indicator["id"] in html and feedback_posted["id"] in html
    assert 'data-testid="disputed"' in html and "1 member(s) agree, 1 disagree" in html
    assert html.index(hub.indicator["id"]) < html.index(feedback_posted["id"])  # disputed first
    assert '<svg class="chart"' in html
    for member in hub.members:
        assert member.org.name not in html


def test_a_partner_sees_its_own_indicators_feedback_only(client, hub, feedback_posted):
    client.force_login(user_in(hub.originator.org))
    assert client.get("/feedback/").status_code == 403  # the operator console stays closed
    response = client.get("/feedback/originated/")
    html = response.content.decode()
    assert response.status_code == 200
    assert hub.indicator["id"] in html and feedback_posted["id"] not in html
    assert "Member 1" not in html and "Member 2" not in html
    client.force_login(user_in(hub.members[2].org, name="member-3-viewer"))
    html = client.get("/feedback/originated/").content.decode()
    assert hub.indicator["id"] not in html and "No feedback received yet" in html


def test_an_admin_creates_an_inbox_in_the_web_ui_and_it_cannot_be_public(client, hub):
    from sharing.models import Collection

    client.force_login(user_in(hub.operator.org, role="admin"))
    form = {"title": "second-inbox", "tlp_ceiling": "amber", "is_inbox": "on"}
    client.post("/collections/new/", form)
    created = Collection.objects.get(title="second-inbox")
    assert created.is_inbox and created.grants.count() == 0
    assert b"feedback inbox" in client.get(f"/collections/{created.pk}/").content
    response = client.post(
        "/collections/new/", {**form, "title": "public-inbox", "is_public": "on"}, follow=True
    )
    assert b"cannot be public" in response.content
    assert not Collection.objects.filter(title="public-inbox").exists()
