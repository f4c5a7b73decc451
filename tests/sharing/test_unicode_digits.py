"""Numbers in requests are ASCII digits: "²" and other Unicode digits pass ``str.isdigit`` but
not ``int``, and must get a 4xx (or be ignored), never a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sharing.numbers import natural_number

pytestmark = pytest.mark.django_db

TAXII = "application/taxii+json;version=2.1"


@pytest.mark.parametrize(
    "raw, number", [("0", 0), ("42", 42), ("²", None), ("٣", None), ("-1", None), ("", None), (None, None)]
)
def test_natural_numbers_are_ascii_digits_only(raw, number):
    assert natural_number(raw) == number


@pytest.fixture
def operator(make_org):
    from sharing.services import GrantSpec, collection_create, token_issue

    hub = make_org("Node Operator", "hub", trusted=True)
    feed = collection_create(title="Feed", grants=[GrantSpec(hub, True, True)])
    _, plaintext = token_issue(organisation=hub, scopes="read,write,admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client, feed


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/v1/objects/?page_size=²", 400),
        ("/api/v1/matches/?page_size=²", 400),
        ("/api/v1/matches/?account=²", 400),
        ("/api/v1/clusters/?min_size=²", 400),
        ("/api/v1/feedback/reports/²/", 404),
        ("/api/v1/subscriptions/²/", 404),
    ],
)
def test_rest_answers_unicode_digits_with_a_4xx(operator, path, status):
    client, _ = operator
    assert client.get(path).status_code == status


def test_taxii_answers_a_unicode_digit_limit_with_a_400_error_resource(operator):
    client, feed = operator
    response = client.get(f"/taxii2/api/collections/{feed.pk}/objects/?limit=²", HTTP_ACCEPT=TAXII)
    assert response.status_code == 400 and "limit" in response.json()["description"]


def test_a_retry_after_in_unicode_digits_is_no_delay_rather_than_a_crash():
    import requests

    from sharing.federation import _retry_after_seconds

    response = requests.Response()
    response.headers["Retry-After"] = "²"
    assert _retry_after_seconds(response) is None


def test_the_review_queue_ignores_an_item_id_in_unicode_digits(make_org, django_user_model, client):
    from sharing.models import Membership

    hub = make_org("Node Operator", "hub", trusted=True)
    reviewer = django_user_model.objects.create_user("rey", password="correct-horse-battery-9")
    Membership.objects.create(user=reviewer, organisation=hub, role="reviewer")
    client.force_login(reviewer)
    response = client.post("/review/decide/", {"action": "approve", "items": ["²"]}, follow=True)
    assert response.status_code == 200 and "Select at least one object first." in response.content.decode()
