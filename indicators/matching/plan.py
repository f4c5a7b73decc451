"""Index lookups that narrow a pattern to candidate accounts before exact evaluation."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from .nodes import (
    Bracket,
    CompAnd,
    Comparison,
    CompExpr,
    CompOr,
    Constant,
    FollowedBy,
    ObjectPath,
    ObsAnd,
    ObsExpr,
    ObsOr,
    Op,
    Step,
)

_IP_TYPES = ("ipv4-addr", "ipv6-addr")
_IPV4_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96, RFC 4291 §2.5.5.2

# Where the references of the root account SCO lead (DOMAIN §1.7, mdx-ai-account).
_ACCOUNT_REFS: dict[str, tuple[str, ...]] = {
    "identifier_refs": ("mdx-hashed-identifier",),
    "payment_refs": ("mdx-payment-fingerprint",),
    "signup_ip_ref": _IP_TYPES,
    "ip_refs": _IP_TYPES,
    "asn_refs": ("autonomous-system",),
    "client_refs": ("mdx-client-fingerprint",),
    "prompt_signature_refs": ("mdx-prompt-signature",),
    "timing_refs": ("mdx-timing-fingerprint",),
}
_HASH_FIELDS = {
    "mdx-hashed-identifier": ("value", "identifier_type", "key_id"),
    "mdx-payment-fingerprint": ("value",),
}
_CLIENT_FIELDS = ("ja4", "ja4h", "user_agent", "sdk_name", "sdk_version")


@dataclass(frozen=True)
class HashLookup:
    """Accounts with an `sco_type` SCO whose `field` equals `value` (string equality).

    For mdx-hashed-identifier this covers API keys too (identifier_type `api-key`).
    """

    sco_type: str
    field: str
    value: str


@dataclass(frozen=True)
class IpRangeLookup:
    """Accounts with an IP address or block lying wholly inside [low, high] (see `ip_to_range`)."""

    family: int
    low: int
    high: int


@dataclass(frozen=True)
class AsnLookup:
    """Accounts with an autonomous-system SCO of this number."""

    number: int


@dataclass(frozen=True)
class LshBandLookup:
    """Accounts with a prompt signature carrying this LSH band key."""

    band_key: str


@dataclass(frozen=True)
class ClientLookup:
    """Accounts with a client fingerprint whose `field` (ja4, ja4h, user_agent, sdk_*) equals `value`."""

    field: str
    value: str


@dataclass(frozen=True)
class PropertyLookup:
    """Accounts with an `sco_type` SCO whose value at `path` equals `value`.

    Equality as in patterning: strings with strings, booleans with booleans, numbers
    numerically (1 = 1.0); `[*]` steps match any list member.
    """

    sco_type: str
    path: tuple[Step, ...]
    value: str | int | float | bool


Lookup = HashLookup | IpRangeLookup | AsnLookup | LshBandLookup | ClientLookup | PropertyLookup


@dataclass(frozen=True)
class AnyOf:
    """Union of candidate sets; with no children, no account."""

    children: tuple[Candidates, ...]


@dataclass(frozen=True)
class AllOf:
    """Intersection of candidate sets (each a superset, so the intersection is too)."""

    children: tuple[Candidates, ...]


Candidates = Lookup | AnyOf | AllOf


@dataclass(frozen=True)
class ObservationPlan:
    """Candidates for one observation expression `[...]`; None means a full scan."""

    bracket: Bracket
    candidates: Candidates | None

    @property
    def full_scan(self) -> bool:
        return self.candidates is None


@dataclass(frozen=True)
class MatchPlan:
    """Per-bracket plans in pattern order, and the candidates for the whole pattern.

    Invariant: the candidate set is a SUPERSET of the accounts the pattern matches.
    Each lookup selects the accounts having, among the SCOs of their profile observation
    (which holds every attribute of the account, DOMAIN §4.0), one that satisfies a
    positive equality or containment the pattern requires of any match.  `None` means a
    full scan: nothing indexable constrains the expression.  The exact answer always
    comes from `CompiledPattern.matches` on the candidates.
    """

    observations: tuple[ObservationPlan, ...]
    candidates: Candidates | None

    @property
    def full_scan(self) -> bool:
        return self.candidates is None


def candidate_leaves(node: Candidates | None) -> Iterator[Lookup]:
    """The index lookups of a candidate tree, left to right (AnyOf/AllOf flattened)."""
    if node is None:
        return
    if isinstance(node, AnyOf | AllOf):
        for child in node.children:
            yield from candidate_leaves(child)
    else:
        yield node


def ip_to_range(text: str) -> tuple[int, int]:
    """First and last address of an IP or CIDR block as 16-byte big-endian ints.

    IPv4 is mapped into ::ffff:0:0/96, so both families share one ordered space.
    """
    network = ipaddress.ip_network(text, strict=False)
    offset = _IPV4_MAPPED if network.version == 4 else 0
    return offset + int(network.network_address), offset + int(network.broadcast_address)


def build_plan(tree: ObsExpr) -> MatchPlan:
    brackets: list[ObservationPlan] = []
    candidates = _observation(tree, brackets)
    return MatchPlan(tuple(brackets), candidates)


def _observation(expr: ObsExpr, out: list[ObservationPlan]) -> Candidates | None:
    if isinstance(expr, Bracket):
        candidates = _comparison(expr.expr)
        out.append(ObservationPlan(expr, candidates))
        return candidates
    if isinstance(expr, ObsAnd):
        return _all([_observation(e, out) for e in expr.operands])
    if isinstance(expr, FollowedBy):
        return _all([_observation(expr.left, out), _observation(expr.right, out)])
    if isinstance(expr, ObsOr):
        return _any([_observation(e, out) for e in expr.operands])
    # Qualifiers only filter the inner expression's bindings.
    return _observation(expr.expr, out)


def _all(parts: list[Candidates | None]) -> Candidates | None:
    # Any constrained conjunct bounds the conjunction.
    known = [p for p in parts if p is not None]
    if not known:
        return None
    return known[0] if len(known) == 1 else AllOf(tuple(known))


def _any(parts: list[Candidates | None]) -> Candidates | None:
    # A disjunction is bounded only when every disjunct is.
    if any(p is None for p in parts):
        return None
    unique = tuple(dict.fromkeys(p for p in parts if p is not None))
    return unique[0] if len(unique) == 1 else AnyOf(unique)


def _comparison(expr: CompExpr) -> Candidates | None:
    if isinstance(expr, CompAnd):
        return _all([_comparison(e) for e in expr.operands])
    if isinstance(expr, CompOr):
        return _any([_comparison(e) for e in expr.operands])
    return _test(expr)


def _test(test: Comparison) -> Candidates | None:
    targets = _resolve(test.path)
    if targets is None:
        return None
    equality = (test.op is Op.EQ and not test.negated) or (test.op is Op.NE and test.negated)
    if equality and not isinstance(test.value, tuple) and test.value is not None:
        return _any([_equal(t, steps, test.value) for t, steps in targets])
    if test.op is Op.IN and not test.negated and isinstance(test.value, tuple):
        return _any([_equal(t, steps, v) for t, steps in targets for v in test.value])
    if test.op is Op.ISSUBSET and not test.negated and isinstance(test.value, str):
        if not all(t in _IP_TYPES and steps == ("value",) for t, steps in targets):
            return None
        # A constant that is no network has nothing inside it.
        return _ip_lookup(test.value) or AnyOf(())
    return None


def _ip_lookup(text: str) -> IpRangeLookup | None:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return IpRangeLookup(network.version, *ip_to_range(text))


def _is_ref(step: Step) -> bool:
    return isinstance(step, str) and step.endswith(("_ref", "_refs"))


def _resolve(path: ObjectPath) -> list[tuple[str, tuple[Step, ...]]] | None:
    """The SCO types a path ends on, with the steps left inside them; None if not followable."""
    steps = path.steps
    if path.object_type != "mdx-ai-account" or steps[0] not in _ACCOUNT_REFS:
        return None if any(map(_is_ref, steps)) else [(path.object_type, steps)]
    ref, rest = steps[0], steps[1:]
    assert isinstance(ref, str)
    if ref.endswith("_refs"):
        if not rest or isinstance(rest[0], str):
            return None  # a key step on the reference list itself selects nothing useful
        rest = rest[1:]
    if not rest or any(map(_is_ref, rest)):
        return None
    return [(sco_type, rest) for sco_type in _ACCOUNT_REFS[ref]]


def _equal(sco_type: str, steps: tuple[Step, ...], value: Constant) -> Candidates | None:
    # Binary and timestamp constants, and `_hex`/`_bin` properties, compare by decoded
    # value, not by stored text.
    if isinstance(value, bytes | datetime):
        return None
    if any(isinstance(s, str) and s.endswith(("_hex", "_bin")) for s in steps):
        return None
    if isinstance(value, str):
        if len(steps) == 1 and steps[0] in _HASH_FIELDS.get(sco_type, ()):
            return HashLookup(sco_type, str(steps[0]), value)
        if sco_type in _IP_TYPES and steps == ("value",):
            return _ip_lookup(value) or PropertyLookup(sco_type, steps, value)
        if (
            sco_type == "mdx-prompt-signature"
            and len(steps) == 2
            and steps[0] == "lsh_bands"
            and not isinstance(steps[1], str)
        ):
            return LshBandLookup(value)
        if sco_type == "mdx-client-fingerprint" and len(steps) == 1 and steps[0] in _CLIENT_FIELDS:
            return ClientLookup(str(steps[0]), value)
    if (
        sco_type == "autonomous-system"
        and steps == ("number",)
        and not isinstance(value, bool | str)
        and float(value).is_integer()
    ):
        return AsnLookup(int(value))
    return PropertyLookup(sco_type, steps, value)
