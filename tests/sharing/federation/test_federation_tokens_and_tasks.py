"""Token storage (encrypted at rest or from the environment) and the Celery tasks' claiming."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sharing import federation, tasks
from sharing.federation import (
    TokenUnavailable,
    subscription_claim,
    subscription_poll,
    subscription_token,
    subscriptions_due,
    token_decrypt,
    token_encrypt,
)
from sharing.models import Subscription

pytestmark = pytest.mark.django_db

PLAINTEXT = "mdx_abcdef12_S3cretTokenValueThatMustNeverBeStoredInPlain0123"


def add(fed_cast, name="Upstream Hub", **kwargs):
    kwargs.setdefault("token", PLAINTEXT)
    return federation.subscription_add(
        name=name,
        discovery_url="http://127.0.0.1:9/taxii2/",
        collection_id="4b0e6c1d-9a7f-4e2b-8c3d-1f2a3b4c5d6e",
        into=str(fed_cast.mirror.pk),
        **kwargs,
    )


def test_the_token_is_encrypted_at_rest_and_its_plaintext_is_nowhere_in_the_database(fed_cast):
    sub = add(fed_cast)
    assert sub.token_ciphertext and sub.token_ciphertext != PLAINTEXT
    assert subscription_token(Subscription.objects.get(pk=sub.pk)) == PLAINTEXT
    secret = PLAINTEXT.rsplit("_", 1)[-1]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                dumped = " ".join(str(v) for v in row)
                assert PLAINTEXT not in dumped, table
                assert secret not in dumped, table


def test_encryption_is_fernet_with_a_key_derived_from_secret_key_unless_one_is_configured(settings):
    first, second = token_encrypt(PLAINTEXT), token_encrypt(PLAINTEXT)
    assert first != second  # random IV: equal tokens do not look equal
    assert token_decrypt(first) == PLAINTEXT

    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(TokenUnavailable, match="cannot be decrypted"):
        token_decrypt(first)

    settings.MDX_FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
    explicit = token_encrypt(PLAINTEXT)
    settings.SECRET_KEY = "yet-another-secret-key"  # irrelevant once the explicit key is set
    assert token_decrypt(explicit) == PLAINTEXT

    settings.MDX_FIELD_ENCRYPTION_KEY = "too-short"
    with pytest.raises(TokenUnavailable, match="32 bytes"):
        token_encrypt(PLAINTEXT)


def test_a_token_env_subscription_stores_no_token(fed_cast, monkeypatch):
    sub = add(fed_cast, token=None, token_env="MDX_FED_TEST_TOKEN")
    assert sub.token_ciphertext == ""
    monkeypatch.delenv("MDX_FED_TEST_TOKEN", raising=False)
    with pytest.raises(TokenUnavailable, match="MDX_FED_TEST_TOKEN is not set"):
        subscription_token(sub)
    monkeypatch.setenv("MDX_FED_TEST_TOKEN", "from-the-env")
    assert subscription_token(sub) == "from-the-env"
    assert "from-the-env" not in str(list(Subscription.objects.values()))
    assert os.environ["MDX_FED_TEST_TOKEN"] == "from-the-env"


def test_a_claim_is_exclusive_until_its_lease_expires(fed_cast):
    sub = add(fed_cast)
    assert subscription_claim(sub.pk) is not None
    assert subscription_claim(sub.pk) is None
    assert subscription_claim(sub.pk, force=True) is None
    skipped = subscription_poll(sub)
    assert skipped.skipped and not skipped.ok and "another poll" in skipped.error
    Subscription.objects.filter(pk=sub.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert subscription_claim(sub.pk) is not None


def test_only_due_active_unclaimed_subscriptions_are_claimed_without_force(fed_cast):
    now = timezone.now()
    due = add(fed_cast, "Due")
    later = add(fed_cast, "Later")
    paused = add(fed_cast, "Paused")
    busy = add(fed_cast, "Busy")
    Subscription.objects.filter(pk=later.pk).update(next_poll_at=now + timedelta(minutes=5))
    Subscription.objects.filter(pk=paused.pk).update(is_active=False)
    Subscription.objects.filter(pk=busy.pk).update(lease_until=now + timedelta(minutes=5))

    assert subscriptions_due() == [due.pk]
    assert subscription_claim(later.pk) is None and subscription_claim(paused.pk) is None
    assert subscription_claim(later.pk, force=True) is not None  # "poll now" ignores the schedule


def test_beat_enqueues_every_due_subscription(fed_cast, monkeypatch):
    first, second = add(fed_cast, "First"), add(fed_cast, "Second")
    Subscription.objects.filter(pk=second.pk).update(next_poll_at=timezone.now() + timedelta(hours=1))
    queued = []
    monkeypatch.setattr(tasks.poll_subscription, "delay", lambda pk, **kw: queued.append(pk))

    assert tasks.poll_due_subscriptions() == 1
    assert queued == [first.pk]


def test_the_beat_schedule_polls_due_subscriptions_every_minute():
    from config.celery import app

    entry = app.conf.beat_schedule["mdx-poll-subscriptions"]
    assert entry["task"] == "sharing.tasks.poll_due_subscriptions"
    assert entry["schedule"] == timedelta(minutes=1)
    assert tasks.poll_subscription.acks_late


def test_the_task_ignores_a_subscription_that_is_not_due_and_a_missing_one(fed_cast, monkeypatch):
    sub = add(fed_cast)
    Subscription.objects.filter(pk=sub.pk).update(next_poll_at=timezone.now() + timedelta(hours=1))
    monkeypatch.setattr(federation, "_poll", lambda *a: pytest.fail("must not poll"))
    assert tasks.poll_subscription(sub.pk)["skipped"] is True  # a duplicate enqueue does nothing
    assert tasks.poll_subscription(10**9) == {
        "subscription_id": 10**9,
        "ok": False,
        "error": "no such subscription",
    }
