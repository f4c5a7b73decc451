"""Pages render what reviewers and admins need: dashboard charts, queue filters, detail, admin forms."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.models import AuditEvent, Membership, Organisation, Submission, SubmissionItem
from sharing.review import submission_item_approve
from sharing.web.charts import bar_chart, neighbourhood_graph
from tests.stix_builders import make_indicator


def test_the_dashboard_shows_pending_counts_charts_and_activity(web, submit, client_for):
    submit([make_indicator(), make_indicator()])
    AuditEvent.objects.create(action="feed.pull", actor_label="token x")
    page = client_for(web.reviewer).get(reverse("home")).content.decode()
    assert 'data-testid="pending-count">2<' in page
    assert page.count('<svg class="chart"') == 3
    for title in ("Submissions per day", "Publications per day", "Feed pulls per day"):
        assert title in page
    assert "Borealis Research" in page and "submission.create" in page


def test_bar_charts_have_axes_labels_and_one_bar_per_day():
    today = timezone.now().date()
    series = [(today - timedelta(days=i), i) for i in range(13, -1, -1)]
    svg = str(bar_chart(series, title="Things <per> day"))
    assert svg.count("<rect") == 14 and "Things &lt;per&gt; day" in svg
    assert 'class="axis"' in svg and "day (UTC)" in svg and ">20</text>" in svg  # 13 rounds up to 20
    assert today.strftime("%d %b") in svg


def test_the_graph_escapes_labels_and_links_neighbours():
    svg = str(
        neighbourhood_graph(
            {"label": "<b>", "type": "indicator"},
            [{"label": "Hydra", "type": "campaign", "relation": "indicates", "url": "/objects/2/"}],
        )
    )
    assert "&lt;b&gt;" in svg and 'href="/objects/2/"' in svg and "indicates" in svg


def test_the_queue_filters_by_organisation_type_tlp_and_age(web, submit, client_for, make_org):
    submit([make_indicator(name="amber one"), make_indicator(name="red one", tlp="red")])
    old = submit([make_indicator(name="old one")])
    Submission.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=9))
    client = client_for(web.reviewer)

    def names(**params):
        page = client.get(reverse("web:queue"), params).content.decode()
        return {n for n in ("amber one", "red one", "old one") if n in page}

    assert names() == {"amber one", "red one", "old one"}
    assert names(tlp="red") == {"red one"}
    assert names(age="1d") == {"amber one", "red one"}
    assert names(age="old") == {"old one"}
    assert names(type="indicator", organisation=web.partner.pk) == {"amber one", "red one", "old one"}
    assert names(organisation=web.hub.pk) == set()


def test_htmx_filter_requests_get_only_the_results(web, submit, client_for):
    submit([make_indicator(name="amber one")])
    response = client_for(web.reviewer).get(reverse("web:queue"), {"tlp": "amber"}, HTTP_HX_REQUEST="true")
    assert b"amber one" in response.content and b"<html" not in response.content


def test_bulk_reject_needs_a_reason_and_records_it(web, submit, client_for):
    submission = submit([make_indicator(), make_indicator()])
    ids = list(submission.items.values_list("pk", flat=True))
    client = client_for(web.reviewer)
    client.post(reverse("web:queue-bulk"), {"action": "reject", "items": ids, "reason": ""})
    assert set(submission.items.values_list("state", flat=True)) == {"pending"}
    client.post(reverse("web:queue-bulk"), {"action": "reject", "items": ids, "reason": "duplicates"})
    assert set(submission.items.values_list("state", "message")) == {("failure", "duplicates")}


def test_the_submission_page_shows_pattern_warnings_diff_and_buttons(web, submit, client_for):
    first = make_indicator(pattern="[ipv4-addr:value ISSUBSET '203.0.113.0/24']")
    approved = submit([first])
    submission_item_approve(item=approved.items.get(), user=web.reviewer)
    second = submit([dict(first, modified="2026-11-24T00:00:00.000Z", confidence=90)])
    page = client_for(web.reviewer).get(reverse("web:submission", args=[second.pk])).content.decode()
    assert "203.0.113.0/24" in page and "known-benign" in page and "TLP:AMBER" in page
    assert "Changes since the previous version" in page and "+  &quot;confidence&quot;: 90," in page
    assert page.count(">Approve</button>") == 2 and page.count(">Reject</button>") == 2
    assert 'name="reason" required' in page


def test_htmx_decisions_return_the_card_and_the_summary(web, submit, client_for):
    submission = submit([make_indicator(), make_indicator()])
    item = submission.items.get(position=0)
    response = client_for(web.reviewer).post(
        reverse("web:item-reject", args=[item.pk]), {"reason": "noise"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and f'id="item-{item.pk}"' in body
    assert 'hx-swap-oob="true"' in body and "noise" in body


def test_the_object_page_shows_versions_relationships_and_graph(web, submit, client_for):
    indicator = make_indicator(name="Proxy pool")
    campaign = {
        "type": "campaign",
        "spec_version": "2.1",
        "id": "campaign--5b8a9c34-9b7c-4f0e-8f55-1d1f6b6f4b11",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "name": "Hydra",
    }
    rel = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--0c1f1f57-2b0e-4a0e-9d8f-1b1e1a1c1d1e",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "relationship_type": "indicates",
        "source_ref": indicator["id"],
        "target_ref": campaign["id"],
    }
    submission = submit([indicator, campaign, rel])
    obj = submission.items.get(position=0).stix_object
    page = client_for(web.viewer).get(reverse("web:object-detail", args=[obj.pk])).content.decode()
    assert 'class="graph"' in page and "Hydra" in page and "indicates" in page
    assert "Version history" in page and "Pending" in page


def test_admins_create_organisations_members_collections_and_grants(web, client_for):
    client = client_for(web.admin_user)
    client.post(
        reverse("web:organisation-create"),
        {"name": "Cirrus Cloud", "kind": "cloud", "review_policy": "trusted"},
    )
    org = Organisation.objects.get(name="Cirrus Cloud")
    assert org.is_trusted
    client.post(reverse("web:organisation-policy", args=[org.pk]), {"review_policy": "review"})
    org.refresh_from_db()
    assert not org.is_trusted
    response = client.post(
        reverse("web:organisation-member-add", args=[org.pk]), {"username": "newbie", "role": "reviewer"}
    )
    assert response.status_code == 200 and b"Initial password" in response.content
    membership = Membership.objects.get(user__username="newbie")
    assert membership.role == "reviewer"
    client.post(reverse("web:organisation-member-remove", args=[org.pk, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    client.post(reverse("web:collection-create"), {"title": "cirrus-feed", "tlp_ceiling": "green"})
    from sharing.models import Collection, Grant

    collection = Collection.objects.get(title="cirrus-feed")
    client.post(
        reverse("web:collection-grant", args=[collection.pk]),
        {"organisation": org.pk, "can_read": "on", "tlp_ceiling": "green"},
    )
    assert Grant.objects.filter(
        organisation=org, collection=collection, can_read=True, can_write=False
    ).exists()
    actions = set(AuditEvent.objects.filter(actor_user=web.admin_user).values_list("action", flat=True))
    assert {
        "organisation.create",
        "organisation.policy",
        "membership.set",
        "membership.remove",
        "collection.create",
        "grant.set",
        "user.create",
    } <= actions


def test_the_audit_log_filters(web, client_for):
    AuditEvent.objects.create(action="feed.pull", actor_label="token abc")
    AuditEvent.objects.create(action="token.issue", actor_label="ada")
    client = client_for(web.reviewer)
    page = client.get(reverse("web:audit"), {"action": "feed.pull"}).content.decode()
    assert "token abc" in page and ">ada<" not in page
    page = client.get(reverse("web:audit"), {"actor": "ada"}).content.decode()
    assert "token abc" not in page


@pytest.mark.django_db
def test_demo_submissions_are_pending_and_idempotent():
    from django.core.management import call_command

    from sharing.demo_submissions import demo_submissions_create

    call_command("demo", "--no-migrate", stdout=io.StringIO())
    borealis = Organisation.objects.get(name="Borealis Research")
    pending = SubmissionItem.objects.filter(submission__organisation=borealis, state="pending")
    assert pending.count() >= 5
    assert demo_submissions_create() == 0
    assert (
        SubmissionItem.objects.filter(submission__organisation=borealis, state="pending").count()
        == pending.count()
    )
    from django.contrib.auth import get_user_model

    assert Membership.objects.get(user__username="reviewer").role == "reviewer"
    assert Membership.objects.get(user__username="viewer").role == "viewer"
    assert get_user_model().objects.filter(username="reviewer").exists()
