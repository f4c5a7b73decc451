"""The candidate plan: structure, ip_to_range, and the superset invariant on generated data."""

from __future__ import annotations

from typing import Any

import pytest

from indicators.matching import compile_pattern, ip_to_range
from indicators.matching.nodes import AnyIndex
from indicators.matching.plan import (
    AllOf,
    AnyOf,
    AsnLookup,
    Candidates,
    ClientLookup,
    HashLookup,
    IpRangeLookup,
    LshBandLookup,
    PropertyLookup,
)

HEX = "ab" * 32
MAPPED = 0xFFFF << 32


def plan_of(pattern: str) -> Candidates | None:
    return compile_pattern(pattern).plan.candidates


def test_ip_to_range_maps_ipv4_into_ipv6_space() -> None:
    assert ip_to_range("198.51.100.0/24") == (MAPPED + 0xC6336400, MAPPED + 0xC63364FF)
    assert ip_to_range("198.51.100.7") == (MAPPED + 0xC6336407, MAPPED + 0xC6336407)
    assert ip_to_range("198.51.100.7/24") == ip_to_range("198.51.100.0/24")
    assert ip_to_range("::1") == (1, 1)
    assert ip_to_range("2001:db8::/32") == (0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1))
    with pytest.raises(ValueError):
        ip_to_range("not an ip")


def test_hash_terms() -> None:
    assert plan_of(f"[mdx-hashed-identifier:value = '{HEX}']") == HashLookup(
        "mdx-hashed-identifier", "value", HEX
    )
    assert plan_of(
        "[mdx-hashed-identifier:identifier_type = 'email-canonical' "
        f"AND mdx-hashed-identifier:value = '{HEX}']"
    ) == AllOf(
        (
            HashLookup("mdx-hashed-identifier", "identifier_type", "email-canonical"),
            HashLookup("mdx-hashed-identifier", "value", HEX),
        )
    )
    assert plan_of(f"[mdx-ai-account:payment_refs[*].value = '{HEX}']") == HashLookup(
        "mdx-payment-fingerprint", "value", HEX
    )


def test_negations_and_order_are_not_indexable() -> None:
    for pattern in [
        f"[mdx-hashed-identifier:value NOT = '{HEX}']",
        f"[mdx-hashed-identifier:value != '{HEX}']",
        "[autonomous-system:number < 5]",
        "[NOT EXISTS mdx-ai-account:ip_refs]",
        "[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']",
        "[ipv4-addr:value ISSUPERSET '10.0.0.1']",
        "[mdx-ai-account:status LIKE 'act%']",
        "[mdx-ai-account:status NOT IN ('active')]",
    ]:
        plan = compile_pattern(pattern).plan
        assert plan.full_scan and plan.observations[0].full_scan, pattern
    # NOT != is equality.
    assert plan_of("[autonomous-system:number NOT != 64500]") == AsnLookup(64500)


def test_network_terms() -> None:
    low, high = ip_to_range("198.51.100.0/24")
    assert plan_of("[ipv4-addr:value ISSUBSET '198.51.100.0/24']") == IpRangeLookup(4, low, high)
    assert plan_of("[mdx-ai-account:signup_ip_ref.value ISSUBSET '198.51.100.0/24']") == IpRangeLookup(
        4, low, high
    )
    assert plan_of("[mdx-ai-account:ip_refs[*].value = '2001:db8::1']") == IpRangeLookup(
        6, *ip_to_range("2001:db8::1")
    )
    assert plan_of("[ipv4-addr:value ISSUBSET 'nonsense']") == AnyOf(())
    assert plan_of("[autonomous-system:number IN (64500, 64501)]") == AnyOf(
        (AsnLookup(64500), AsnLookup(64501))
    )
    assert plan_of("[mdx-ai-account:asn_refs[*].number = 64500.0]") == AsnLookup(64500)


def test_sketch_client_and_generic_terms() -> None:
    assert plan_of(
        "[mdx-prompt-signature:lsh_bands[*] = '00:0a' OR mdx-prompt-signature:lsh_bands[*] = '01:0b']"
    ) == AnyOf((LshBandLookup("00:0a"), LshBandLookup("01:0b")))
    assert plan_of("[mdx-ai-account:prompt_signature_refs[*].lsh_bands[*] = '00:0a']") == LshBandLookup(
        "00:0a"
    )
    assert plan_of(
        "[mdx-client-fingerprint:ja4 = 't13' AND mdx-client-fingerprint:http_library = 'httpx']"
    ) == AllOf(
        (ClientLookup("ja4", "t13"), PropertyLookup("mdx-client-fingerprint", ("http_library",), "httpx"))
    )
    assert plan_of("[mdx-ai-account:account_tier = 'education-program']") == PropertyLookup(
        "mdx-ai-account", ("account_tier",), "education-program"
    )
    assert plan_of("[mdx-prompt-signature:capability_tags[*] = 'coding']") == PropertyLookup(
        "mdx-prompt-signature", ("capability_tags", AnyIndex()), "coding"
    )
    # Timestamps and binary compare by decoded value, so they are not looked up as text.
    assert plan_of("[x-blob:payload_hex = 'ABC']") is None
    assert plan_of("[x-blob:payload = h'414243']") is None
    assert plan_of("[mdx-ai-account:account_created = t'2026-09-14T00:00:00Z']") is None


