"""Collection exports: STIX bundle, CSV, ips.txt and hashes.txt."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

from indicators.stix import TLP_MARKING_OBJECTS
from tests.conftest import load_bundle
from tests.sharing.api.helpers import FUTURE, PAST, indicator

HASH_PATTERN = (
    "[mdx-hashed-identifier:identifier_type = 'email-canonical' AND "
    "mdx-hashed-identifier:key_id = 'mdx-2026q4' AND mdx-hashed-identifier:value = '{}']"
)


def export(member, collection, kind, **params):
    response = member.client().get(f"/api/v1/collections/{collection.pk}/export/{kind}", params)
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    return response, body


def hashed_identifier_sco(value: str) -> dict:
    [sco] = [
        o
        for o in load_bundle("examples-bundle.json")["objects"]
        if o["type"] == "mdx-hashed-identifier" and o["identifier_type"] == "phone"
    ]
    return dict(sco, id=f"mdx-hashed-identifier--{uuid.uuid4()}", value=value)


def test_stix_export_is_a_bundle_with_tlp_markings(cast, publish):
    amber, green = indicator(tlp="amber"), indicator(tlp="green")
    publish([amber, green])
    response, body = export(cast.alice, cast.feed, "stix/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/stix+json;version=2.1"
    bundle = json.loads(body)
    assert bundle["type"] == "bundle" and bundle["id"].startswith("bundle--")
    got = [o["id"] for o in bundle["objects"]]
    assert got[:5] == [m["id"] for m in TLP_MARKING_OBJECTS]
    assert got[5:] == [amber["id"], green["id"]]


def test_stix_export_has_latest_versions_and_skips_revoked_and_expired(cast, publish):
    v1 = indicator(modified="2026-11-01T00:00:00.000Z")
    v2 = dict(v1, modified="2026-11-02T00:00:00.000Z")
    revoked, expired, active = (
        indicator(revoked=True),
        indicator(valid_until=PAST),
        indicator(valid_until=FUTURE),
    )
    publish([v1, revoked, expired, active])
    publish([v2])
    objects = json.loads(export(cast.alice, cast.feed, "stix/")[1])["objects"][5:]
    assert [(o["id"], o["modified"]) for o in objects] == [
        (active["id"], active["modified"]),
        (v1["id"], v2["modified"]),
    ]
    objects = json.loads(export(cast.alice, cast.feed, "stix/", include_expired="true")[1])["objects"][5:]
    assert {o["id"] for o in objects} == {active["id"], v1["id"], expired["id"]}


def test_include_expired_must_be_a_boolean(cast):
    response, body = export(cast.alice, cast.feed, "csv/", include_expired="maybe")
    assert response.status_code == 400
    assert "include_expired" in json.loads(body)["errors"]


def test_csv_export_parses_with_one_row_per_object(cast, publish):
    obj = indicator(
        name='Comma, "quoted" name',
        labels=["proxy", "reseller"],
        confidence=80,
        created_by_ref=cast.alice.org.identity_id,
        tlp="green",
        valid_until=FUTURE,
    )
    publish([obj, indicator()])
    response, body = export(cast.alice, cast.feed, "csv/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2
    assert list(rows[0]) == [
        "id",
        "type",
        "name",
        "pattern",
        "valid_from",
        "valid_until",
        "confidence",
        "tlp",
        "labels",
        "created_by_ref",
        "modified",
    ]
    assert rows[0] == {
        "id": obj["id"],
        "type": "indicator",
        "name": 'Comma, "quoted" name',
        "pattern": obj["pattern"],
        "valid_from": obj["valid_from"],
        "valid_until": FUTURE,
        "confidence": "80",
        "tlp": "green",
        "labels": "proxy;reseller",
        "created_by_ref": cast.alice.org.identity_id,
        "modified": obj["modified"],
    }


def test_ips_export_lists_cidrs_and_addresses_sorted_and_deduplicated(cast, publish):
    publish(
        [
            indicator(pattern="[ipv4-addr:value ISSUBSET '198.51.100.0/24']"),
            indicator(
                pattern="[ipv4-addr:value = '203.0.113.9'] OR [ipv6-addr:value ISSUBSET '2001:db8::/32']"
            ),
            indicator(
                pattern="[ipv4-addr:value ISSUBSET '198.51.100.0/24' AND ipv4-addr:value != '198.51.100.7']"
            ),
            indicator(pattern="[ipv4-addr:value NOT = '192.0.2.1']"),
            indicator(pattern="[network-traffic:dst_ref.value = '192.0.2.2']"),
            indicator(pattern="[mdx-ai-account:signup_ip_ref.value ISSUBSET '192.0.2.0/28']"),
            indicator(pattern="[ipv4-addr:value ISSUBSET '10.1.2.3/8']"),
            {
                "type": "ipv4-addr",
                "spec_version": "2.1",
                "id": f"ipv4-addr--{uuid.uuid4()}",
                "value": "203.0.113.7",
            },
            {
                "type": "ipv6-addr",
                "spec_version": "2.1",
                "id": f"ipv6-addr--{uuid.uuid4()}",
                "value": "2001:db8::1",
            },
        ]
    )
    publish([indicator(pattern="[ipv4-addr:value = '192.0.2.200']")], collection=cast.secret)
    response, body = export(cast.alice, cast.feed, "ips.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert body.splitlines() == [
        "10.0.0.0/8",
        "198.51.100.0/24",
        "203.0.113.7",
        "203.0.113.9",
        "2001:db8::/32",
        "2001:db8::1",
    ]


def test_ips_export_never_includes_other_collections_or_revoked_indicators(cast, publish):
    publish([indicator(pattern="[ipv4-addr:value = '192.0.2.200']")], collection=cast.secret)
    publish([indicator(pattern="[ipv4-addr:value = '192.0.2.201']", revoked=True)])
    assert export(cast.alice, cast.feed, "ips.txt")[1] == ""
    assert export(cast.alice, cast.secret, "ips.txt")[1] == "192.0.2.200\n"


def test_hashes_export_lists_identifiers_from_patterns_and_scos(cast, publish):
    a, b = "a" * 64, "b" * 64
    publish(
        [
            indicator(pattern=HASH_PATTERN.format(a)),
            indicator(pattern=HASH_PATTERN.format(a)),  # duplicate
            hashed_identifier_sco(b),
            indicator(
                pattern="[mdx-hashed-identifier:identifier_type = 'api-key' AND "
                f"mdx-hashed-identifier:value = '{'c' * 64}'] OR [ipv4-addr:value = '192.0.2.1']"
            ),
            indicator(pattern=f"[mdx-hashed-identifier:value NOT = '{'d' * 64}']"),
        ]
    )
    response, body = export(cast.alice, cast.feed, "hashes.txt")
    assert response.status_code == 200
    assert body.splitlines() == [
        f"api-key\t\t{'c' * 64}",
        f"email-canonical\tmdx-2026q4\t{a}",
        f"phone\tmdx-2026q4\t{b}",
    ]


@pytest.mark.parametrize("kind", ["stix/", "csv/", "ips.txt", "hashes.txt"])
def test_organisation_without_a_grant_gets_404_on_every_export(cast, kind):
    for member in (cast.charlie, cast.dana):
        response, body = export(member, cast.secret, kind)
        assert response.status_code == 404
        assert json.loads(body) == {"detail": "no such collection"}
    response, _ = cast.alice.client().get(f"/api/v1/collections/{uuid.uuid4()}/export/{kind}"), None
    assert response.status_code == 404


@pytest.mark.parametrize("kind", ["stix/", "csv/", "ips.txt", "hashes.txt"])
def test_write_only_grant_gets_403_on_every_export(cast, kind):
    response, _ = export(cast.erin, cast.feed, kind)
    assert response.status_code == 403


def test_exports_ignore_the_accept_header(cast, publish):
    publish([indicator()])
    response = cast.alice.client().get(
        f"/api/v1/collections/{cast.feed.pk}/export/csv/", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
