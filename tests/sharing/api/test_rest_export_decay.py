"""?min_score= on the collection exports, and decay_score in object results (DOMAIN.md §4.4 TTLs)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.sharing.api.helpers import PAST, campaign, indicator
from tests.sharing.api.test_rest_exports import HASH_PATTERN, export


def days_ago(days: float) -> str:
    return f"{datetime.now(tz=UTC) - timedelta(days=days):%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture
def aged(cast, publish):
    """Indicators of known age, none with valid_until: the class TTL sets their lifetime.

    * fresh_ip   residential /24, 1 of 14 days:  100 × (1 − (1/14)²)  ≈ 99
    * stale_ip   residential /24, 12 of 14 days: 100 × (1 − (12/14)²) ≈ 27
    * old_hash   hashed identifier, 12 of 180 days: ≈ 100
    * stale_hash hashed identifier, 150 of 180 days: 100 × (1 − (150/180)²) ≈ 31
    * expired    residential /24 past valid_until: 0
    """
    objects = {
        "fresh_ip": indicator(pattern="[ipv4-addr:value ISSUBSET '198.51.100.0/24']", valid_from=days_ago(1)),
        "stale_ip": indicator(pattern="[ipv4-addr:value ISSUBSET '203.0.113.0/24']", valid_from=days_ago(12)),
        "old_hash": indicator(pattern=HASH_PATTERN.format("a" * 64), valid_from=days_ago(12)),
        "stale_hash": indicator(pattern=HASH_PATTERN.format("b" * 64), valid_from=days_ago(150)),
        "expired": indicator(
            pattern="[ipv4-addr:value = '192.0.2.9']", valid_from=days_ago(20), valid_until=PAST
        ),
        "campaign": campaign(),
        "sco": {
            "type": "ipv4-addr",
            "spec_version": "2.1",
            "id": f"ipv4-addr--{uuid.uuid4()}",
            "value": "192.0.2.7",
        },
    }
    publish(list(objects.values()))
    return {name: obj["id"] for name, obj in objects.items()}


def stix_ids(member, collection, **params) -> set[str]:
    response, body = export(member, collection, "stix/", **params)
    assert response.status_code == 200, body
    return {o["id"] for o in json.loads(body)["objects"] if not o["id"].startswith("marking-definition--")}


def test_min_score_leaves_stale_indicators_out_of_the_stix_export(cast, aged):
    everything = {aged[n] for n in ("fresh_ip", "stale_ip", "old_hash", "stale_hash", "campaign", "sco")}
    assert stix_ids(cast.alice, cast.feed) == everything
    assert stix_ids(cast.alice, cast.feed, min_score="0") == everything
    # Objects without a score (campaign, SCO) stay.
    assert stix_ids(cast.alice, cast.feed, min_score="50") == {
        aged[n] for n in ("fresh_ip", "old_hash", "campaign", "sco")
    }
    assert stix_ids(cast.alice, cast.feed, min_score="30") == {
        aged[n] for n in ("fresh_ip", "old_hash", "stale_hash", "campaign", "sco")
    }


def test_a_score_floor_also_drops_expired_indicators_asked_for_with_include_expired(cast, aged):
    assert aged["expired"] in stix_ids(cast.alice, cast.feed, include_expired="true")
    assert aged["expired"] in stix_ids(cast.alice, cast.feed, include_expired="true", min_score="0")
    assert aged["expired"] not in stix_ids(cast.alice, cast.feed, include_expired="true", min_score="1")


def test_min_score_filters_the_csv_ip_and_hash_exports(cast, aged):
    response, body = export(cast.alice, cast.feed, "csv/", min_score="50")
    assert response.status_code == 200
    assert {row["id"] for row in csv.DictReader(io.StringIO(body))} == {
        aged[n] for n in ("fresh_ip", "old_hash", "campaign", "sco")
    }
    assert export(cast.alice, cast.feed, "ips.txt")[1].splitlines() == [
        "192.0.2.7",
        "198.51.100.0/24",
        "203.0.113.0/24",
    ]
    assert export(cast.alice, cast.feed, "ips.txt", min_score="50")[1].splitlines() == [
        "192.0.2.7",  # the ipv4-addr SCO has no score
        "198.51.100.0/24",
    ]
    assert export(cast.alice, cast.feed, "hashes.txt", min_score="50")[1].splitlines() == [
        f"email-canonical\tmdx-2026q4\t{'a' * 64}"
    ]
    assert len(export(cast.alice, cast.feed, "hashes.txt")[1].splitlines()) == 2


@pytest.mark.parametrize("kind", ["stix/", "csv/", "ips.txt", "hashes.txt"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("101", "less than or equal to 100"),
        ("-1", "greater than or equal to 0"),
        ("lots", "valid integer"),
    ],
)
def test_min_score_must_be_an_integer_from_0_to_100(cast, kind, value, message):
    response, body = export(cast.alice, cast.feed, kind, min_score=value)
    assert response.status_code == 400
    assert message in " ".join(json.loads(body)["errors"]["min_score"])


def test_object_results_carry_the_decay_score_of_indicators(cast, aged):
    response = cast.alice.client().get("/api/v1/objects/", {"type": "indicator,campaign"})
    assert response.status_code == 200
    scores = {row["id"]: row["decay_score"] for row in response.json()["results"]}
    assert scores[aged["campaign"]] is None
    assert scores[aged["expired"]] == 0
    assert scores[aged["fresh_ip"]] == 99
    assert scores[aged["stale_ip"]] == 27
    assert scores[aged["stale_hash"]] == 31
    detail = cast.alice.client().get(f"/api/v1/objects/{aged['stale_ip']}/").json()
    assert detail["object"]["decay_score"] == 27
