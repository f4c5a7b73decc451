"""Hydra-cluster linking (DOMAIN.md §4.3): which local accounts are one operator's, pure Python.

No Django here (tests/test_architecture.py): indicators.cluster_service reads the account
tables in bulk and feeds plain records; this module links accounts with a union-find and
decides which connected components are hydra-cluster candidates.

* **Strong** link types (§4.3.2) union every account holding the value: the same payment HMAC
  (PAN or PAR basis), ``email-canonical`` or phone HMAC, API-key SHA-256 or device id.
* **Weak** link types (§4.3.3) make an edge only when at least two *different* ones coincide
  for the same pair: the same signup /24 (IPv4) or /48 (IPv6) with sign-ups within 24 h, the
  same rare client fingerprint (ja4/ja4h), the same template HMAC among each account's top
  templates, and timing histograms closer than a Jensen–Shannon distance of 0.1 over the same
  window. Timing is compared only for pairs that already share another weak value.
* **Degree cap** (§4.3.4): a value held by more than D accounts is ignored — a large NAT, a
  university egress or a common SDK string — unless an indicator matched it or it is
  ``ai-reseller-egress``. "Rare" client fingerprint means exactly this: held by ≤ D accounts.
* **Window** (§4.3.1): only attribute values seen inside [now − window, now] count.
* **Candidate** (§4.3.5): a component of at least ``min_size`` accounts with an indicator hit,
  or with a median narrow-capability score ≥ 0.7 and a top-10 template share ≥ 0.6.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

from indicators.matching.similarity import jensen_shannon_distance

PAYMENT = "payment"
EMAIL = "email-canonical"
PHONE = "phone"
API_KEY = "api-key"
DEVICE = "device-id"
SIGNUP_NET = "signup-net"
CLIENT = "client-fingerprint"
TEMPLATE = "template"
TIMING = "timing"

STRONG_TYPES = (PAYMENT, EMAIL, PHONE, API_KEY, DEVICE)
# Weak types that arrive as shared values; timing is compared pairwise instead (see link_timing).
GROUPED_WEAK_TYPES = (SIGNUP_NET, CLIENT, TEMPLATE)
WEAK_TYPES = (*GROUPED_WEAK_TYPES, TIMING)
LINK_TYPES = STRONG_TYPES + WEAK_TYPES
_BIT = {link_type: 1 << index for index, link_type in enumerate(LINK_TYPES)}

RESELLER_EGRESS = "ai-reseller-egress"
SIGNUP_SPAN = timedelta(hours=24)
TIMING_MAX_DISTANCE = 0.1
# §4.2 min_requests: a histogram of fewer requests is too noisy to compare.
TIMING_MIN_REQUESTS = 1000
TOP_TEMPLATES = 10
NARROW_MIN = 0.7
TEMPLATE_SHARE_MIN = 0.6
# mdx-capability-ov (DOMAIN.md §1.7): 11 specific capabilities, plus "general" for none in particular.
CAPABILITY_LABELS = 11
GENERAL_CAPABILITY = "general"


@dataclass(frozen=True)
class LinkConfig:
    """The §4.3 parameters of one linking run; ``now`` ends the rolling window."""

    now: datetime
    window_days: int = 90
    degree_cap: int = 50
    min_size: int = 20

    @property
    def window_start(self) -> datetime:
        return self.now - timedelta(days=self.window_days)

    def in_window(self, first_seen: datetime, last_seen: datetime) -> bool:
        return last_seen >= self.window_start and first_seen <= self.now


@dataclass(frozen=True)
class Holder:
    """One account holding a value, seen with it from ``first_seen`` to ``last_seen``.

    For a signup network both are the sign-up time.
    """

    account: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class ValueGroup:
    """The accounts holding one attribute value; ``exempt`` lifts the degree cap (§4.3.4)."""

    link_type: str
    value: str
    holders: tuple[Holder, ...]
    exempt: bool = False


@dataclass(frozen=True)
class TimingWindow:
    """One account's timing histograms over one window (§4.2 timing histogram definition)."""

    start: datetime
    end: datetime
    request_count: int
    iat_histogram: tuple[float, ...]
    hour_of_day_histogram: tuple[float, ...]


TimingLoader = Callable[[set[int]], Mapping[int, Sequence[TimingWindow]]]


