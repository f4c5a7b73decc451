"""Review warnings: the known-benign warninglist, stale or missing validity, over-broad CIDRs."""

from __future__ import annotations

import json
import sys
import types
from datetime import timedelta

import pytest
from django.utils import timezone

from indicators.models import StixObject
from sharing.warninglist import WarninglistError, warninglist_load
from sharing.web.presenters import object_warnings, pattern_networks, pattern_pretty, would_match_count


def version(pattern: str, *, valid_until=None, pattern_type="stix") -> StixObject:
    data = {"type": "indicator", "id": "indicator--x", "pattern": pattern, "pattern_type": pattern_type}
    return StixObject(type="indicator", stix_id="indicator--x", data=data, valid_until=valid_until)


SOON = timezone.now() + timedelta(days=30)


def test_the_bundled_list_has_the_documentation_ranges():
    cidrs = {str(e.network) for e in warninglist_load().entries}
    assert {"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"} <= cidrs


@pytest.mark.parametrize(
    "pattern",
    [
        "[ipv4-addr:value = '192.0.2.10']",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/25']",
        "[ipv4-addr:value ISSUBSET '203.0.0.0/16']",  # contains a documentation range
        "[ipv6-addr:value = '2001:db8::1']",
        "[ipv4-addr:value IN ('10.1.1.1', '8.8.8.8')]",
    ],
)
def test_patterns_touching_a_benign_range_are_flagged(pattern):
    assert any("known-benign" in w for w in object_warnings(version(pattern, valid_until=SOON)))


def test_a_clean_pattern_has_no_warnings():
    assert object_warnings(version("[ipv4-addr:value ISSUBSET '45.146.164.0/24']", valid_until=SOON)) == []


def test_expired_broad_and_open_ended_network_indicators_are_flagged():
    past = timezone.now() - timedelta(days=1)
    assert any("in the past" in w for w in object_warnings(version("[file:name = 'x']", valid_until=past)))
    broad = object_warnings(version("[ipv4-addr:value ISSUBSET '100.64.0.0/10']", valid_until=SOON))
    assert any("broader than /16" in w for w in broad)
    assert not any(
        "broader" in w
        for w in object_warnings(version("[ipv4-addr:value ISSUBSET '45.0.0.0/16']", valid_until=SOON))
    )
    open_ended = object_warnings(version("[domain-name:value = 'example.org']"))
    assert any("without valid_until" in w for w in open_ended)
    assert not any("valid_until" in w for w in object_warnings(version("[file:name = 'x']")))


def test_a_configured_file_replaces_the_bundled_list(tmp_path, settings):
    path = tmp_path / "benign.json"
    path.write_text(json.dumps({"entries": [{"cidr": "45.146.164.0/22", "label": "our own VPN"}]}))
    settings.MDX_WARNINGLIST_FILE = str(path)
    warnings = object_warnings(version("[ipv4-addr:value ISSUBSET '45.146.164.0/24']", valid_until=SOON))
    assert warnings == [
        "pattern range 45.146.164.0/24 overlaps a known-benign range: 45.146.164.0/22 (our own VPN)"
    ]
    assert not object_warnings(version("[ipv4-addr:value = '192.0.2.1']", valid_until=SOON))


def test_a_broken_file_is_reported_not_ignored(tmp_path, settings):
    path = tmp_path / "broken.json"
    path.write_text('{"entries": [{"cidr": "not-an-address"}]}')
    settings.MDX_WARNINGLIST_FILE = str(path)
    with pytest.raises(WarninglistError, match="entry #0"):
        warninglist_load()
    assert any("could not be read" in w for w in object_warnings(version("[ipv4-addr:value = '1.2.3.4']")))


def test_patterns_are_pretty_printed_outside_quotes():
    pretty = pattern_pretty("[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = 'a AND b'] AND [x:y = 1]")
    assert pretty.splitlines() == [
        "[ipv4-addr:value = '1.2.3.4'",
        "  OR ipv4-addr:value = 'a AND b']",
        "AND [x:y = 1]",
    ]
    assert [str(n) for n in pattern_networks("[ipv4-addr:value ISSUBSET '10.0.0.0/8']")] == ["10.0.0.0/8"]


def test_would_match_is_blank_without_matching_and_counts_with_it(monkeypatch):
    import indicators

    obj = version("[ipv4-addr:value = '45.146.164.9']")
    monkeypatch.setitem(sys.modules, "indicators.matching_service", None)  # import fails
    monkeypatch.delattr(indicators, "matching_service", raising=False)
    assert would_match_count(obj) is None
    fake = types.ModuleType("indicators.matching_service")
    fake.would_match_count = lambda pattern: 3 if "45.146.164.9" in pattern else 0
    monkeypatch.setitem(sys.modules, "indicators.matching_service", fake)
    monkeypatch.setattr(indicators, "matching_service", fake, raising=False)
    assert would_match_count(obj) == 3
