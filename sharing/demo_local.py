"""Demo local data: synthetic accounts with a planted hydra cluster, and indicators that hit it.

`make run` shows matches and alerts on first start: the accounts come from
indicators.demo_accounts, and a trusted demo lab publishes three indicators — the cluster's
shared payment fingerprint, its residential /24 and its client fingerprint — into the
consortium collection, which queues local matching like any publication.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from indicators.accounts import accounts_import
from indicators.demo_accounts import DEMO_CLUSTER, demo_accounts_generate
from indicators.extensions import EXTENSION_IDS, TLP_IDS
from indicators.hashing import Keyring, payment_hash
from indicators.models import Account, Alert, Match
from indicators.stix import parse_object
from sharing.models import Collection, Organisation
from sharing.services import objects_publish

DEMO_ACCOUNT_COUNT = 3000
_MATCHING_EXTENSION = EXTENSION_IDS["mdx-indicator-matching"]
_FIRST_ISSUED = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass(frozen=True)
class LocalDemo:
    accounts: int
    indicators: int
    matches: int
    alerts: int


def _demo_id(name: str) -> str:
    # Stable across runs (re-running the demo adds no duplicates), shaped as a UUIDv4.
    digest = hashlib.sha256(f"mdx-demo:{name}".encode()).digest()
    return f"indicator--{uuid.UUID(bytes=digest[:16], version=4)}"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def demo_cluster_indicators(*, keyring: Keyring, publisher: Organisation, today: datetime) -> list[dict]:
    """Three AMBER indicators on what the planted cluster shares, valid from yesterday.

    A new version is issued per day (``modified`` is today's date), so validity windows stay
    current whenever the demo runs, while re-running it on the same day changes nothing.
    """
    day = today.replace(hour=0, minute=0, second=0, microsecond=0)
    par_hmac = payment_hash(keyring.key(), "par", DEMO_CLUSTER.par)
    specs = [
        (
            "payment",
            "Prepaid card (PAR, keyed hash) shared by a hydra cluster",
            "payment",
            180,
            85,
            "[mdx-payment-fingerprint:basis = 'par' AND mdx-payment-fingerprint:key_id = "
            f"'{keyring.current}' AND mdx-payment-fingerprint:value = '{par_hmac}']",
        ),
        (
            "network",
            "Residential proxy /24 used for cluster sign-ups",
            "network-range",
            14,
            60,
            f"[ipv4-addr:value ISSUBSET '{DEMO_CLUSTER.cidr}']",
        ),
        (
            "client",
            "Custom extraction client (JA4) of a distillation harness",
            "client-fingerprint",
            30,
            50,
            f"[mdx-client-fingerprint:ja4 = '{DEMO_CLUSTER.ja4}']",
        ),
    ]
    objects = []
    for key, name, kind, ttl_days, confidence, pattern in specs:
        objects.append(parse_object({
            "type": "indicator", "spec_version": "2.1", "id": _demo_id(key),
            "created_by_ref": publisher.identity_id,
            "created": _stamp(_FIRST_ISSUED), "modified": _stamp(max(day, _FIRST_ISSUED)),
            "name": name, "description": "Demo indicator from synthetic data: a lead for review, not proof.",
            "indicator_types": ["malicious-activity"], "pattern": pattern, "pattern_type": "stix",
            "pattern_version": "2.1", "valid_from": _stamp(day - timedelta(days=1)),
            "valid_until": _stamp(day + timedelta(days=ttl_days)), "confidence": confidence,
            "labels": ["demo", "hydra-cluster"], "object_marking_refs": [TLP_IDS["amber"]],
            "extensions": {_MATCHING_EXTENSION: {"extension_type": "toplevel-property-extension"}},
            "mdx_indicator_kind": kind, "mdx_min_accounts": 1, "mdx_action_hint": "review",
        }))  # fmt: skip
    return objects


def demo_local_data_load(*, keyring: Keyring, publisher: Organisation, collection: Collection) -> LocalDemo:
    """Import the synthetic accounts (once) and publish today's demo indicators."""
    if not Account.objects.exists():
        accounts_import(demo_accounts_generate(DEMO_ACCOUNT_COUNT), keyring=keyring)
    indicators = demo_cluster_indicators(keyring=keyring, publisher=publisher, today=datetime.now(tz=UTC))
    objects_publish(collection=collection, objects=indicators, submitted_by=publisher)
    return LocalDemo(Account.objects.count(), len(indicators), Match.objects.count(), Alert.objects.count())