@dataclass
class LinkStats:
    groups_linked: int = 0  # shared values that linked accounts (strong or weak)
    values_capped: int = 0  # values ignored by the degree cap
    weak_edges: int = 0  # account pairs joined by ≥ 2 weak types
    timing_pairs: int = 0  # pairs whose timing histograms were compared


@dataclass(frozen=True)
class Component:
    """A connected component: its accounts (ascending) and, per link type, how many of them
    are tied to another member through that type."""

    accounts: tuple[int, ...]
    link_counts: dict[str, int]


@dataclass
class Linking:
    components: list[Component]  # ≥ 2 accounts each, largest first
    stats: LinkStats = field(default_factory=LinkStats)


@dataclass(frozen=True)
class Assessment:
    """The §4.3.5 verdict on one component; ``reason`` is empty unless it is a candidate."""

    is_candidate: bool
    reason: str
    narrow_score_median: float | None
    top_template_share: float | None


class UnionFind:
    """Disjoint sets over account ids, created on first union (path halving, union by size)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}

    def find(self, item: int) -> int:
        parent = self.parent
        while parent.get(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return
        size_a, size_b = self.size.get(root_a, 1), self.size.get(root_b, 1)
        if size_a < size_b:
            root_a, root_b = root_b, root_a
        self.parent.setdefault(root_a, root_a)
        self.parent[root_b] = root_a
        self.size[root_a] = size_a + size_b

    def sets(self) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for item in self.parent:
            groups.setdefault(self.find(item), []).append(item)
        return list(groups.values())


# --- Linking -------------------------------------------------------------------------------------


def link_components(
    strong: Iterable[ValueGroup],
    weak: Iterable[ValueGroup],
    config: LinkConfig,
    timing_for: TimingLoader | None = None,
) -> Linking:
    """Link accounts (§4.3.2–4.3.4) and return the components of ≥ 2 accounts.

    ``strong`` and ``weak`` may be generators (each is consumed once, group by group).
    ``timing_for`` is called once, with the accounts that appear in a pair sharing another weak
    value, and returns their timing windows; without it timing links nothing.
    """
    linker = _Linker(config)
    for group in strong:
        linker.add_strong(group)
    for group in weak:
        linker.add_weak(group)
    linker.link_weak_pairs()
    if timing_for is not None:
        linker.link_timing(timing_for)
    return linker.result()


class _Linker:
    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self.sets = UnionFind()
        self.masks: dict[int, int] = {}  # account -> bits of the link types tying it
        self.stats = LinkStats()
        # account -> weak type -> [(value, sign-up time or None)], from uncapped shared values
        self.weak_keys: dict[int, dict[str, list[tuple[str, datetime | None]]]] = {}
        # Groups of ≤ D accounts whose pairs may be timing-compared (quadratic: never above D).
        self.timing_groups: list[tuple[str, tuple[Holder, ...]]] = []

    def linkable(self, group: ValueGroup) -> tuple[Holder, ...] | None:
        """The group's in-window holders, one per account; None when it links nobody."""
        by_account: dict[int, Holder] = {}
        for holder in group.holders:
            if not self.config.in_window(holder.first_seen, holder.last_seen):
                continue
            known = by_account.get(holder.account)
            if known is None or holder.first_seen < known.first_seen:
                by_account[holder.account] = holder
        if len(by_account) < 2:
            return None
        if is_capped(len(by_account), exempt=group.exempt, cap=self.config.degree_cap):
            self.stats.values_capped += 1
            return None
        return tuple(sorted(by_account.values(), key=lambda h: (h.first_seen, h.account)))

    def tie(self, a: int, b: int, bits: int) -> None:
        self.sets.union(a, b)
        self.masks[a] = self.masks.get(a, 0) | bits
        self.masks[b] = self.masks.get(b, 0) | bits

    def add_strong(self, group: ValueGroup) -> None:
        if group.link_type not in STRONG_TYPES:
            raise ValueError(f"not a strong link type: {group.link_type!r}")
        holders = self.linkable(group)
        if holders is None:
            return
        self.stats.groups_linked += 1
        first = holders[0].account
        for holder in holders[1:]:
            self.tie(first, holder.account, _BIT[group.link_type])

    def add_weak(self, group: ValueGroup) -> None:
        if group.link_type not in GROUPED_WEAK_TYPES:
            raise ValueError(f"not a grouped weak link type: {group.link_type!r}")
        holders = self.linkable(group)
        if holders is None:
            return
        signup = group.link_type == SIGNUP_NET
        for holder in holders:
            keys = self.weak_keys.setdefault(holder.account, {})
            keys.setdefault(group.link_type, []).append((group.value, holder.first_seen if signup else None))
        if len(holders) <= self.config.degree_cap:
            self.timing_groups.append((group.link_type, holders))

    def link_weak_pairs(self) -> None:
        """§4.3.3 for the grouped weak types: accounts sharing a value of two different types.

        Accounts are bucketed by their (value of type 1, value of type 2) combinations, so
        every bucket is a set of pairwise-linked accounts and no pair is enumerated. With a
        signup network in the combination, sign-ups must also fall within 24 h: sorted by
        time, consecutive accounts at most 24 h apart are linked, which connects exactly the
        accounts the pairwise rule connects.
        """
        for type_a, type_b in combinations(GROUPED_WEAK_TYPES, 2):
            buckets: dict[tuple[str, str], list[tuple[int, datetime | None]]] = {}
            for account, keys in self.weak_keys.items():
                if type_a not in keys or type_b not in keys:
                    continue
                for value_a, signed_up_a in keys[type_a]:
                    for value_b, signed_up_b in keys[type_b]:
                        signed_up = signed_up_a or signed_up_b
                        buckets.setdefault((value_a, value_b), []).append((account, signed_up))
            bits = _BIT[type_a] | _BIT[type_b]
            for members in buckets.values():
                if len(members) >= 2:
                    self.link_bucket(members, bits, timed=SIGNUP_NET in (type_a, type_b))

    def link_bucket(self, members: list[tuple[int, datetime | None]], bits: int, *, timed: bool) -> None:
        if not timed:
            first = members[0][0]
            for account, _ in members[1:]:
                self.tie(first, account, bits)
                self.stats.weak_edges += 1
            return
        members.sort(key=lambda m: (m[1], m[0]))
        for (previous, at_previous), (account, at) in zip(members, members[1:], strict=False):
            if at - at_previous <= SIGNUP_SPAN:
                self.tie(previous, account, bits)
                self.stats.weak_edges += 1

    def timing_pairs(self) -> Iterable[tuple[str, int, int]]:
        """(weak type, a, b) for every pair sharing a weak value of at most D accounts."""
        for link_type, holders in self.timing_groups:
            if link_type == SIGNUP_NET:
                for i, first in enumerate(holders):
                    for second in holders[i + 1 :]:
                        if second.first_seen - first.first_seen > SIGNUP_SPAN:
                            break
                        yield link_type, first.account, second.account
            else:
                for first, second in combinations(holders, 2):
                    yield link_type, first.account, second.account

    def link_timing(self, timing_for: TimingLoader) -> None:
        """Timing as the second weak type of a pair that already shares one (never all pairs)."""
        accounts = {account for _, a, b in self.timing_pairs() for account in (a, b)}
        if not accounts:
            return
        windows = {
            account: self.comparable_windows(rows)
            for account, rows in timing_for(accounts).items()
            if account in accounts
        }
        windows = {account: rows for account, rows in windows.items() if rows}
        if not windows:
            return
        similar: dict[tuple[int, int], bool] = {}
        for link_type, a, b in self.timing_pairs():
            if a not in windows or b not in windows:
                continue
            pair = (a, b) if a < b else (b, a)
            if pair not in similar:
                similar[pair] = timing_similar(windows[a], windows[b])
            if similar[pair]:
                self.tie(a, b, _BIT[link_type] | _BIT[TIMING])
                self.stats.weak_edges += 1
        self.stats.timing_pairs = len(similar)

    def comparable_windows(
        self, rows: Sequence[TimingWindow]
    ) -> dict[tuple[datetime, datetime], TimingWindow]:
        return {
            (row.start, row.end): row
            for row in rows
            if row.request_count >= TIMING_MIN_REQUESTS and self.config.in_window(row.start, row.end)
        }

    def result(self) -> Linking:
        components = []
        for accounts in self.sets.sets():
            if len(accounts) < 2:
                continue
            counts = {}
            for link_type in LINK_TYPES:
                tied = sum(1 for a in accounts if self.masks.get(a, 0) & _BIT[link_type])
                if tied:
                    counts[link_type] = tied
            components.append(Component(tuple(sorted(accounts)), counts))
        components.sort(key=lambda c: (-len(c.accounts), c.accounts[0]))
        return Linking(components, self.stats)


