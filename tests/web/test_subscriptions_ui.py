"""The subscriptions page: health per subscription, admin-only "Poll now", and never the token."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing.models import AuditEvent, Subscription

TOKEN = "s3cret-remote-token-value-0123456789abcdef"


@pytest.fixture
def subscriptions(web):
    from sharing.federation import subscription_add

    healthy = subscription_add(
        name="Upstream consortium",
        discovery_url="https://hub.example.org/taxii2/",
        collection_id=str(uuid.uuid4()),
        into=str(web.feed.pk),
        token=TOKEN,
    )
    now = timezone.now()
    Subscription.objects.filter(pk=healthy.pk).update(
        last_success_at=now - timedelta(minutes=3),
        objects_received=1234,
        cursor_added_after="2026-11-23T10:11:12.123456Z",
        next_poll_at=now + timedelta(minutes=2),
    )
    failing = subscription_add(
        name="Flaky partner hub",
        discovery_url="https://flaky.example.net/taxii2/",
        collection_id=str(uuid.uuid4()),
        into=str(web.feed.pk),
        token_env="FLAKY_TOKEN",
        review=True,
    )
    Subscription.objects.filter(pk=failing.pk).update(
        last_error="the remote rejected the token (HTTP 401): https://flaky.example.net/taxii2/",
        last_error_at=now - timedelta(minutes=10),
        consecutive_failures=4,
    )
    return {
        "healthy": Subscription.objects.get(pk=healthy.pk),
        "failing": Subscription.objects.get(pk=failing.pk),
    }


def test_the_page_shows_health_per_subscription(web, subscriptions, client_for):
    html = client_for(web.reviewer).get(reverse("web:subscriptions")).content.decode()
    healthy = html[html.index(f'id="subscription-{subscriptions["healthy"].pk}"') :].split("</tr>")[0]
    failing = html[html.index(f'id="subscription-{subscriptions["failing"].pk}"') :].split("</tr>")[0]
    assert "Upstream consortium" in healthy and ">Healthy<" in healthy
    assert "1234" in healthy and "2026-11-23T10:11:12.123456Z" in healthy
    assert "3\xa0minutes ago" in healthy
    assert "in 1\xa0minute" in healthy or "in 2\xa0minutes" in healthy
    assert "token: encrypted" in healthy
    assert ">Failing<" in failing and "HTTP 401" in failing and ">4</strong>" in failing
    assert subscriptions["failing"].last_error_at.strftime("%Y-%m-%d %H:%M") in failing
    assert "token: env:FLAKY_TOKEN" in failing and "review" in failing


def test_the_page_never_contains_the_token(web, subscriptions, client_for):
    for user in (web.admin_user, web.reviewer):
        html = client_for(user).get(reverse("web:subscriptions")).content.decode()
        assert TOKEN not in html
        assert subscriptions["healthy"].token_ciphertext not in html
        assert subscriptions["healthy"].token_ciphertext[:24] not in html


def test_reviewers_read_without_poll_buttons_viewers_are_refused(web, subscriptions, client_for):
    reviewer_html = client_for(web.reviewer).get(reverse("web:subscriptions")).content.decode()
    assert "Poll now" not in reviewer_html
    assert client_for(web.viewer).get(reverse("web:subscriptions")).status_code == 403
    admin_html = client_for(web.admin_user).get(reverse("web:subscriptions")).content.decode()
    assert admin_html.count(">Poll now</button>") == 2


def test_only_admins_poll(web, subscriptions, client_for, monkeypatch, django_capture_on_commit_callbacks):
    from sharing import tasks

    queued = []
    monkeypatch.setattr(tasks.poll_subscription, "delay", lambda *a, **kw: queued.append((a, kw)))
    url = reverse("web:subscription-poll", args=[subscriptions["failing"].pk])
    for user in (web.reviewer, web.viewer):
        with django_capture_on_commit_callbacks(execute=True):
            assert client_for(user).post(url).status_code == 403
    assert queued == [] and not AuditEvent.objects.filter(action="subscription.poll").exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(web.admin_user).post(url)
    assert response.status_code == 302 and response["Location"] == reverse("web:subscriptions")
    assert queued == [((subscriptions["failing"].pk,), {"force": True})]
    event = AuditEvent.objects.get(action="subscription.poll")
    assert event.actor_user == web.admin_user and event.target_id == str(subscriptions["failing"].pk)


def test_anonymous_users_are_sent_to_sign_in(web, subscriptions, client):
    page = client.get(reverse("web:subscriptions"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    poll = client.post(reverse("web:subscription-poll", args=[subscriptions["healthy"].pk]))
    assert poll.status_code == 302 and poll["Location"].startswith(reverse("login"))


def test_poll_now_enforces_csrf(web, subscriptions):
    client = Client(enforce_csrf_checks=True)
    client.force_login(web.admin_user)
    response = client.post(reverse("web:subscription-poll", args=[subscriptions["healthy"].pk]))
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="subscription.poll").exists()


def test_subscriptions_are_in_the_navigation_for_reviewers_only(web, client_for):
    link = f'href="{reverse("web:subscriptions")}"'
    assert link in client_for(web.reviewer).get(reverse("home")).content.decode()
    assert link not in client_for(web.viewer).get(reverse("home")).content.decode()
