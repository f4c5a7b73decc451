"""The object list and detail pages mark expired indicators and show each indicator's decay score."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from indicators.models import StixObject
from tests.stix_builders import make_indicator

HASH = "[mdx-hashed-identifier:value = '" + "ab" * 32 + "']"


def days_ago(days: float) -> str:
    return f"{datetime.now(tz=UTC) - timedelta(days=days):%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture
def indicators(submit):
    """fresh: residential /24, 7 of 14 days → 100 × (1 − 0.5²) = 75; expired: valid_until passed;
    revoked; hashed: identifier with valid_until, 10 of 20 days → 75."""
    objects = {
        "fresh": make_indicator(name="Fresh proxy range", valid_from=days_ago(7)),
        "expired": make_indicator(
            name="Old proxy range", valid_from="2021-01-01T00:00:00Z", valid_until="2021-02-01T00:00:00Z"
        ),
        "revoked": make_indicator(name="Withdrawn range", valid_from=days_ago(1), revoked=True),
        "hashed": make_indicator(
            name="Keyed email hash", pattern=HASH, valid_from=days_ago(10), valid_until=days_ago(-10)
        ),
        "campaign": {
            "type": "campaign",
            "spec_version": "2.1",
            "id": "campaign--5b8a9c34-9b7c-4f0e-8f55-1d1f6b6f4b11",
            "created": "2026-11-01T00:00:00.000Z",
            "modified": "2026-11-01T00:00:00.000Z",
            "name": "Hydra campaign",
        },
    }
    submit(list(objects.values()))
    return {key: StixObject.objects.get(stix_id=obj["id"]) for key, obj in objects.items()}


def row(page: str, name: str) -> str:
    [found] = [r for r in re.findall(r"<tr>.*?</tr>", page, flags=re.S) if name in r]
    return found


def decay_cell(html: str) -> str:
    """The text of the first decay cell, tags dropped and whitespace collapsed."""
    match = re.search(r'data-testid="decay"[^>]*>(.*?)</(?:td|dd)>', html, flags=re.S)
    assert match, html
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_the_object_list_shows_decay_scores_and_marks_expired_and_revoked(web, client_for, indicators):
    page = client_for(web.viewer).get(reverse("web:objects")).content.decode()
    fresh = row(page, "Fresh proxy range")
    assert decay_cell(fresh) == "75 · residential IP, 14 d"
    assert 'style="--v: 75%"' in fresh
    assert "expired" not in fresh and "revoked" not in fresh

    expired = row(page, "Old proxy range")
    assert 'data-testid="expired">expired<' in expired
    assert decay_cell(expired) == "0 · residential IP, 14 d"

    revoked = row(page, "Withdrawn range")
    assert 'pill-bad">revoked<' in revoked and decay_cell(revoked) == "0 · residential IP, 14 d"
    assert 'data-testid="expired"' not in revoked

    assert decay_cell(row(page, "Keyed email hash")) == "75 · hashed identifier or payment, 180 d"
    assert decay_cell(row(page, "Hydra campaign")) == "—"


def test_the_object_list_htmx_partial_has_the_decay_column(web, client_for, indicators):
    response = client_for(web.viewer).get(reverse("web:objects"), {"q": "Old proxy"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="expired">expired<' in html


def test_the_object_detail_marks_an_expired_indicator(web, client_for, indicators):
    client = client_for(web.viewer)
    page = client.get(reverse("web:object-detail", args=[indicators["expired"].pk])).content.decode()
    assert 'data-testid="expired">expired<' in page
    assert decay_cell(page) == "0 · residential IP, 14 d expired 2021-02-01 00:00 UTC"


def test_the_object_detail_shows_the_score_of_a_fresh_indicator(web, client_for, indicators):
    client = client_for(web.viewer)
    page = client.get(reverse("web:object-detail", args=[indicators["fresh"].pk])).content.decode()
    assert 'data-testid="expired"' not in page
    assert decay_cell(page).startswith("75 · residential IP, 14 d lifetime 14 d, reaches 0 on ")
    page = client.get(reverse("web:object-detail", args=[indicators["campaign"].pk])).content.decode()
    assert 'data-testid="decay"' not in page
