"""Web basics: sign-in, the home page, /healthz, and the admin for every model."""

from __future__ import annotations

from unittest import mock

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import OperationalError
from django.urls import reverse

from sharing.models import Membership


@pytest.fixture
def member(db, make_org, django_user_model):
    """A reviewer on the node operator's staff (web UI roles come from operator organisations)."""
    operator = make_org("Hub Operator", "hub", trusted=True)
    user = django_user_model.objects.create_user("reviewer1", password="a-long-passphrase-1")
    Membership.objects.create(user=user, organisation=operator, role="reviewer")
    return user


def test_root_is_a_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert b'name="password"' in response.content and b"csrfmiddlewaretoken" in response.content


def test_signing_in_leads_to_the_home_page(client, member):
    response = client.post("/", {"username": "reviewer1", "password": "a-long-passphrase-1"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    page = client.get(reverse("home"))
    assert page.status_code == 200
    assert b"Hub Operator" in page.content and b"Reviewer" in page.content


def test_wrong_password_stays_on_the_login_page(client, member):
    response = client.post("/", {"username": "reviewer1", "password": "wrong"})
    assert response.status_code == 200 and b"didn't match" in response.content


def test_home_requires_sign_in(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith("/?next=")


def test_healthz_reports_the_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["database"]["ok"] is True


def test_healthz_is_503_when_the_database_is_down(client, db):
    with mock.patch("sharing.health.connection.cursor", side_effect=OperationalError("connection refused")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "detail": "OperationalError: connection refused",
    }


def test_healthz_is_503_when_a_configured_broker_is_unreachable(client, db, settings):
    settings.CELERY_BROKER_CONFIGURED = True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.requires_redis
def test_healthz_checks_the_real_broker(client, db, settings):
    assert settings.CELERY_BROKER_CONFIGURED
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["checks"]["broker"]["ok"] is True


def test_every_model_is_registered_in_the_admin_and_its_pages_load(admin_client):
    models = [m for app in ("indicators", "sharing") for m in apps.get_app_config(app).get_models()]
    assert len(models) >= 10
    for model in models:
        assert admin.site.is_registered(model), model
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
