"""Decay scores and TTL classes (DOMAIN.md §4.4); expected values are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from indicators.decay import (
    DEFAULT_TTL_DAYS,
    decay_score,
    indicator_decay,
    indicator_ttl_class,
)
from tests.conftest import load_bundle

IP_EXT = "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03"
MATCHING_EXT = "extension-definition--444a9a9b-5ff7-4b80-a0e4-0012d183405b"
START = datetime(2026, 11, 1, tzinfo=UTC)

IP = "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"
HASH = "[mdx-hashed-identifier:value = '" + "ab" * 32 + "']"
PAYMENT = "[mdx-payment-fingerprint:basis = 'par' AND mdx-payment-fingerprint:value = '" + "cd" * 32 + "']"
PROMPT = "[mdx-prompt-signature:lsh_bands[*] = '00:5f6581e41d550ccb']"
TIMING = "[mdx-timing-fingerprint:request_count > 1000]"
CLIENT = "[mdx-client-fingerprint:ja4 = 't13d1516h2_8daaf6152771_e5627efa2ab1']"


def ind(pattern: str = IP, *, kind: str | None = None, **extra) -> dict:
    data = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--7d3b5f4e-2a1c-4b8e-9f6d-0c1e2a3b4c5d",
        "created": "2026-10-01T00:00:00.000Z",
        "modified": "2026-10-01T00:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-11-01T00:00:00Z",
    }
    if kind is not None:
        data["extensions"] = {MATCHING_EXT: {"extension_type": "toplevel-property-extension"}}
        data["mdx_indicator_kind"] = kind
    data.update(extra)
    return data


def at(days: float) -> datetime:
    return START + timedelta(days=days)


# --- TTL class ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (HASH, "identifier"),
        (PAYMENT, "identifier"),
        (IP, "residential-ip"),
        ("[ipv6-addr:value = '2001:db8::1']", "residential-ip"),
        (PROMPT, "prompt-sketch"),
        (TIMING, "fingerprint"),
        (CLIENT, "fingerprint"),
        ("[mdx-ai-account:identifier_refs[*].value = '" + "ab" * 32 + "']", "identifier"),
        ("[mdx-ai-account:signup_ip_ref.value ISSUBSET '198.51.100.0/24']", "residential-ip"),
    ],
)
def test_the_class_is_inferred_from_the_pattern_object_types(pattern, expected):
    assert indicator_ttl_class(ind(pattern)) == expected


def test_a_stated_kind_wins_over_the_pattern():
    assert indicator_ttl_class(ind(IP, kind="exact-identifier")) == "identifier"
    assert indicator_ttl_class(ind(HASH, kind="timing-similarity")) == "fingerprint"
    assert indicator_ttl_class(ind(IP)) == "residential-ip"


@pytest.mark.parametrize(
    ("proxy", "expected"),
    [
        ("= 'datacenter'", "egress-ip"),
        ("= 'ai-reseller-egress'", "egress-ip"),
        ("IN ('vpn', 'tor')", "egress-ip"),
        ("= 'residential'", "residential-ip"),
        ("IN ('vpn', 'residential')", "residential-ip"),  # not every allowed value is egress
        ("!= 'datacenter'", "residential-ip"),
    ],
)
def test_an_ip_is_egress_only_when_the_pattern_states_an_egress_proxy_type(proxy, expected):
    pattern = (
        f"[ipv4-addr:value ISSUBSET '203.0.113.0/24' AND ipv4-addr:extensions.'{IP_EXT}'.proxy_type {proxy}]"
    )
    assert indicator_ttl_class(ind(pattern)) == expected
    assert indicator_ttl_class(ind(pattern, kind="network-range")) == expected


def test_a_proxy_type_in_an_or_branch_does_not_make_the_other_branch_egress():
    pattern = (
        f"[ipv4-addr:value = '203.0.113.9' OR ipv4-addr:extensions.'{IP_EXT}'.proxy_type = 'datacenter']"
    )
    assert indicator_ttl_class(ind(pattern)) == "residential-ip"
    via_account = (
        "[mdx-ai-account:signup_ip_ref.value = '203.0.113.9' AND "
        f"mdx-ai-account:signup_ip_ref.extensions.'{IP_EXT}'.proxy_type = 'vpn']"
    )
    assert indicator_ttl_class(ind(via_account)) == "egress-ip"
    other_ref = (
        "[mdx-ai-account:ip_refs[*].value = '203.0.113.9' AND "
        f"mdx-ai-account:signup_ip_ref.extensions.'{IP_EXT}'.proxy_type = 'vpn']"
    )
    assert indicator_ttl_class(ind(other_ref)) == "residential-ip"  # a different address
    other_extension = (
        "[ipv4-addr:value = '203.0.113.9' AND ipv4-addr:extensions.'x-acme-geo'.proxy_type = 'datacenter']"
    )
    assert indicator_ttl_class(ind(other_extension)) == "residential-ip"  # not mdx-ip-context


def test_composite_and_mixed_patterns_take_the_shortest_ttl():
    assert indicator_ttl_class(ind(f"{HASH} AND {PROMPT}", kind="composite")) == "prompt-sketch"  # 90 < 180
    assert indicator_ttl_class(ind(f"{HASH} OR {CLIENT}")) == "fingerprint"  # 30 < 180
    assert indicator_ttl_class(ind(f"{PROMPT} FOLLOWEDBY {IP}", kind="composite")) == "residential-ip"
    # The account tier is not an observable: only the signup IP counts (examples-bundle.json).
    [composite] = [
        o
        for o in load_bundle("examples-bundle.json")["objects"]
        if o.get("mdx_indicator_kind") == "composite"
    ]
    assert indicator_ttl_class(composite) == "residential-ip"


@pytest.mark.parametrize(
    "data",
    [
        ind("[network-traffic:dst_port = 443]"),
        ind("[mdx-ai-account:account_tier = 'free']"),
        ind("[ipv4-addr:value = ", kind="composite"),  # does not parse
        ind("title: suspicious\ndetection: {}", pattern_type="sigma"),
        ind(IP, kind="not-a-kind", pattern_type="snort"),
    ],
)
def test_other_patterns_get_the_documented_default(data):
    assert indicator_ttl_class(data) == "unclassified"
    assert indicator_decay(data, START).ttl == timedelta(days=DEFAULT_TTL_DAYS) == timedelta(days=90)


# --- Score --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, 100),
        (-3, 100),  # not valid yet: age counts from valid_from
        (1.4, 99),  # 100 × (1 − 0.1²) = 99
        (7, 75),  # half the 14-day TTL: 100 × (1 − 0.5²)
        (10.5, 44),  # 100 × (1 − 0.75²) = 43.75
        (14, 0),
        (20, 0),
    ],
)
def test_a_residential_ip_without_valid_until_decays_over_14_days(days, expected):
    decay = indicator_decay(ind(IP), at(days))
    assert decay.score == expected
    assert decay.ttl_class == "residential-ip" and decay.lifetime == timedelta(days=14)
    assert decay.ends_at == at(14)
    assert decay.expired is False  # no valid_until: it decays, it never expires


def test_each_class_uses_its_own_ttl():
    assert decay_score(ind(HASH), at(60)) == 89  # 100 × (1 − (60/180)²) = 88.9
    assert decay_score(ind(IP, kind="exact-identifier"), at(90)) == 75
    assert decay_score(ind(PROMPT), at(45)) == 75
    assert decay_score(ind(CLIENT), at(6)) == 96  # 100 × (1 − 0.2²)
    assert decay_score(ind("[network-traffic:dst_port = 443]"), at(45)) == 75


def test_valid_until_sets_the_lifetime_and_expires_it():
    data = ind(HASH, valid_until="2026-11-21T00:00:00Z")  # 20 days, not the 180-day TTL
    assert decay_score(data, at(0)) == 100
    assert decay_score(data, at(10)) == 75
    assert decay_score(data, at(16)) == 36  # 100 × (1 − 0.8²)
    assert decay_score(data, at(20) - timedelta(seconds=1)) == 0
    end = indicator_decay(data, at(20))
    assert (end.score, end.expired, end.ends_at) == (0, True, at(20))
    assert indicator_decay(data, at(30)).expired is True
    fresh = indicator_decay(data, at(5))
    assert (
        fresh.expired is False and fresh.lifetime == timedelta(days=20) and fresh.ttl == timedelta(days=180)
    )


def test_revoked_indicators_score_zero():
    assert decay_score(ind(HASH), at(1)) == 100
    decay = indicator_decay(ind(HASH, revoked=True), at(1))
    assert (decay.score, decay.revoked, decay.expired) == (0, True, False)


def test_age_counts_from_created_when_valid_from_is_missing():
    data = ind(IP)
    del data["valid_from"]
    data["created"] = "2026-11-01T00:00:00.000Z"
    assert decay_score(data, at(7)) == 75


def test_stix_timestamps_with_fractions_parse():
    data = ind(IP, valid_from="2026-11-01T00:00:00.000000001Z", valid_until="2026-11-15T00:00:00.000Z")
    assert decay_score(data, at(7)) == 75


def test_the_label_names_the_class_and_its_default_ttl():
    assert indicator_decay(ind(IP), START).label == "residential IP, 14 d"
    assert indicator_decay(ind(HASH, valid_until="2026-11-21T00:00:00Z"), START).label == (
        "hashed identifier or payment, 180 d"
    )


def test_the_examples_bundle_indicators():
    now = datetime(2026, 11, 20, tzinfo=UTC)
    found = {
        o["mdx_indicator_kind"]: indicator_decay(o, now)
        for o in load_bundle("examples-bundle.json")["objects"]
        if o["type"] == "indicator"
    }
    # composite /24: valid 8 → 22 November, 12 of 14 days gone: 100 × (1 − (12/14)²) = 26.5
    assert (found["composite"].ttl_class, found["composite"].score) == ("residential-ip", 27)
    # identifier: 12 of 181 days: 99.56
    assert (found["exact-identifier"].ttl_class, found["exact-identifier"].score) == ("identifier", 100)
    # prompt sketch: 12 of 92 days: 98.30
    assert (found["prompt-similarity"].ttl_class, found["prompt-similarity"].score) == ("prompt-sketch", 98)