def is_capped(holders: int, *, exempt: bool, cap: int) -> bool:
    """§4.3.4: a value held by more than ``cap`` accounts links nobody, unless it is exempt."""
    return holders > cap and not exempt


def timing_similar(
    a: Mapping[tuple[datetime, datetime], TimingWindow], b: Mapping[tuple[datetime, datetime], TimingWindow]
) -> bool:
    """Some window both accounts have (same start and end) with both histograms (inter-arrival
    times and hour of day) closer than TIMING_MAX_DISTANCE."""
    for key in a.keys() & b.keys():
        try:
            distance = max(
                jensen_shannon_distance(a[key].iat_histogram, b[key].iat_histogram),
                jensen_shannon_distance(a[key].hour_of_day_histogram, b[key].hour_of_day_histogram),
            )
        except ValueError:  # malformed or empty histogram: no evidence either way
            continue
        if distance < TIMING_MAX_DISTANCE:
            return True
    return False


# --- Candidate rule (§4.3.5) -----------------------------------------------------------------------


def narrow_capability_score(tag_weights: Mapping[str, float]) -> float | None:
    """How narrowly an account's prompts focus on few capabilities, in [0, 1]; None without tags.

    ``tag_weights`` is the prompt mass per capability tag over the window (a signature's
    sample_size split evenly over its tags). The score is 1 − H / log2(K): H is the Shannon
    entropy (bits) of the tag distribution and K the number of capabilities — the 11 specific
    ones of mdx-capability-ov, or more if other tags are seen — so one capability scores 1 and
    an even spread over all of them 0. ``general`` means "no capability in particular": its
    mass is spread evenly over the K capabilities, so an account tagged only ``general`` scores 0.
    """
    positive = {tag: w for tag, w in tag_weights.items() if w > 0}
    total = math.fsum(positive.values())
    if total <= 0:
        return None
    general = positive.pop(GENERAL_CAPABILITY, 0.0)
    labels = max(CAPABILITY_LABELS, len(positive))
    spread = general / labels
    masses = [w + spread for w in positive.values()]
    if spread:
        masses += [spread] * (labels - len(positive))
    entropy = -math.fsum(m / total * math.log2(m / total) for m in masses if m > 0)
    return min(max(1.0 - entropy / math.log2(labels), 0.0), 1.0)