def test_boolean_structure() -> None:
    asn = AsnLookup(64500)
    band = LshBandLookup("00:0a")
    # OR needs every side indexed; AND needs one.
    assert plan_of("[autonomous-system:number = 64500 OR autonomous-system:number > 3]") is None
    assert plan_of("[autonomous-system:number = 64500 AND autonomous-system:number > 3]") == asn
    assert plan_of("[autonomous-system:number = 64500] OR [mdx-ai-account:status != 'x']") is None
    assert plan_of("[autonomous-system:number = 64500] AND [mdx-ai-account:status != 'x']") == asn
    assert plan_of(
        "[autonomous-system:number = 64500] OR [mdx-prompt-signature:lsh_bands[*] = '00:0a']"
    ) == AnyOf((asn, band))
    assert plan_of(
        "([autonomous-system:number = 64500] FOLLOWEDBY [mdx-prompt-signature:lsh_bands[*] = '00:0a']) "
        "WITHIN 60 SECONDS"
    ) == AllOf((asn, band))
    plan = compile_pattern(
        "[autonomous-system:number = 64500] REPEATS 2 TIMES AND [mdx-ai-account:status != 'x']"
    ).plan
    assert [o.full_scan for o in plan.observations] == [False, True]
    assert plan.candidates == asn


# --- the superset invariant, checked against an in-memory stand-in for the SQL side


class Storage:
    """Per-account attribute index built from each account's profile observation."""

    def __init__(self, observations: list[list[Any]]) -> None:
        self.profiles = [obs[0] for obs in observations]
        self.everyone = frozenset(range(len(observations)))
        self._found: dict[Any, frozenset[int]] = {}

    def lookup(self, term: Any) -> frozenset[int]:
        if term not in self._found:
            self._found[term] = frozenset(
                account
                for account, profile in enumerate(self.profiles)
                if any(self._holds(term, sco) for sco in profile.objects.values())
            )
        return self._found[term]

    def candidates(self, plan: Candidates | None) -> frozenset[int]:
        if plan is None:
            return self.everyone
        if isinstance(plan, AnyOf):
            return frozenset().union(*(self.candidates(c) for c in plan.children))
        if isinstance(plan, AllOf):
            return frozenset.intersection(*(self.candidates(c) for c in plan.children))
        return self.lookup(plan)

    @staticmethod
    def _holds(term: Any, sco: dict[str, Any]) -> bool:
        kind = sco["type"]
        if isinstance(term, HashLookup):
            return kind == term.sco_type and sco.get(term.field) == term.value
        if isinstance(term, IpRangeLookup):
            if kind not in ("ipv4-addr", "ipv6-addr"):
                return False
            low, high = ip_to_range(sco["value"])
            return term.low <= low and high <= term.high
        if isinstance(term, AsnLookup):
            return kind == "autonomous-system" and sco["number"] == term.number
        if isinstance(term, LshBandLookup):
            return kind == "mdx-prompt-signature" and term.band_key in sco.get("lsh_bands", [])
        if isinstance(term, ClientLookup):
            return kind == "mdx-client-fingerprint" and sco.get(term.field) == term.value
        assert isinstance(term, PropertyLookup)
        return kind == term.sco_type and any(_same(v, term.value) for v in _walk([sco], term.path))


def _walk(values: list[Any], path: tuple[Any, ...]) -> list[Any]:
    for step in path:
        if isinstance(step, AnyIndex):
            values = [x for v in values if isinstance(v, list) for x in v]
        elif isinstance(step, int):
            values = [v[step] for v in values if isinstance(v, list) and 0 <= step < len(v)]
        else:
            values = [v[step] for v in values if isinstance(v, dict) and step in v]
    return values


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def test_plan_is_a_superset_of_oracle_matches(dataset: Any, oracle: Any) -> None:
    storage = Storage(dataset.observations)
    indexed = narrowed = 0
    for index, pattern in enumerate(dataset.patterns):
        if not oracle.accepted[index]:
            continue
        plan = compile_pattern(pattern).plan
        candidates = storage.candidates(plan.candidates)
        matched = {a for a, result in enumerate(oracle.results[index]) if result is True}
        assert matched <= candidates, f"plan misses {sorted(matched - candidates)[:5]} for {pattern}"
        indexed += not plan.full_scan
        narrowed += len(candidates) < len(storage.everyone) // 10
    print(
        f"\nplan: {indexed} of {len(dataset.patterns)} patterns indexed, "
        f"{narrowed} narrowed to < 10% of accounts"
    )
    # The generated patterns lean on indexable equalities often enough for this to mean something.
    assert indexed >= 0.3 * len(dataset.patterns)
    assert narrowed >= 0.1 * len(dataset.patterns)
