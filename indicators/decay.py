"""Indicator decay: the per-kind default TTLs of DOMAIN.md §4.4 and a 0–100 freshness score.

Plain Python (no Django), so the REST exports, the object search and the web UI compute the
same number from an indicator's stored STIX dict.

TTL class of an indicator (``indicator_ttl_class``), one per §4.4 row:

=================  =====  ======================================================================
class              TTL    when
=================  =====  ======================================================================
identifier         180 d  hashed identifiers and payment fingerprints
residential-ip      14 d  IPs, CIDRs and ASNs, unless the pattern states an egress proxy_type
egress-ip           30 d  IPs whose ``mdx-ip-context`` proxy_type is datacenter,
                          ai-reseller-egress, vpn or tor
prompt-sketch       90 d  prompt signatures (MinHash / LSH bands)
fingerprint         30 d  timing and client fingerprints
unclassified        90 d  anything else: other SCOs, an unparseable or non-STIX pattern
=================  =====  ======================================================================

The class comes from ``mdx_indicator_kind`` (a top-level property: ``mdx-indicator-matching`` is
a toplevel-property-extension, §1.7) when the publisher states one; ``composite``, a
missing kind or an unknown one is inferred from the object types in the pattern, and a pattern
over several kinds takes the shortest TTL of its parts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from indicators.extensions import EXTENSION_IDS
from indicators.matching import PatternError, parse_pattern
from indicators.matching.nodes import (
    Bracket,
    CompAnd,
    Comparison,
    CompExpr,
    FollowedBy,
    ObsAnd,
    ObsExpr,
    ObsOr,
    Op,
    Repeats,
    StartStop,
    Within,
)

IP_CONTEXT_EXTENSION = EXTENSION_IDS["mdx-ip-context"]

IDENTIFIER = "identifier"
RESIDENTIAL_IP = "residential-ip"
EGRESS_IP = "egress-ip"
PROMPT_SKETCH = "prompt-sketch"
FINGERPRINT = "fingerprint"
UNCLASSIFIED = "unclassified"

# DOMAIN.md §4.4 "Default TTLs". UNCLASSIFIED is ours: §4.4 has no row for indicators over other
# SCOs, so they get the middle of the table (the prompt-sketch value) rather than either extreme.
TTL_DAYS: dict[str, int] = {
    IDENTIFIER: 180,
    RESIDENTIAL_IP: 14,
    EGRESS_IP: 30,
    PROMPT_SKETCH: 90,
    FINGERPRINT: 30,
    UNCLASSIFIED: 90,
}
DEFAULT_TTL_DAYS = TTL_DAYS[UNCLASSIFIED]

TTL_LABELS: dict[str, str] = {
    IDENTIFIER: "hashed identifier or payment",
    RESIDENTIAL_IP: "residential IP",
    EGRESS_IP: "egress IP",
    PROMPT_SKETCH: "prompt sketch",
    FINGERPRINT: "timing or client fingerprint",
    UNCLASSIFIED: "unclassified",
}

# mdx_indicator_kind → class. "network-range" is refined by the pattern (egress or residential),
# "composite" is inferred from the pattern entirely.
_KIND_CLASS: dict[str, str] = {
    "exact-identifier": IDENTIFIER,
    "payment": IDENTIFIER,
    "network-range": RESIDENTIAL_IP,
    "prompt-similarity": PROMPT_SKETCH,
    "timing-similarity": FINGERPRINT,
    "client-fingerprint": FINGERPRINT,
}

# mdx-ip-context proxy_type values that mark a shared egress rather than a residential address.
EGRESS_PROXY_TYPES = frozenset({"datacenter", "ai-reseller-egress", "vpn", "tor"})

# "ip" is resolved to RESIDENTIAL_IP or EGRESS_IP once the proxy_type statements are known.
_IP = "ip"
_TYPE_CLASS: dict[str, str] = {
    "mdx-hashed-identifier": IDENTIFIER,
    "mdx-payment-fingerprint": IDENTIFIER,
    "ipv4-addr": _IP,
    "ipv6-addr": _IP,
    "autonomous-system": _IP,  # matched as network-range (§4.2)
    "mdx-prompt-signature": PROMPT_SKETCH,
    "mdx-timing-fingerprint": FINGERPRINT,
    "mdx-client-fingerprint": FINGERPRINT,
}
# mdx-ai-account reference properties (§1.7) and the class of what they point at. The account's
# own properties (tier, status, …) describe the account, not a decaying observable.
_ACCOUNT_REF_CLASS: dict[str, str] = {
    "identifier_refs": IDENTIFIER,
    "payment_refs": IDENTIFIER,
    "signup_ip_ref": _IP,
    "ip_refs": _IP,
    "asn_refs": _IP,
    "client_refs": FINGERPRINT,
    "prompt_signature_refs": PROMPT_SKETCH,
    "timing_refs": FINGERPRINT,
}


def ttl_of(ttl_class: str) -> timedelta:
    return timedelta(days=TTL_DAYS.get(ttl_class, DEFAULT_TTL_DAYS))


def _shortest(classes: set[str]) -> str:
    # Ties (egress-ip and fingerprint are both 30 d) break by name, so the answer is stable.
    return min(classes, key=lambda c: (TTL_DAYS[c], c)) if classes else UNCLASSIFIED


# --- Pattern inference ------------------------------------------------------------------------


def _brackets(expr: ObsExpr) -> Iterator[Bracket]:
    if isinstance(expr, Bracket):
        yield expr
    elif isinstance(expr, ObsAnd | ObsOr):
        for operand in expr.operands:
            yield from _brackets(operand)
    elif isinstance(expr, FollowedBy):
        yield from _brackets(expr.left)
        yield from _brackets(expr.right)
    elif isinstance(expr, Within | Repeats | StartStop):
        yield from _brackets(expr.expr)


def _subject(comparison: Comparison) -> tuple[str, str] | None:
    """(class, subject) of a comparison's path, None if it names no decaying observable.

    The subject names the object a proxy_type statement belongs to: the SCO type, or the
    mdx-ai-account reference the path goes through (signup_ip_ref, ip_refs, …).
    """
    path = comparison.path
    if path.object_type == "mdx-ai-account":
        first = path.steps[0] if path.steps else None
        cls = _ACCOUNT_REF_CLASS.get(first) if isinstance(first, str) else None
        return (cls, f"mdx-ai-account:{first}") if cls else None
    cls = _TYPE_CLASS.get(path.object_type)
    return (cls, path.object_type) if cls else None


def _states_egress(comparison: Comparison) -> bool:
    """`…proxy_type = 'datacenter'` or `…proxy_type IN ('vpn', 'tor')`: every allowed value is egress."""
    steps = comparison.path.steps
    if comparison.negated or steps[-2:] != (IP_CONTEXT_EXTENSION, "proxy_type"):
        return False
    if comparison.op is Op.EQ:
        return comparison.value in EGRESS_PROXY_TYPES
    if comparison.op is Op.IN and isinstance(comparison.value, tuple) and comparison.value:
        return all(v in EGRESS_PROXY_TYPES for v in comparison.value)
    return False


def _classes(expr: CompExpr, egress: frozenset[str]) -> set[str]:
    """Classes an observation expression names; ``egress`` holds the subjects ANDed with an egress
    proxy_type. An OR branch does not inherit its sibling's proxy_type statement."""
    if isinstance(expr, Comparison):
        named = _subject(expr)
        if named is None:
            return set()
        cls, subject = named
        if cls == _IP:
            return {EGRESS_IP if subject in egress or _states_egress(expr) else RESIDENTIAL_IP}
        return {cls}
    if isinstance(expr, CompAnd):
        stated = {
            named[1]
            for op in expr.operands
            if isinstance(op, Comparison) and _states_egress(op) and (named := _subject(op)) is not None
        }
        egress = egress | stated
    found: set[str] = set()
    for operand in expr.operands:
        found |= _classes(operand, egress)
    return found