def top_template_share(template_weights: Mapping[str, float], top: int = TOP_TEMPLATES) -> float | None:
    """The share of prompt mass in the ``top`` heaviest templates (§4.1 top10_template_share)."""
    weights = sorted((w for w in template_weights.values() if w > 0), reverse=True)
    total = math.fsum(weights)
    if total <= 0:
        return None
    return math.fsum(weights[:top]) / total


def assess_component(
    *,
    size: int,
    indicator_hits: int,
    narrow_scores: Sequence[float | None],
    template_weights: Mapping[str, float],
    min_size: int,
) -> Assessment:
    """§4.3.5: is this component a hydra-cluster candidate, and why.

    ``narrow_scores`` has one entry per member; a member without capability tags counts as 0
    (no evidence of narrowness), so the median speaks for the whole component.
    ``template_weights`` is the prompt mass per template summed over the members.
    """
    scores = [score or 0.0 for score in narrow_scores]
    median = statistics.median(scores) if scores else None
    share = top_template_share(template_weights)
    if size < min_size:
        return Assessment(False, "", median, share)
    if indicator_hits:
        return Assessment(
            True,
            f"{indicator_hits} member{'s' if indicator_hits != 1 else ''} matched by indicators",
            median,
            share,
        )
    if median is not None and median >= NARROW_MIN and share is not None and share >= TEMPLATE_SHARE_MIN:
        reason = (
            f"narrow capability (median score {median:.2f} ≥ {NARROW_MIN}) and repetitive prompts "
            f"(top-{TOP_TEMPLATES} template share {share:.2f} ≥ {TEMPLATE_SHARE_MIN})"
        )
        return Assessment(True, reason, median, share)
    return Assessment(False, "", median, share)
