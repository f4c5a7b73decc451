"""Sample submissions waiting for review, so the demo queue is not empty on first run.

They come from the demo ``review``-policy organisation "Borealis Research" into
"consortium-indicators" through the same ``submission_create`` a TAXII POST uses. Running
again is a no-op (the first object's id marks that they exist).
"""

from __future__ import annotations

import uuid

from sharing.models import Collection, Organisation, SubmissionItem
from sharing.submissions import submission_create

SUBMITTER = "Borealis Research"
COLLECTION = "consortium-indicators"
TLP_AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
TLP_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
_NS = uuid.UUID("6f1d8a52-3c0e-4b7a-9f43-2d3b5e8c1a77")


def _id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(_NS, name)}"


PROXY_POOL = _id("indicator", "proxy-pool")
CAMPAIGN = _id("campaign", "hydra")


def _indicator(
    identity: str, stix_id: str, name: str, pattern: str, *, modified: str, tlp: str = TLP_AMBER, **extra
):
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id,
        "created": "2026-11-18T09:00:00.000Z",
        "modified": modified,
        "created_by_ref": identity,
        "name": name,
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2026-11-18T00:00:00Z",
        "object_marking_refs": [tlp],
    }
    obj.update(extra)
    return obj


def demo_envelopes(identity: str) -> list[list[dict]]:
    """The objects of each demo submission, in order."""
    first = [
        _indicator(
            identity,
            PROXY_POOL,
            "Distillation proxy pool egress",
            "[ipv4-addr:value ISSUBSET '45.146.164.0/24']",
            modified="2026-11-18T09:00:00.000Z",
            valid_until="2027-05-18T00:00:00Z",
            confidence=70,
            labels=["distillation", "proxy-pool"],
            description=(
                "Rotating residential-proxy exit range used to spread distillation traffic across accounts."
            ),
            external_references=[{"source_name": "borealis-case", "external_id": "BR-2026-114"}],
        ),
        {
            "type": "campaign",
            "spec_version": "2.1",
            "id": CAMPAIGN,
            "created": "2026-11-18T09:00:00.000Z",
            "modified": "2026-11-18T09:00:00.000Z",
            "created_by_ref": identity,
            "name": "Hydra distillation campaign",
            "description": "Coordinated extraction of model outputs through many low-tier accounts.",
            "object_marking_refs": [TLP_AMBER],
        },
        {
            "type": "relationship",
            "spec_version": "2.1",
            "id": _id("relationship", "proxy-pool-indicates-hydra"),
            "created": "2026-11-18T09:00:00.000Z",
            "modified": "2026-11-18T09:00:00.000Z",
            "created_by_ref": identity,
            "relationship_type": "indicates",
            "source_ref": PROXY_POOL,
            "target_ref": CAMPAIGN,
            "object_marking_refs": [TLP_AMBER],
        },
    ]
    second = [
        _indicator(
            identity,
            _id("indicator", "harness-test-range"),
            "Scraper harness callback range",
            "[ipv4-addr:value ISSUBSET '203.0.113.0/24'] OR [ipv4-addr:value = '198.51.100.7']",
            modified="2026-11-19T14:30:00.000Z",
            valid_until="2027-02-19T00:00:00Z",
            confidence=40,
            tlp=TLP_GREEN,
        ),
        _indicator(
            identity,
            _id("indicator", "bulk-client-egress"),
            "Bulk API client egress",
            "[ipv4-addr:value ISSUBSET '100.64.0.0/10'] AND [network-traffic:dst_port = 443]",
            modified="2026-11-19T14:30:00.000Z",
            confidence=55,
        ),
    ]
    third = [
        _indicator(
            identity,
            PROXY_POOL,
            "Distillation proxy pool egress",
            "[ipv4-addr:value ISSUBSET '45.146.164.0/24'] OR [ipv4-addr:value ISSUBSET '45.146.166.0/24']",
            modified="2026-11-21T08:15:00.000Z",
            valid_until="2027-05-21T00:00:00Z",
            confidence=85,
            labels=["distillation", "proxy-pool"],
            description="Rotating residential-proxy exit ranges; a second /24 seen since 20 November.",
            external_references=[{"source_name": "borealis-case", "external_id": "BR-2026-114"}],
        )
    ]
    return [first, second, third]


def demo_submissions_create() -> int:
    """Create the demo submissions unless they exist; returns how many were created."""
    organisation = Organisation.objects.filter(name=SUBMITTER).first()
    collection = Collection.objects.filter(title=COLLECTION).first()
    if organisation is None or collection is None:
        return 0
    if SubmissionItem.objects.filter(submission__organisation=organisation, stix_id=PROXY_POOL).exists():
        return 0
    envelopes = demo_envelopes(organisation.identity_id)
    for objects in envelopes:
        submission_create(collection=collection, organisation=organisation, objects=objects)
    return len(envelopes)