@lru_cache(maxsize=4096)
def pattern_ttl_classes(pattern: str) -> frozenset[str]:
    """Every TTL class a STIX pattern's comparisons name; empty when none is known or it does not parse."""
    try:
        tree = parse_pattern(pattern)
    except (PatternError, RecursionError, ValueError):
        return frozenset()
    found: set[str] = set()
    for bracket in _brackets(tree):
        found |= _classes(bracket.expr, frozenset())
    return frozenset(found)


def _pattern_classes(data: dict[str, Any]) -> frozenset[str]:
    pattern = data.get("pattern")
    if data.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
        return frozenset()
    return pattern_ttl_classes(pattern)


def indicator_ttl_class(data: dict[str, Any]) -> str:
    """The §4.4 TTL row of an indicator (see the module docstring for the rules)."""
    kind = data.get("mdx_indicator_kind")
    cls = _KIND_CLASS.get(kind) if isinstance(kind, str) else None
    if cls == RESIDENTIAL_IP:
        # network-range: residential (the shortest, conservative TTL) unless every IP part of
        # the pattern states an egress proxy_type.
        ips = _pattern_classes(data) & {RESIDENTIAL_IP, EGRESS_IP}
        return EGRESS_IP if ips == {EGRESS_IP} else RESIDENTIAL_IP
    if cls is not None:
        return cls
    return _shortest(set(_pattern_classes(data)))


