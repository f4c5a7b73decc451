"""Plan → SQL candidates: always a superset, and the exact result equals the pure evaluator."""

from __future__ import annotations

import random

import pytest

from indicators import matching_service as ms
from indicators.matching import PatternError, account_observations, compile_pattern
from indicators.matching.plan import AsnLookup, ClientLookup, HashLookup, IpRangeLookup, LshBandLookup
from tests.indicators.matching_helpers import oracle_harness, records_store

ACCOUNTS = 300
PATTERNS = 60


@pytest.fixture
def stored(db):
    harness = oracle_harness()
    rng = random.Random(harness.SEED)
    records = [harness.make_account(rng, i) for i in range(ACCOUNTS)]
    pks = records_store(records)
    observations = [account_observations(r) for r in records]
    values = harness.collect_values([[o[0]] for o in observations])
    maker = harness.PatternMaker(random.Random(harness.SEED + 7), values)
    patterns = [
        f"[{maker.comparison(p)}]"
        for p in harness.PROPS
        if not p.path.startswith("mdx-ai-account:account_created")
    ]
    patterns += [
        "[mdx-hashed-identifier:value = '" + harness.CLUSTER_B_EMAIL + "']",
        "[mdx-payment-fingerprint:value = '" + harness.CLUSTER_A_PAYMENT + "']",
        "[mdx-hashed-identifier:value = '" + harness.CLUSTER_B_API_KEY + "']",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        "[ipv4-addr:value ISSUBSET '203.0.113.0/24'] AND [autonomous-system:number = 64500]",
        "[mdx-client-fingerprint:ja4 = '" + harness.CLUSTER_A_JA4 + "']",
        "[mdx-ai-account:payment_refs[*].value = '" + harness.CLUSTER_A_PAYMENT + "' AND "
        "mdx-ai-account:account_tier = 'education-program']",
    ]
    while len(patterns) < PATTERNS + len(harness.PROPS):
        patterns.append(maker.pattern())
    return pks, records, observations, patterns


def _exact(compiled, observations, pks) -> set[int]:
    return {pk for pk, obs in zip(pks, observations, strict=True) if compiled.matches(obs)}


def test_sql_candidates_are_a_superset_and_exact_results_equal_the_evaluator(stored):
    pks, _, observations, patterns = stored
    specs, expected, indexed = [], {}, 0
    for number, pattern in enumerate(patterns, start=1):
        try:
            compiled = compile_pattern(pattern)
        except PatternError:
            continue
        expected[number] = (pattern, _exact(compiled, observations, pks))
        candidates = ms.candidates_for(compiled.plan.candidates)
        if candidates is not None:
            indexed += 1
            assert expected[number][1] <= candidates, pattern
        reduced = ms.reduce_candidates(compiled.plan.candidates)
        specs.append(
            ms.IndicatorSpec(
                number, "composite", 50, compiled, reduced, leaves=tuple(ms.candidate_leaves(reduced))
            )
        )
    # All patterns in one batch, as a retro-hunt runs them.
    hits = ms.match_specs(specs)
    for number, (pattern, accounts) in expected.items():
        assert {h.account_pk for h in hits[number]} == accounts, pattern
    assert len(expected) >= 80 and indexed >= 30, (len(expected), indexed)
    assert sum(1 for _, accounts in expected.values() if accounts) >= 40


def test_every_lookup_kind_resolves_to_the_accounts_holding_the_value(stored):
    pks, records, _, _ = stored
    by_pk = dict(zip(pks, records, strict=True))
    harness = oracle_harness()
    pk, record = next((pk, r) for pk, r in by_pk.items() if r.prompt_signatures and r.clients and r.api_keys)
    ip = record.ips[0]
    low, high = ms_ip_range(ip.ip)
    lookups = {
        HashLookup("mdx-hashed-identifier", "value", record.identifiers[0].value): pk,
        HashLookup("mdx-hashed-identifier", "value", record.api_keys[0].sha256): pk,
        IpRangeLookup(4 if "." in ip.ip else 6, low, high): pk,
        LshBandLookup(record.prompt_signatures[0].lsh_bands[3]): pk,
        ClientLookup("ja4", record.clients[0].ja4): pk,
    }
    if ip.asn is not None:
        lookups[AsnLookup(ip.asn)] = pk
    resolved = ms.resolve_lookups(lookups)
    for lookup, owner in lookups.items():
        assert owner in resolved[lookup], lookup
    cluster_a = {p for p, r in by_pk.items() if any(x.value == harness.CLUSTER_A_PAYMENT for x in r.payments)}
    payment = HashLookup("mdx-payment-fingerprint", "value", harness.CLUSTER_A_PAYMENT)
    assert ms.resolve_lookups([payment])[payment] == cluster_a


def test_a_pk_range_scope_restricts_candidates(stored):
    pks, *_ = stored
    compiled = compile_pattern("[ipv4-addr:value ISSUBSET '10.0.0.0/8']")
    everything = ms.candidates_for(compiled.plan.candidates)
    low, high = pks[10], pks[99]
    part = ms.candidates_for(compiled.plan.candidates, ms.Scope(low, high))
    assert part == {pk for pk in everything if low <= pk <= high}


def test_account_records_round_trip_the_stored_records(stored):
    pks, records, _, _ = stored
    loaded = ms.account_records(pks[:50])
    for pk, record in zip(pks[:50], records[:50], strict=True):
        assert account_observations(loaded[pk]) == account_observations(record)


def ms_ip_range(text: str) -> tuple[int, int]:
    from indicators.matching import ip_to_range

    return ip_to_range(text)
