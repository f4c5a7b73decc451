"""Builders and assertions for the REST API tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rest_framework.test import APIClient

from tests.stix_builders import TLP, make_indicator

OLD = "2020-01-01T00:00:00Z"
PAST = "2021-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"


@dataclass
class Member:
    org: object
    token: object
    plaintext: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.plaintext}")
        return client


def indicator(**kwargs) -> dict:
    kwargs.setdefault("valid_from", OLD)
    return make_indicator(**kwargs)


def ladder(cidr_base: str = "10.0") -> dict[str, dict]:
    """One indicator per TLP level, each with its own /24 (``<base>.<rank>.0/24``) and name."""
    levels = ["clear", "green", "amber", "amber+strict", "red"]
    return {
        level: indicator(
            tlp=level, name=f"{level} range", pattern=f"[ipv4-addr:value ISSUBSET '{cidr_base}.{i}.0/24']"
        )
        for i, level in enumerate(levels)
    }


def campaign(name: str = "Hydra", tlp: str = "amber") -> dict:
    return {
        "type": "campaign",
        "spec_version": "2.1",
        "id": f"campaign--{uuid.uuid4()}",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "name": name,
        "object_marking_refs": [TLP[tlp]],
    }


def relationship(source: str, target: str, tlp: str = "amber") -> dict:
    return {
        "type": "relationship",
        "spec_version": "2.1",
        "id": f"relationship--{uuid.uuid4()}",
        "created": "2026-11-02T00:00:00.000Z",
        "modified": "2026-11-02T00:00:00.000Z",
        "relationship_type": "indicates",
        "source_ref": source,
        "target_ref": target,
        "object_marking_refs": [TLP[tlp]],
    }


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}