# --- Score ------------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime | None:
    """A STIX timestamp string (or a datetime) as an aware UTC datetime; None if absent or invalid."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp


@dataclass(frozen=True)
class Decay:
    """How fresh an indicator is at ``now``.

    ``lifetime`` is valid_until − valid_from when valid_until is set, else the class TTL;
    ``ends_at`` is when the score reaches 0 (valid_until, or start + class TTL; None without a
    start). ``expired`` means valid_until has passed; an indicator without valid_until only
    decays to 0, it never expires.
    """

    score: int
    ttl_class: str
    ttl: timedelta
    lifetime: timedelta
    ends_at: datetime | None
    expired: bool
    revoked: bool

    @property
    def label(self) -> str:
        """E.g. "residential IP, 14 d"."""
        return f"{TTL_LABELS[self.ttl_class]}, {self.ttl.days} d"


def _score(age: timedelta, lifetime: timedelta) -> int:
    if age <= timedelta(0):
        return 100
    if lifetime <= timedelta(0):
        return 0
    freshness = 100 * (1 - (age / lifetime) ** 2)
    return max(0, min(100, math.floor(freshness + 0.5)))  # round half up, not to even


def indicator_decay(data: dict[str, Any], now: datetime) -> Decay:
    """The decay of an indicator (a stored STIX dict) at ``now`` (an aware datetime).

    score = round(100 × (1 − (t/τ)²)), clamped to 0…100, where
      t = now − valid_from (created when valid_from is missing; 0 before it starts),
      τ = valid_until − valid_from when valid_until is set, else the class TTL of §4.4.
    It is 0 when the indicator is revoked or valid_until has passed (now ≥ valid_until,
    as the REST "active" filter counts it); with neither timestamp the age is taken as 0.

    This is MISP's polynomial decay model (score = base × (1 − (t/τ)^(1/δ))) with base 100
    and decay speed δ = 0.5: it stays high while an indicator is young (75 at half its
    lifetime, 91 at 30 %) and falls fastest near the end, which fits TTL-bound indicators
    better than linear decay that already penalises a fresh one. Ties at .5 round up.
    """
    ttl_class = indicator_ttl_class(data)
    ttl = ttl_of(ttl_class)
    start = _timestamp(data.get("valid_from")) or _timestamp(data.get("created"))
    until = _timestamp(data.get("valid_until"))
    revoked = data.get("revoked") is True
    expired = until is not None and now >= until
    lifetime = until - start if until is not None and start is not None else ttl
    if until is not None:
        ends_at: datetime | None = until
    else:
        ends_at = start + ttl if start is not None else None
    age = now - start if start is not None else timedelta(0)
    score = 0 if revoked or expired else _score(age, lifetime)
    return Decay(score, ttl_class, ttl, lifetime, ends_at, expired, revoked)


def decay_score(data: dict[str, Any], now: datetime) -> int:
    """The 0–100 score of ``indicator_decay``."""
    return indicator_decay(data, now).score
