"""Hydra-cluster linking, the pure algorithm (DOMAIN §4.3): no database, plain records in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from indicators import clustering as c
from indicators.clustering import Holder, LinkConfig, TimingWindow, ValueGroup

NOW = datetime(2026, 11, 23, tzinfo=UTC)
DAY = timedelta(days=1)
CONFIG = LinkConfig(now=NOW, window_days=90, degree_cap=50, min_size=20)
IAT = (0.0, 0.0, 0.01, 0.02, 0.61, 0.3, 0.04, 0.01, 0.01, 0, 0, 0, 0, 0, 0, 0)
HOD = tuple([1 / 24] * 24)
OTHER_IAT = (0.5, 0.3, 0.1, 0.05, 0.05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
OTHER_HOD = tuple([0.1] * 8 + [0.2 / 16] * 16)


def group(link_type: str, value: str, accounts, *, at: datetime = NOW - 10 * DAY, exempt=False) -> ValueGroup:
    """Accounts holding a value, all seen at ``at`` (or at the given per-account times)."""
    times = accounts if isinstance(accounts, dict) else dict.fromkeys(accounts, at)
    return ValueGroup(link_type, value, tuple(Holder(a, t, t) for a, t in times.items()), exempt)


def link(strong=(), weak=(), timing=None, config=CONFIG) -> c.Linking:
    return c.link_components(strong, weak, config, timing)


def members(result: c.Linking) -> list[tuple[int, ...]]:
    return [component.accounts for component in result.components]


# --- Strong links ------------------------------------------------------------------------------------


def test_strong_links_union_accounts_transitively_across_types():
    result = link(
        strong=[
            group(c.PAYMENT, "card-1", [1, 2]),
            group(c.EMAIL, "mail-1", [2, 3]),
            group(c.API_KEY, "key-1", [3, 4]),
            group(c.DEVICE, "device-1", [7, 8]),
            group(c.PHONE, "phone-1", [9]),  # held by one account: links nobody
        ]
    )
    assert members(result) == [(1, 2, 3, 4), (7, 8)]
    assert result.components[0].link_counts == {c.PAYMENT: 2, c.EMAIL: 2, c.API_KEY: 2}
    assert result.stats.groups_linked == 4


def test_a_grouped_type_in_the_wrong_stream_is_refused():
    with pytest.raises(ValueError, match="not a strong link type"):
        link(strong=[group(c.CLIENT, "ja4:x", [1, 2])])
    with pytest.raises(ValueError, match="not a grouped weak link type"):
        link(weak=[group(c.PAYMENT, "card", [1, 2])])


# --- Weak links --------------------------------------------------------------------------------------


def test_one_weak_type_alone_links_nobody():
    result = link(
        weak=[
            group(c.SIGNUP_NET, "198.51.100.0/24", [1, 2, 3]),
            group(c.CLIENT, "ja4:rare", [4, 5]),
            group(c.TEMPLATE, "tmpl-1", [6, 7]),
        ]
    )
    assert members(result) == []
    assert result.stats.weak_edges == 0


def test_two_different_weak_types_on_the_same_pair_link_it():
    result = link(
        weak=[
            group(c.SIGNUP_NET, "198.51.100.0/24", [1, 2, 3]),
            group(c.CLIENT, "ja4:rare", [1, 2, 9]),
        ]
    )
    assert members(result) == [(1, 2)]  # 3 shares only the net, 9 only the client
    assert result.components[0].link_counts == {c.SIGNUP_NET: 2, c.CLIENT: 2}


def test_weak_types_on_different_pairs_do_not_add_up():
    # 1–2 share a net, 2–3 share a template: each pair has one weak type only.
    result = link(weak=[group(c.SIGNUP_NET, "net", [1, 2]), group(c.TEMPLATE, "tmpl", [2, 3])])
    assert members(result) == []


def test_two_values_of_the_same_weak_type_are_still_one_type():
    result = link(weak=[group(c.CLIENT, "ja4:a", [1, 2]), group(c.CLIENT, "ja4h:b", [1, 2])])
    assert members(result) == []


def test_signup_network_links_only_sign_ups_within_24_hours():
    start = NOW - 30 * DAY
    signups = {1: start, 2: start + timedelta(hours=23), 3: start + timedelta(hours=47), 4: start + 5 * DAY}
    result = link(weak=[group(c.SIGNUP_NET, "net", signups), group(c.CLIENT, "ja4:x", [1, 2, 3, 4])])
    # 1–2 and 2–3 are within 24 h (1–3 are not, but 2 connects them); 4 signed up days later.
    assert members(result) == [(1, 2, 3)]


# --- Degree cap ---------------------------------------------------------------------------------------


def test_degree_cap_stops_a_shared_nat_and_a_common_sdk_string_fusing_customers():
    customers = list(range(1, 61))  # 60 > D = 50 accounts behind one NAT, on one common SDK
    result = link(
        strong=[group(c.PAYMENT, "shared-corporate-card", customers)],
        weak=[group(c.SIGNUP_NET, "203.0.113.0/24", customers), group(c.CLIENT, "ja4:sdk", customers)],
    )
    assert members(result) == []
    assert result.stats.values_capped == 3


def test_degree_cap_counts_accounts_not_rows():
    holders = tuple(Holder(a, NOW - DAY, NOW - DAY) for a in (1, 2) for _ in range(40))
    result = link(strong=[ValueGroup(c.PAYMENT, "card", holders)])
    assert members(result) == [(1, 2)]


def test_degree_cap_is_lifted_for_indicator_values_and_reseller_egress():
    operators = list(range(1, 61))
    result = link(
        strong=[group(c.PAYMENT, "card-on-an-indicator", list(range(100, 161)), exempt=True)],
        weak=[
            group(c.SIGNUP_NET, "egress", operators, exempt=True),  # ai-reseller-egress
            group(c.CLIENT, "ja4:indicator", operators, exempt=True),  # matched by an indicator
        ],
    )
    assert members(result) == [tuple(range(100, 161)), tuple(operators)]  # largest first
    assert result.stats.values_capped == 0


# --- Window -------------------------------------------------------------------------------------------


def test_only_values_seen_inside_the_90_day_window_link():
    old = NOW - 120 * DAY
    result = link(
        strong=[
            group(c.PAYMENT, "old-card", [1, 2], at=old),
            ValueGroup(c.EMAIL, "mail", (Holder(3, NOW - 5 * DAY, NOW), Holder(4, old, old))),
            group(c.PHONE, "phone", [5, 6], at=NOW - 89 * DAY),
            group(c.DEVICE, "future", [7, 8], at=NOW + DAY),
        ]
    )
    assert members(result) == [(5, 6)]


def test_a_value_seen_over_a_period_counts_when_the_period_reaches_into_the_window():
    long_ago = NOW - 200 * DAY
    holders = (Holder(1, long_ago, NOW - 10 * DAY), Holder(2, long_ago, NOW - 80 * DAY))
    assert members(link(strong=[ValueGroup(c.PAYMENT, "card", holders)])) == [(1, 2)]


def test_the_degree_cap_counts_only_accounts_inside_the_window():
    holders = tuple(Holder(a, NOW - 200 * DAY, NOW - 200 * DAY) for a in range(10, 70))
    holders += (Holder(1, NOW - DAY, NOW - DAY), Holder(2, NOW - DAY, NOW - DAY))
    assert members(link(strong=[ValueGroup(c.PAYMENT, "card", holders)])) == [(1, 2)]


# --- Timing ---------------------------------------------------------------------------------------------


def window(iat=IAT, hod=HOD, *, start=NOW - 14 * DAY, days=7, requests=5000) -> TimingWindow:
    return TimingWindow(start, start + timedelta(days=days), requests, iat, hod)


class TimingSource:
    """Records which accounts the linker asked about."""

    def __init__(self, windows: dict[int, list[TimingWindow]]):
        self.windows = windows
        self.asked: list[set[int]] = []

    def __call__(self, accounts: set[int]):
        self.asked.append(set(accounts))
        return {a: self.windows[a] for a in accounts if a in self.windows}


def test_timing_is_compared_only_for_pairs_sharing_another_weak_type():
    same = [window()]
    source = TimingSource({a: same for a in range(1, 9)})
    result = link(weak=[group(c.CLIENT, "ja4:x", [1, 2]), group(c.TEMPLATE, "tmpl", [3, 4])], timing=source)
    # 5–8 have identical timing but share nothing else: never asked about, never compared, not linked.
    assert source.asked == [{1, 2, 3, 4}]
    assert result.stats.timing_pairs == 2
    assert members(result) == [(1, 2), (3, 4)]
    assert result.components[0].link_counts == {c.CLIENT: 2, c.TIMING: 2}


def test_timing_links_only_close_histograms_over_the_same_window():
    source = TimingSource(
        {
            1: [window()],
            2: [window(iat=OTHER_IAT)],  # far inter-arrival times
            3: [window(hod=OTHER_HOD)],  # far hours of day
            4: [window(start=NOW - 30 * DAY)],  # same shape, another window
            5: [window(requests=10)],  # too few requests to compare
        }
    )
    result = link(weak=[group(c.CLIENT, "ja4:x", [1, 2, 3, 4, 5])], timing=source)
    assert members(result) == []
    assert result.stats.timing_pairs == 6  # pairs among 1–4: account 5 has no comparable window


def test_timing_pairs_of_a_signup_network_need_sign_ups_within_24_hours():
    start = NOW - 20 * DAY
    source = TimingSource({1: [window()], 2: [window()], 3: [window()]})
    signups = {1: start, 2: start + timedelta(hours=3), 3: start + 3 * DAY}
    result = link(weak=[group(c.SIGNUP_NET, "net", signups)], timing=source)
    assert source.asked == [{1, 2}]
    assert members(result) == [(1, 2)]
    assert result.components[0].link_counts == {c.SIGNUP_NET: 2, c.TIMING: 2}


def test_timing_is_never_compared_inside_an_exempt_group_above_the_cap():
    operators = list(range(1, 61))
    source = TimingSource({a: [window()] for a in operators})
    result = link(weak=[group(c.CLIENT, "ja4:indicator", operators, exempt=True)], timing=source)
    assert source.asked == []
    assert members(result) == []


# --- Candidate rule -----------------------------------------------------------------------------------


def test_narrow_capability_score_is_one_for_one_capability_and_zero_for_an_even_spread():
    assert c.narrow_capability_score({"agentic-coding": 500}) == 1.0
    labels = ["agentic-coding", "tool-use", "tool-orchestration", "agentic-reasoning",
              "reasoning-trace-elicitation", "rubric-grading", "censorship-rewrite", "computer-use",
              "computer-vision", "data-analysis", "coding"]  # fmt: skip
    assert c.narrow_capability_score(dict.fromkeys(labels, 10)) == pytest.approx(0.0, abs=1e-9)
    assert c.narrow_capability_score({"general": 10}) == pytest.approx(0.0, abs=1e-9)
    # Two capabilities evenly: H = 1 bit of log2(11) ≈ 3.459 bits.
    assert c.narrow_capability_score({"coding": 1, "tool-use": 1}) == pytest.approx(0.71093, abs=1e-5)
    # Half "general": the other half still sits on one capability.
    half = c.narrow_capability_score({"coding": 10, "general": 10})
    assert 0.0 < half < c.narrow_capability_score({"coding": 1, "tool-use": 1})
    assert c.narrow_capability_score({}) is None


def test_the_capability_vocabulary_size_matches_the_extension():
    from indicators.extensions import CAPABILITY_OV

    assert c.GENERAL_CAPABILITY in CAPABILITY_OV
    assert len(CAPABILITY_OV) - 1 == c.CAPABILITY_LABELS


def test_top_template_share_is_the_mass_of_the_ten_heaviest_templates():
    weights = {f"t{i}": 10 for i in range(10)} | {f"rare{i}": 1 for i in range(25)}
    assert c.top_template_share(weights) == pytest.approx(100 / 125)
    assert c.top_template_share({}) is None


def assess(size=25, hits=0, scores=(0.9,) * 25, templates=None, min_size=20) -> c.Assessment:
    return c.assess_component(
        size=size,
        indicator_hits=hits,
        narrow_scores=list(scores),
        template_weights={"t": 70, "u": 30} if templates is None else templates,
        min_size=min_size,
    )


def test_a_large_component_with_an_indicator_hit_is_a_candidate():
    verdict = assess(hits=3, scores=[None] * 25, templates={})
    assert verdict.is_candidate
    assert verdict.reason == "3 members matched by indicators"


def test_a_large_narrow_repetitive_component_without_hits_is_a_candidate():
    verdict = assess()
    assert verdict.is_candidate
    assert "narrow capability (median score 0.90" in verdict.reason
    assert "top-10 template share 1.00" in verdict.reason
    assert verdict.narrow_score_median == pytest.approx(0.9)


def test_the_candidate_rule_needs_size_and_both_prompt_conditions():
    assert not assess(size=19, hits=5).is_candidate
    assert assess(size=19, hits=5).reason == ""
    broad = [0.69] * 25
    assert not assess(scores=broad).is_candidate
    spread = {f"t{i}": 1 for i in range(20)}  # top-10 share 0.5
    assert not assess(templates=spread).is_candidate
    # Members without capability tags count as 0: 12 narrow of 25 is not a narrow median.
    assert not assess(scores=[1.0] * 12 + [None] * 13).is_candidate
    assert assess(scores=[1.0] * 13 + [None] * 12).is_candidate
