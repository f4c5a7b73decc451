"""Builders returning STIX 2.1 dicts for tests."""

from __future__ import annotations

import uuid

TLP = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}


def make_indicator(
    *,
    stix_id: str | None = None,
    modified: str = "2026-11-23T00:00:00.000Z",
    created: str = "2026-11-01T00:00:00.000Z",
    tlp: str | None = "amber",
    pattern: str = "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    name: str = "Reseller proxy egress range",
    **extra,
) -> dict:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id or f"indicator--{uuid.uuid4()}",
        "created": created,
        "modified": modified,
        "name": name,
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2026-11-01T00:00:00Z",
    }
    if tlp:
        obj["object_marking_refs"] = [TLP[tlp]]
    obj.update(extra)
    return obj
