"""Per-token rate limit: 429 with Retry-After, counted per token rather than per client address."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from sharing.api.throttling import TokenRateThrottle


@pytest.fixture
def three_per_minute(settings, cast):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "3/min"}}
    keys = [
        TokenRateThrottle.cache_format % {"scope": "token", "ident": m.token.prefix}
        for m in (cast.alice, cast.dana)
    ]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def test_fourth_request_in_a_minute_gets_429_with_retry_after(cast, three_per_minute):
    client = cast.alice.client()
    for _ in range(3):
        assert client.get("/api/v1/objects/").status_code == 200
    response = client.get("/api/v1/collections/")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()


def test_the_limit_is_per_token_not_per_address(cast, three_per_minute):
    for _ in range(4):
        cast.alice.client().get("/api/v1/objects/")
    assert cast.alice.client().get("/api/v1/objects/").status_code == 429
    # Same client address (127.0.0.1), another token: its own budget.
    assert cast.dana.client().get("/api/v1/objects/").status_code == 200


def test_every_rest_view_is_throttled(cast, three_per_minute):
    from sharing.api import urls, views

    throttled = [
        p.callback.view_class
        for p in urls.urlpatterns
        if hasattr(p.callback, "view_class") and issubclass(p.callback.view_class, views.RestApiView)
    ]
    assert len(throttled) == 11
    assert all(TokenRateThrottle in cls.throttle_classes for cls in throttled)


def test_schema_and_docs_are_not_throttled(cast, three_per_minute):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {cast.alice.plaintext}")
    for _ in range(5):
        assert client.get("/api/v1/schema/").status_code == 200
        assert client.get("/api/v1/docs/").status_code == 200
