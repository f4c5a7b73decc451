"""Synthetic local accounts for demos and benchmarks, as DOMAIN.md §4.0 JSON Lines.

Everything is fictional: e-mails on example.com / example.org, IPs from the documentation
ranges (RFC 5737, RFC 3849), private-use ASNs 64496-64511 (RFC 5398), UK drama-range phone
numbers. Among ordinary accounts sits one planted hydra cluster (§4.3): accounts sharing one
card (PAR), one residential /24 and one client fingerprint, on the abused programme tiers.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class DemoCluster:
    """What the planted cluster shares: the demo publishes indicators on these."""

    par: str  # raw EMVCo PAR; hash it with hashing.payment_hash(key, "par", par)
    cidr: str
    proxy_type: str
    ja4: str
    size: int


DEMO_CLUSTER = DemoCluster(
    par="V0010DEMOHYDRACLUSTER00000001",
    cidr="198.51.100.0/24",
    proxy_type="residential",
    ja4="t13d1715h2_5b57614c22b0_3d5424432f57",
    size=40,
)

_EPOCH = datetime(2026, 9, 1, tzinfo=UTC)
_CLUSTER_SIGNUP = datetime(2026, 10, 6, 9, 0, tzinfo=UTC)  # all within 24 h: a weak link (§4.3)
_LAST_SEEN = datetime(2026, 11, 20, tzinfo=UTC)
_DOMAINS = ("example.com", "example.org")
_NAMES = ("ada", "alan", "grace", "edsger", "barbara", "donald", "frances", "ken", "radia", "tim")
_TIERS = (
    "free",
    "free",
    "free",
    "self-serve-paid",
    "self-serve-paid",
    "team",
    "enterprise",
    "education-program",
)
_CLUSTER_TIERS = ("education-program", "research-program", "startup-program")
_ORG_CATEGORIES = {
    "education-program": "university",
    "research-program": "research-institute",
    "startup-program": "startup",
    "enterprise": "enterprise",
    "team": "enterprise",
}
_COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "CA")
_CLIENTS = (  # common client fingerprints: many accounts share each, as in real traffic
    {"user_agent": "ExampleAI/Python 1.52.0", "sdk_name": "exampleai-python", "sdk_version": "1.52.0",
     "ja4": "t13d1516h2_8daaf6152771_02713d6af862"},
    {"user_agent": "ExampleAI/JS 4.71.1", "sdk_name": "exampleai-node", "sdk_version": "4.71.1",
     "ja4": "t13d1517h2_8daaf6152771_b0da82dd1658"},
    {"user_agent": "python-httpx/0.27.0", "sdk_name": "custom", "sdk_version": "",
     "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1"},
)  # fmt: skip
_IPV4_POOLS = ("192.0.2.", "203.0.113.")  # 198.51.100.0/24 is the cluster's alone


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _par(rng: random.Random) -> str:
    return "V001" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=25))


def _ordinary(index: int, rng: random.Random) -> dict:
    created = _EPOCH + timedelta(seconds=rng.randrange(80 * 86400))
    tier = rng.choice(_TIERS)
    country = rng.choice(_COUNTRIES)
    identifiers = [{"type": "email", "value": f"{rng.choice(_NAMES)}.user{index}@{rng.choice(_DOMAINS)}"}]
    if index % 5 == 0 and index // 5 < 1000:  # unique numbers from the Ofcom drama range
        identifiers.append({"type": "phone", "value": f"020 7946 {index // 5:04d}", "region": "GB"})
    if rng.random() < 0.5:
        v4 = f"{rng.choice(_IPV4_POOLS)}{rng.randrange(1, 255)}"
    else:
        v4 = f"2001:db8:{rng.randrange(0x10000):x}:{rng.randrange(0x10000):x}::{rng.randrange(1, 0x10000):x}"
    later = f"{rng.choice(_IPV4_POOLS)}{rng.randrange(1, 255)}"
    asn = 64496 + rng.randrange(15)
    return {
        "account_id": f"acct-{index:07d}",
        "created_at": _iso(created),
        "status": "active",
        "tier": tier,
        "org_category": _ORG_CATEGORIES.get(tier, "individual"),
        "access_channel": "first-party-api",
        "signup_country": country,
        "identifiers": identifiers,
        "payments": [
            {
                "basis": "par",
                "par": _par(rng),
                "card_iin": f"4{rng.randrange(10**5):05d}",
                "card_funding": rng.choice(("credit", "debit")),
                "is_virtual": False,
                "issuer_country": country,
            }
        ],  # fmt: skip
        "ips": [
            {"ip": v4, "asn": asn, "signup": True, "first_seen": _iso(created), "last_seen": _iso(created)},
            {"ip": later, "asn": asn, "first_seen": _iso(created), "last_seen": _iso(_LAST_SEEN)},
        ],
        "clients": [rng.choice(_CLIENTS)],
    }


def _cluster_member(number: int, rng: random.Random) -> dict:
    created = _CLUSTER_SIGNUP + timedelta(minutes=rng.randrange(24 * 60))
    tier = _CLUSTER_TIERS[number % len(_CLUSTER_TIERS)]
    exit_ip = f"198.51.100.{rng.randrange(1, 255)}"
    return {
        "account_id": f"acct-h{number:03d}",
        "created_at": _iso(created),
        "status": "active",
        "tier": tier,
        "org_category": _ORG_CATEGORIES[tier],
        "access_channel": "first-party-api",
        "signup_country": "US",
        "identifiers": [{"type": "email", "value": f"dl.research{number:02d}@{_DOMAINS[number % 2]}"}],
        "payments": [
            {
                "basis": "par",
                "par": DEMO_CLUSTER.par,
                "card_iin": "411111",
                "card_funding": "prepaid",
                "is_virtual": True,
                "issuer_country": "US",
            }
        ],  # fmt: skip
        "ips": [
            {
                "ip": exit_ip,
                "asn": 64511,
                "proxy_type": DEMO_CLUSTER.proxy_type,
                "signup": True,
                "first_seen": _iso(created),
                "last_seen": _iso(_LAST_SEEN),
            },
            {
                "ip": f"198.51.100.{rng.randrange(1, 255)}",
                "asn": 64511,
                "proxy_type": DEMO_CLUSTER.proxy_type,
                "first_seen": _iso(created),
                "last_seen": _iso(_LAST_SEEN),
            },
        ],  # fmt: skip
        "clients": [{"user_agent": "python-requests/2.32.3", "sdk_name": "custom", "ja4": DEMO_CLUSTER.ja4}],
    }


def demo_accounts_generate(count: int = 3000, *, seed: int = 7) -> Iterator[str]:
    """``count`` JSON lines (one account each), the cluster's members spread among them.

    The same ``count`` and ``seed`` always give the same lines.
    """
    rng = random.Random(seed)
    cluster_size = min(DEMO_CLUSTER.size, count)
    cluster_at = set(rng.sample(range(count), cluster_size))
    member = 0
    for index in range(count):
        if index in cluster_at:
            account = _cluster_member(member, rng)
            member += 1
        else:
            account = _ordinary(index, rng)
        yield json.dumps(account, separators=(",", ":"))
