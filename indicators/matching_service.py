"""Local matching on the database (DOMAIN §4.2–4.5): plans → indexed SQL candidates → exact verification.

The pure engine (indicators.matching) compiles a pattern once into a CompiledPattern whose
MatchPlan names index lookups; this module turns those lookups into single indexed queries
on the §4.1 tables, loads the few candidate accounts, verifies them exactly with
``CompiledPattern.matches`` (plus the §4.2 similarity check for sketch indicators), writes
``Match`` rows idempotently and keeps one ``Alert`` per account scored by noisy-OR.

Entry points: ``indicator_match`` (one indicator version, optionally one account pk range),
``accounts_match`` (changed accounts against every active indicator), ``match_job_run`` (a
claimed retro-hunt chunk), ``indicator_withdraw`` / ``indicators_expire`` (revocation and
expiry), ``would_match_count`` (review preview), ``matching_sweep`` (re-queue lost work).
Everything here is node-private: nothing leaves the provider (§4.4).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from indicators.matching import (
    AccountRecord,
    ApiKeyRecord,
    ClientRecord,
    CompiledPattern,
    IdentifierRecord,
    IpRecord,
    PatternError,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
    account_observations,
    compile_pattern,
    ip_to_range,
    jensen_shannon_distance,
    minhash_jaccard,
)
from indicators.matching.plan import (
    AllOf,
    AnyOf,
    AsnLookup,
    Candidates,
    ClientLookup,
    HashLookup,
    IpRangeLookup,
    Lookup,
    LshBandLookup,
    PropertyLookup,
    candidate_leaves,
)
from indicators.matching.scos import IP_CONTEXT_EXTENSION
from indicators.models import (
    Account,
    AccountApiKey,
    AccountClient,
    AccountIdentifier,
    AccountIp,
    AccountLshBand,
    AccountPayment,
    AccountPromptSignature,
    AccountTiming,
    Alert,
    IndicatorMatchState,
    Match,
    MatchingCursor,
    MatchJob,
    StixObject,
)

logger = logging.getLogger(__name__)

State = IndicatorMatchState.Status

# Accounts loaded and verified per batch: ~9 queries each (account + 8 attribute tables).
RECORD_CHUNK = 1000
# Values per IN (...) list, well under SQLite's bound-parameter limit.
IN_CHUNK = 500
# Indicator states whose matches support an alert.
SUPPORTING = (State.PENDING, State.RUNNING, State.DONE, State.RELEASED)
# Confidence is optional in STIX 2.1; without one an indicator counts as "Med" (50 on the
# None/Low/Med/High scale of STIX 2.1 Appendix A).
DEFAULT_CONFIDENCE = 50
PROGRAMME_TIERS = frozenset({"education-program", "research-program", "startup-program"})
KINDS = (
    "exact-identifier",
    "payment",
    "network-range",
    "prompt-similarity",
    "timing-similarity",
    "client-fingerprint",
    "composite",
)
_EGRESS_PROXIES = frozenset({"datacenter", "ai-reseller-egress"})


def quarantine_threshold() -> int:
    return int(getattr(settings, "MDX_MATCH_QUARANTINE_THRESHOLD", 500))


def alert_min_score() -> float:
    return float(getattr(settings, "MDX_ALERT_MIN_SCORE", 0.5))


def stale_after() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "MDX_MATCH_STALE_SECONDS", 900)))


# --- Active indicators -------------------------------------------------------------------------------


def active_indicators(now: datetime | None = None) -> QuerySet[StixObject]:
    """Indicator versions to match now (DOMAIN §4.0): STIX patterns, published, not revoked,
    inside valid_from/valid_until, the newest published version of their id, and not
    withdrawn or superseded."""
    now = now or timezone.now()
    entry = apps.get_model("sharing", "CollectionEntry")
    newer = StixObject.objects.filter(
        stix_id=OuterRef("stix_id"), modified__gt=OuterRef("modified"), entries__isnull=False
    )
    return (
        StixObject.objects.filter(type="indicator", pattern_type="stix", revoked=False)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .filter(Exists(entry.objects.filter(stix_object=OuterRef("pk"))))
        .exclude(Exists(newer))
        .exclude(match_state__status__in=[State.SUPERSEDED, State.WITHDRAWN])
    )


def is_active(obj: StixObject, now: datetime | None = None) -> bool:
    return active_indicators(now).filter(pk=obj.pk).exists()


@lru_cache(maxsize=20000)
def _compiled(stix_id: str, modified: datetime, pattern: str) -> CompiledPattern:
    # Keyed on the version: versions are immutable, so a cached plan never goes stale.
    return compile_pattern(pattern)


class NotEvaluable(Exception):
    """The indicator cannot be evaluated here (bad pattern, unknown key epoch, missing reference)."""


@dataclass(frozen=True)
class Similarity:
    """The §4.2 mdx_match check of a prompt- or timing-similarity indicator."""

    kind: str
    reference: dict[str, Any]
    params: dict[str, Any]


@dataclass
class IndicatorSpec:
    """An indicator version ready to match: compiled plan, kind, §4.2 weight policy."""

    pk: int
    kind: str
    confidence: int
    compiled: CompiledPattern
    candidates: Candidates | None
    similarity: Similarity | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    leaves: tuple[Lookup, ...] = field(default=())


def indicator_spec(obj: StixObject) -> IndicatorSpec:
    """Compile an indicator version; raises NotEvaluable with the reason."""
    data = obj.data or {}
    pattern = data.get("pattern")
    if not isinstance(pattern, str):
        raise NotEvaluable("the indicator has no STIX pattern")
    try:
        compiled = _compiled(obj.stix_id, obj.modified, pattern)
    except (PatternError, ValueError) as exc:
        raise NotEvaluable(f"pattern not supported: {exc}") from None
    candidates = reduce_candidates(compiled.plan.candidates)
    kind = data.get("mdx_indicator_kind")
    if kind not in KINDS:
        kind = derive_kind(compiled.plan.candidates)
    _check_key_epochs(compiled.plan.candidates)
    similarity = _similarity(kind, data) if kind in ("prompt-similarity", "timing-similarity") else None
    return IndicatorSpec(
        pk=obj.pk,
        kind=kind,
        confidence=obj.confidence if obj.confidence is not None else DEFAULT_CONFIDENCE,
        compiled=compiled,
        candidates=candidates,
        similarity=similarity,
        valid_from=obj.valid_from,
        valid_until=obj.valid_until,
        leaves=tuple(candidate_leaves(candidates)),
    )


def derive_kind(candidates: Candidates | None) -> str:
    """The §4.2 kind implied by a plan's lookups when the indicator does not name one."""
    leaves = list(candidate_leaves(candidates))
    if not leaves:
        return "composite"
    kinds = set()
    for leaf in leaves:
        if isinstance(leaf, HashLookup):
            kinds.add("payment" if leaf.sco_type == "mdx-payment-fingerprint" else "exact-identifier")
        elif isinstance(leaf, IpRangeLookup | AsnLookup):
            kinds.add("network-range")
        elif isinstance(leaf, LshBandLookup):
            kinds.add("prompt-similarity")
        elif isinstance(leaf, ClientLookup):
            kinds.add("client-fingerprint")
        else:
            kinds.add("composite")
    # A pattern naming sketches without an mdx_match check is matched exactly, as composite.
    return kinds.pop() if len(kinds) == 1 and "prompt-similarity" not in kinds else "composite"


def _check_key_epochs(candidates: Candidates | None) -> None:
    # DOMAIN §4.2: an exact-identifier with a key epoch this node does not hold is not evaluable.
    keyring = getattr(settings, "MDX_KEYRING", None)
    if keyring is None:
        return
    key_ids = {
        leaf.value
        for leaf in candidate_leaves(candidates)
        if isinstance(leaf, HashLookup) and leaf.field == "key_id"
    }
    if key_ids and not key_ids & set(keyring.keys):
        raise NotEvaluable(f"unknown key epoch {sorted(key_ids)[0]!r}")


def _similarity(kind: str, data: dict) -> Similarity:
    params = data.get("mdx_match")
    if not isinstance(params, dict):
        raise NotEvaluable(f"{kind} indicator without mdx_match")
    ref_id = params.get("verify_with")
    expected = "mdx-prompt-signature" if kind == "prompt-similarity" else "mdx-timing-fingerprint"
    if not isinstance(ref_id, str) or not ref_id.startswith(expected + "--"):
        raise NotEvaluable(f"{kind} indicator needs mdx_match.verify_with naming a {expected}")
    row = StixObject.objects.filter(stix_id=ref_id).order_by("-modified").first()
    if row is None:
        raise NotEvaluable(f"the referenced {expected} is not in the store")
    reference = row.data
    key = "minhash" if kind == "prompt-similarity" else "iat_histogram"
    if not isinstance(reference.get(key), list) or not reference[key]:
        raise NotEvaluable(f"the referenced {expected} has no {key}")
    return Similarity(kind, reference, params)


# --- Plan → SQL candidates ----------------------------------------------------------------------------

# (sco_type, path) → (model, account column, value column, python type) for PropertyLookup.
_PROPERTY_COLUMNS: dict[tuple[str, tuple], tuple[type[models.Model], str, str, type]] = {
    ("mdx-ai-account", ("account_tier",)): (Account, "pk", "tier", str),
    ("mdx-ai-account", ("account_pseudonym",)): (Account, "pk", "pseudonym", str),
    ("mdx-ai-account", ("status",)): (Account, "pk", "status", str),
    ("mdx-ai-account", ("access_channel",)): (Account, "pk", "access_channel", str),
    ("mdx-ai-account", ("org_category",)): (Account, "pk", "org_category", str),
    ("mdx-ai-account", ("signup_country",)): (Account, "pk", "signup_country", str),
    ("mdx-hashed-identifier", ("normalization",)): (AccountIdentifier, "account_id", "normalization", str),
    ("mdx-payment-fingerprint", ("basis",)): (AccountPayment, "account_id", "basis", str),
    ("mdx-payment-fingerprint", ("key_id",)): (AccountPayment, "account_id", "key_id", str),
    ("mdx-payment-fingerprint", ("card_iin",)): (AccountPayment, "account_id", "card_iin", str),
    ("mdx-payment-fingerprint", ("card_network",)): (AccountPayment, "account_id", "card_network", str),
    ("mdx-payment-fingerprint", ("card_funding",)): (AccountPayment, "account_id", "card_funding", str),
    ("mdx-payment-fingerprint", ("issuer_country",)): (AccountPayment, "account_id", "issuer_country", str),
    ("mdx-payment-fingerprint", ("is_virtual",)): (AccountPayment, "account_id", "is_virtual", bool),
    ("mdx-client-fingerprint", ("http_library",)): (AccountClient, "account_id", "http_library", str),
    ("mdx-client-fingerprint", ("header_order_sha256",)): (
        AccountClient,
        "account_id",
        "header_order_sha256",
        str,
    ),
    ("ipv4-addr", ("value",)): (AccountIp, "account_id", "ip", str),
    ("ipv6-addr", ("value",)): (AccountIp, "account_id", "ip", str),
    ("ipv4-addr", ("extensions", IP_CONTEXT_EXTENSION, "proxy_type")): (
        AccountIp,
        "account_id",
        "proxy_type",
        str,
    ),
    ("ipv6-addr", ("extensions", IP_CONTEXT_EXTENSION, "proxy_type")): (
        AccountIp,
        "account_id",
        "proxy_type",
        str,
    ),
    ("mdx-prompt-signature", ("key_id",)): (AccountPromptSignature, "account_id", "key_id", str),
    ("mdx-prompt-signature", ("template_hmac",)): (
        AccountPromptSignature,
        "account_id",
        "template_hmac",
        str,
    ),
    ("mdx-prompt-signature", ("sample_size",)): (AccountPromptSignature, "account_id", "sample_size", int),
    ("mdx-timing-fingerprint", ("request_count",)): (AccountTiming, "account_id", "request_count", int),
    ("mdx-timing-fingerprint", ("max_concurrency",)): (AccountTiming, "account_id", "max_concurrency", int),
}

# Rough selectivity rank of a lookup: an AllOf keeps only its most selective children.
_RANK_HASH, _RANK_NARROW, _RANK_BAND, _RANK_BROAD, _RANK_PROPERTY = 0, 1, 2, 3, 5


def _rank(node: Candidates) -> int:
    if isinstance(node, AnyOf):
        return max((_rank(c) for c in node.children), default=0)
    if isinstance(node, AllOf):
        return min(_rank(c) for c in node.children)
    if isinstance(node, HashLookup):
        return _RANK_HASH if node.field == "value" else 6
    if isinstance(node, IpRangeLookup):
        return _RANK_NARROW if node.high - node.low < 65536 else _RANK_BROAD
    if isinstance(node, LshBandLookup):
        return _RANK_BAND
    if isinstance(node, ClientLookup):
        return _RANK_NARROW if node.field in ("ja4", "ja4h") else 4
    if isinstance(node, AsnLookup):
        return _RANK_BROAD
    return _RANK_PROPERTY


def _translatable(leaf: Lookup) -> bool:
    if isinstance(leaf, PropertyLookup):
        return (leaf.sco_type, leaf.path) in _PROPERTY_COLUMNS
    if isinstance(leaf, HashLookup) and leaf.sco_type == "mdx-payment-fingerprint":
        return leaf.field == "value"
    return True


def reduce_candidates(node: Candidates | None) -> Candidates | None:
    """The plan's candidates restricted to what SQL answers well; still a SUPERSET of the matches.

    Lookups with no table/column become None (unbounded), which makes an enclosing AnyOf
    unbounded and drops out of an AllOf. An AllOf keeps its most selective children only
    (its best one, plus any other as selective as a hash/narrow-range lookup): any subset of
    the conjuncts bounds the conjunction, and exact verification removes the rest.
    """
    if node is None:
        return None
    if isinstance(node, AnyOf):
        children = [reduce_candidates(c) for c in node.children]
        if any(c is None for c in children):
            return None
        kept = tuple(dict.fromkeys(c for c in children if c is not None))
        return kept[0] if len(kept) == 1 else AnyOf(kept)
    if isinstance(node, AllOf):
        known = [c for c in (reduce_candidates(c) for c in node.children) if c is not None]
        if not known:
            return None
        known.sort(key=_rank)
        best = _rank(known[0])
        kept = tuple(
            dict.fromkeys([known[0], *(c for c in known[1:] if _rank(c) <= max(best, _RANK_NARROW))])
        )
        return kept[0] if len(kept) == 1 else AllOf(kept)
    return node if _translatable(node) else None


@dataclass(frozen=True)
class Scope:
    """Which accounts a run covers: an inclusive pk range (open ends when None) or explicit pks."""

    low: int | None = None
    high: int | None = None
    pks: tuple[int, ...] | None = None

    def filter(self, qs: QuerySet, column: str = "account_id") -> QuerySet:
        if self.pks is not None:
            return qs.filter(**{f"{column}__in": self.pks})
        if self.low is not None:
            qs = qs.filter(**{f"{column}__gte": self.low})
        if self.high is not None:
            qs = qs.filter(**{f"{column}__lte": self.high})
        return qs


ALL_ACCOUNTS = Scope()


def _chunks(values: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _ip_bytes(value: int) -> bytes:
    return value.to_bytes(16, "big")


def resolve_lookups(leaves: Iterable[Lookup], scope: Scope = ALL_ACCOUNTS) -> dict[Lookup, set[int]]:
    """Account pks per lookup, with lookups of one kind batched into one indexed IN query."""
    result: dict[Lookup, set[int]] = {}
    by_kind: dict[Any, list[Lookup]] = {}
    for leaf in dict.fromkeys(leaves):
        result[leaf] = set()
        if isinstance(leaf, HashLookup):
            by_kind.setdefault(("hash", leaf.sco_type, leaf.field), []).append(leaf)
        elif isinstance(leaf, ClientLookup):
            by_kind.setdefault(("client", leaf.field), []).append(leaf)
        elif isinstance(leaf, PropertyLookup):
            by_kind.setdefault(("property", leaf.sco_type, leaf.path), []).append(leaf)
        else:
            by_kind.setdefault(type(leaf), []).append(leaf)

    def collect(qs: QuerySet, value_column: str, account_column: str, index: dict[Any, list[Lookup]]):
        for value, account_pk in scope.filter(qs, account_column).values_list(value_column, account_column):
            for leaf in index.get(value, ()):
                result[leaf].add(account_pk)

    for key, group in by_kind.items():
        if key is IpRangeLookup:
            # One range scan on the ip_low index per block: addresses (or stored blocks) lying
            # wholly inside [low, high] — the plan's contract (indicators.matching.plan).
            for part in _chunks(group, 50):
                condition = Q()
                for leaf in part:
                    condition |= Q(
                        ip_low__gte=_ip_bytes(leaf.low),
                        ip_low__lte=_ip_bytes(leaf.high),
                        ip_high__lte=_ip_bytes(leaf.high),
                    )
                rows = scope.filter(AccountIp.objects.filter(condition)).values_list(
                    "ip_low", "ip_high", "account_id"
                )
                for low_b, high_b, account_pk in rows:
                    low, high = int.from_bytes(bytes(low_b), "big"), int.from_bytes(bytes(high_b), "big")
                    for leaf in part:
                        if leaf.low <= low and high <= leaf.high:
                            result[leaf].add(account_pk)
            continue
        if key is AsnLookup:
            index = _index(group, lambda leaf: leaf.number)
            for values in _chunks(list(index), IN_CHUNK):
                collect(AccountIp.objects.filter(asn__in=values), "asn", "account_id", index)
            continue
        if key is LshBandLookup:
            index = _index(group, lambda leaf: leaf.band_key)
            for values in _chunks(list(index), IN_CHUNK):
                collect(AccountLshBand.objects.filter(band_key__in=values), "band_key", "account_id", index)
            continue
        kind = key[0]
        if kind == "client":
            column = key[1]
            index = _index(group, lambda leaf: leaf.value)
            for values in _chunks(list(index), IN_CHUNK):
                collect(
                    AccountClient.objects.filter(**{f"{column}__in": values}), column, "account_id", index
                )
            continue
        if kind == "hash":
            _, sco_type, column = key
            index = _index(group, lambda leaf: leaf.value)
            values_all = list(index)
            if sco_type == "mdx-payment-fingerprint":
                for values in _chunks(values_all, IN_CHUNK):
                    collect(AccountPayment.objects.filter(value__in=values), "value", "account_id", index)
                continue
            for values in _chunks(values_all, IN_CHUNK):
                collect(
                    AccountIdentifier.objects.filter(**{f"{column}__in": values}), column, "account_id", index
                )
            # API keys are mdx-hashed-identifier SCOs too (identifier_type api-key, no key_id).
            if column == "value":
                for values in _chunks(values_all, IN_CHUNK):
                    collect(
                        AccountApiKey.objects.filter(key_sha256__in=values), "key_sha256", "account_id", index
                    )
            elif column == "identifier_type" and "api-key" in index:
                for account_pk in scope.filter(AccountApiKey.objects.all()).values_list(
                    "account_id", flat=True
                ):
                    for leaf in index["api-key"]:
                        result[leaf].add(account_pk)
            continue
        # PropertyLookup on a known column.
        _, sco_type, path = key
        model, account_column, column, python_type = _PROPERTY_COLUMNS[(sco_type, path)]
        index = {}
        for leaf in group:
            value = _column_value(leaf.value, python_type)
            if value is not None:
                index.setdefault(value, []).append(leaf)
        for values in _chunks(list(index), IN_CHUNK):
            collect(model.objects.filter(**{f"{column}__in": values}), column, account_column, index)
    return result


def _index(group: list[Lookup], value_of: Callable[[Any], Any]) -> dict[Any, list[Lookup]]:
    index: dict[Any, list[Lookup]] = {}
    for leaf in group:
        index.setdefault(value_of(leaf), []).append(leaf)
    return index


def _column_value(value: Any, python_type: type) -> Any:
    """The column value equal to a pattern constant, or None when no stored value can equal it.

    STIX patterning compares strings with strings, booleans with booleans and numbers
    numerically; other pairs are never equal, so such a lookup selects nobody.
    """
    if python_type is str:
        return value if isinstance(value, str) and value else None
    if python_type is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool | str):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value


def combine(node: Candidates | None, resolved: dict[Lookup, set[int]]) -> set[int] | None:
    """AnyOf → union, AllOf → intersection over resolved lookups; None stays None (full scan)."""
    if node is None:
        return None
    if isinstance(node, AnyOf):
        out: set[int] = set()
        for child in node.children:
            out |= combine(child, resolved) or set()
        return out
    if isinstance(node, AllOf):
        sets = sorted((combine(c, resolved) or set() for c in node.children), key=len)
        out = set(sets[0])
        for other in sets[1:]:
            out &= other
        return out
    return resolved[node]


def candidates_for(plan_candidates: Candidates | None, scope: Scope = ALL_ACCOUNTS) -> set[int] | None:
    """Account pks that may match (a superset), from indexed queries; None means scan every account."""
    reduced = reduce_candidates(plan_candidates)
    if reduced is None:
        return None
    return combine(reduced, resolve_lookups(candidate_leaves(reduced), scope))


def account_pk_chunks(scope: Scope = ALL_ACCOUNTS, size: int = RECORD_CHUNK) -> Iterator[list[int]]:
    """Every account pk in scope, ascending, in chunks (keyset paging: bounded memory)."""
    if scope.pks is not None:
        pks = sorted(scope.pks)
        yield from (list(c) for c in _chunks(pks, size))
        return
    after = None
    while True:
        qs = scope.filter(Account.objects.all(), "pk").order_by("pk")
        if after is not None:
            qs = qs.filter(pk__gt=after)
        chunk = list(qs.values_list("pk", flat=True)[:size])
        if not chunk:
            return
        yield chunk
        after = chunk[-1]


# --- Loading accounts ------------------------------------------------------------------------------------


def _opt(value: str | None) -> str | None:
    return value or None


def account_records(pks: Iterable[int]) -> dict[int, AccountRecord]:
    """AccountRecords for these pks (missing pks are skipped): 9 queries per call, any size."""
    pks = list(pks)
    if not pks:
        return {}
    by_pk: dict[int, dict[str, list]] = {}
    accounts = {}
    for part in _chunks(pks, IN_CHUNK * 4):
        for row in Account.objects.filter(pk__in=part).values(
            "pk",
            "pseudonym",
            "created_at",
            "status",
            "tier",
            "org_category",
            "access_channel",
            "signup_country",
        ):
            accounts[row["pk"]] = row
            by_pk[row["pk"]] = {k: [] for k in ("ids", "pay", "ips", "keys", "clients", "sigs", "timing")}
    present = list(accounts)
    if not present:
        return {}

    def rows(model: type[models.Model], *columns: str) -> Iterator[dict]:
        for part in _chunks(present, IN_CHUNK * 4):
            yield from model.objects.filter(account_id__in=part).order_by("pk").values("account_id", *columns)

    for r in rows(
        AccountIdentifier, "identifier_type", "key_id", "value", "normalization", "first_seen", "last_seen"
    ):
        by_pk[r["account_id"]]["ids"].append(
            IdentifierRecord(
                r["identifier_type"],
                _opt(r["key_id"]),
                r["value"],
                r["normalization"],
                r["first_seen"],
                r["last_seen"],
            )
        )
    for r in rows(
        AccountPayment,
        "basis",
        "key_id",
        "value",
        "card_iin",
        "card_network",
        "card_funding",
        "is_virtual",
        "issuer_country",
        "first_used",
        "last_used",
    ):
        by_pk[r["account_id"]]["pay"].append(
            PaymentRecord(
                r["basis"],
                r["key_id"],
                r["value"],
                card_iin=_opt(r["card_iin"]),
                card_network=_opt(r["card_network"]),
                card_funding=_opt(r["card_funding"]),
                is_virtual=r["is_virtual"],
                issuer_country=_opt(r["issuer_country"]),
                first_used=r["first_used"],
                last_used=r["last_used"],
            )
        )
    for r in rows(AccountIp, "ip", "asn", "proxy_type", "first_seen", "last_seen", "is_signup"):
        by_pk[r["account_id"]]["ips"].append(
            IpRecord(
                r["ip"], r["asn"], _opt(r["proxy_type"]), r["first_seen"], r["last_seen"], r["is_signup"]
            )
        )
    for r in rows(AccountApiKey, "key_sha256", "created_at", "last_used_at"):
        by_pk[r["account_id"]]["keys"].append(
            ApiKeyRecord(r["key_sha256"], r["created_at"], r["last_used_at"])
        )
    for r in rows(
        AccountClient,
        "user_agent",
        "sdk_name",
        "sdk_version",
        "http_library",
        "ja4",
        "ja4h",
        "header_order_sha256",
        "first_seen",
        "last_seen",
    ):
        by_pk[r["account_id"]]["clients"].append(
            ClientRecord(
                _opt(r["user_agent"]),
                _opt(r["sdk_name"]),
                _opt(r["sdk_version"]),
                _opt(r["http_library"]),
                _opt(r["ja4"]),
                _opt(r["ja4h"]),
                _opt(r["header_order_sha256"]),
                r["first_seen"],
                r["last_seen"],
            )
        )
    bands: dict[int, list[str]] = {}
    for r in rows(AccountLshBand, "signature_id", "band_key"):
        bands.setdefault(r["signature_id"], []).append(r["band_key"])
    for r in rows(
        AccountPromptSignature,
        "pk",
        "key_id",
        "window_start",
        "window_end",
        "minhash",
        "template_hmac",
        "simhash64",
        "capability_tags",
        "language",
        "sample_size",
    ):
        by_pk[r["account_id"]]["sigs"].append(
            PromptSignatureRecord(
                r["key_id"],
                r["window_start"],
                r["window_end"],
                tuple(r["minhash"] or ()),
                tuple(bands.get(r["pk"], ())),
                r["template_hmac"],
                simhash64=_opt(r["simhash64"]),
                capability_tags=tuple(r["capability_tags"] or ()),
                language=_opt(r["language"]),
                sample_size=r["sample_size"],
            )
        )
    for r in rows(
        AccountTiming,
        "window_start",
        "window_end",
        "request_count",
        "iat_histogram",
        "hour_of_day_histogram",
        "median_iat_ms",
        "iat_cv",
        "max_concurrency",
        "release_switch_latency_h",
    ):
        by_pk[r["account_id"]]["timing"].append(
            TimingRecord(
                r["window_start"],
                r["window_end"],
                r["request_count"],
                tuple(r["iat_histogram"] or ()),
                tuple(r["hour_of_day_histogram"] or ()),
                r["median_iat_ms"],
                r["iat_cv"],
                r["max_concurrency"],
                r["release_switch_latency_h"],
            )
        )
    records = {}
    for pk, a in accounts.items():
        parts = by_pk[pk]
        records[pk] = AccountRecord(
            pseudonym=a["pseudonym"],
            created_at=a["created_at"],
            status=_opt(a["status"]),
            tier=_opt(a["tier"]),
            org_category=_opt(a["org_category"]),
            access_channel=_opt(a["access_channel"]),
            signup_country=_opt(a["signup_country"]),
            identifiers=tuple(parts["ids"]),
            payments=tuple(parts["pay"]),
            ips=tuple(parts["ips"]),
            api_keys=tuple(parts["keys"]),
            clients=tuple(parts["clients"]),
            prompt_signatures=tuple(parts["sigs"]),
            timing=tuple(parts["timing"]),
        )
    return records


# --- Verification: exact pattern, §4.2 similarity, weight and evidence -----------------------------------


@dataclass(frozen=True)
class Hit:
    account_pk: int
    kind: str
    weight: float
    evidence: dict[str, Any]


def _ip_inside(ip: IpRecord, leaf: IpRangeLookup) -> bool:
    try:
        low, high = ip_to_range(ip.ip)
    except ValueError:
        return False
    return leaf.low <= low and high <= leaf.high


def _network_weight(spec: IndicatorSpec, record: AccountRecord) -> tuple[float, dict]:
    """§4.2 network-range weight: an exact datacenter/reseller egress address 0.4, another single
    address 0.2, a block 0.15, an ASN 0.05. (The match itself is the STIX result, §4.0.)"""
    ranges = [leaf for leaf in spec.leaves if isinstance(leaf, IpRangeLookup)]
    asns = {leaf.number for leaf in spec.leaves if isinstance(leaf, AsnLookup)}
    inside = [ip for ip in record.ips if any(_ip_inside(ip, leaf) for leaf in ranges)]
    inside += [ip for ip in record.ips if ip.asn is not None and ip.asn in asns and ip not in inside]
    single = any(leaf.low == leaf.high for leaf in ranges)
    egress = any(ip.proxy_type in _EGRESS_PROXIES for ip in inside)
    if not ranges:
        weight = 0.05 if asns else 0.15
    elif single:
        weight = 0.4 if egress else 0.2
    else:
        weight = 0.15
    return weight, {"signup_ip": any(ip.signup for ip in inside), "ip_rows": len(inside)}


def _kind_weight(spec: IndicatorSpec) -> float:
    """§4.2 default weights that depend on the indicator only."""
    kind = spec.kind
    if kind == "exact-identifier":
        types = {
            leaf.value
            for leaf in candidate_leaves(spec.compiled.plan.candidates)
            if isinstance(leaf, HashLookup) and leaf.field == "identifier_type"
        }
        if "api-key" in types:
            return 0.95
        if types == {"email"}:
            return 0.7
        return 0.9
    if kind == "payment":
        has_value = any(
            isinstance(leaf, HashLookup) and leaf.sco_type == "mdx-payment-fingerprint"
            for leaf in candidate_leaves(spec.compiled.plan.candidates)
        )
        return 0.9 if has_value else 0.1
    if kind == "prompt-similarity":
        return 0.5
    if kind == "timing-similarity":
        return 0.2
    if kind == "client-fingerprint":
        fields = {
            leaf.field
            for leaf in candidate_leaves(spec.compiled.plan.candidates)
            if isinstance(leaf, ClientLookup)
        }
        rare = fields & {"ja4", "ja4h"} or {"sdk_name", "sdk_version", "user_agent"} <= fields
        return 0.2 if rare else 0.05
    if kind == "composite":
        return spec.confidence / 100
    return 0.15  # network-range without a record to refine it


def _prompt_check(sim: Similarity, record: AccountRecord) -> dict | None:
    ref = sim.reference
    jaccard_min = float(sim.params.get("jaccard_min", 0.8))
    windows_needed = int(sim.params.get("min_matching_windows", 1) or 1)
    ref_minhash = ref["minhash"]
    best = 0.0
    windows = set()
    for sig in record.prompt_signatures:
        # Sketches are keyed: only the same key epoch is comparable (§3, §4.2).
        if sig.key_id != ref.get("key_id") or len(sig.minhash) != len(ref_minhash):
            continue
        score = minhash_jaccard(sig.minhash, ref_minhash)
        best = max(best, score)
        if score >= jaccard_min:
            windows.add(sig.window_start)
    if len(windows) < windows_needed:
        return None
    return {
        "table": "account_prompt_signatures",
        "jaccard_max": round(best, 4),
        "matching_windows": len(windows),
    }


def _timing_check(sim: Similarity, record: AccountRecord) -> dict | None:
    from indicators.services import parse_timestamp

    ref = sim.reference
    max_iat = float(sim.params.get("jsd_max_iat", 0.15))
    max_hod = float(sim.params.get("jsd_max_hod", 0.2))
    min_requests = int(sim.params.get("min_requests", 1000))
    try:
        length = parse_timestamp(ref["window_end"]) - parse_timestamp(ref["window_start"])
    except (KeyError, TypeError, ValueError):
        length = None
    best: tuple[float, float] | None = None
    for window in record.timing:
        if window.request_count < min_requests:
            continue
        if length is not None and window.window_end - window.window_start != length:
            continue  # §4.2: histograms from windows of equal length only
        try:
            d_iat = jensen_shannon_distance(window.iat_histogram, ref["iat_histogram"])
            d_hod = jensen_shannon_distance(window.hour_of_day_histogram, ref["hour_of_day_histogram"])
        except (KeyError, TypeError, ValueError):
            continue
        if d_iat <= max_iat and d_hod <= max_hod and (best is None or d_iat + d_hod < sum(best)):
            best = (d_iat, d_hod)
    if best is None:
        return None
    return {"table": "account_timing", "jsd_iat": round(best[0], 4), "jsd_hod": round(best[1], 4)}


_LEAF_COLUMNS = {
    IpRangeLookup: ("account_ips", "ip"),
    AsnLookup: ("account_ips", "asn"),
    LshBandLookup: ("account_lsh_bands", "band_key"),
}


def _leaf_evidence(leaf: Lookup, record: AccountRecord) -> dict:
    if isinstance(leaf, HashLookup):
        if leaf.sco_type == "mdx-payment-fingerprint":
            return {"table": "account_payments", "column": leaf.field}
        if leaf.field == "value" and any(k.sha256 == leaf.value for k in record.api_keys):
            return {"table": "account_api_keys", "column": "key_sha256"}
        return {"table": "account_identifiers", "column": leaf.field}
    if isinstance(leaf, ClientLookup):
        return {"table": "account_clients", "column": leaf.field}
    if isinstance(leaf, PropertyLookup):
        model, _, column, _ = _PROPERTY_COLUMNS[(leaf.sco_type, leaf.path)]
        return {"table": model._meta.db_table, "column": column}
    table, column = _LEAF_COLUMNS[type(leaf)]
    return {"table": table, "column": column}


def verify(
    spec: IndicatorSpec,
    account_pk: int,
    record: AccountRecord,
    observations: list,
    resolved: dict[Lookup, set[int]] | None,
) -> Hit | None:
    """Exact STIX evaluation, then the §4.2 refinement of the kind; a Hit or None."""
    if not spec.compiled.matches(observations):
        return None
    evidence: dict[str, Any] = {"pattern": "stix"}
    if resolved is not None and spec.leaves:
        seen = []
        for leaf in spec.leaves:
            if account_pk in resolved.get(leaf, ()):
                item = _leaf_evidence(leaf, record)
                if item not in seen:
                    seen.append(item)
        evidence["lookups"] = seen
    else:
        evidence["lookups"] = [{"method": "scan"}]
    weight = _kind_weight(spec)
    if spec.similarity is not None:
        check = _prompt_check if spec.similarity.kind == "prompt-similarity" else _timing_check
        detail = check(spec.similarity, record)
        if detail is None:
            return None
        evidence["similarity"] = detail
    elif spec.kind == "network-range":
        weight, evidence["network"] = _network_weight(spec, record)
    return Hit(account_pk, spec.kind, weight, evidence)


def match_specs(specs: Sequence[IndicatorSpec], scope: Scope = ALL_ACCOUNTS) -> dict[int, list[Hit]]:
    """Hits per indicator pk over the accounts in scope: candidates by SQL, exact verification."""
    hits: dict[int, list[Hit]] = {spec.pk: [] for spec in specs}
    indexed = [s for s in specs if s.candidates is not None]
    scans = [s for s in specs if s.candidates is None]
    resolved = resolve_lookups((leaf for s in indexed for leaf in s.leaves), scope)
    wanted: dict[int, list[IndicatorSpec]] = {}
    for spec in indexed:
        for account_pk in combine(spec.candidates, resolved) or ():
            wanted.setdefault(account_pk, []).append(spec)
    # With a scan, every account in scope is loaded once and checked against everything;
    # otherwise only the candidates are loaded.
    chunks = account_pk_chunks(scope) if scans else _chunks(sorted(wanted), RECORD_CHUNK)
    for chunk in chunks:
        records = account_records(chunk)
        for account_pk, record in records.items():
            todo = wanted.get(account_pk, ())
            if not todo and not scans:
                continue
            observations = account_observations(record)
            for spec in todo:
                hit = verify(spec, account_pk, record, observations, resolved)
                if hit is not None:
                    hits[spec.pk].append(hit)
            for spec in scans:
                hit = verify(spec, account_pk, record, observations, None)
                if hit is not None:
                    hits[spec.pk].append(hit)
    return hits


# --- Writing matches, states and alerts ---------------------------------------------------------------


def _states_ensure(pks: Iterable[int], status: str = State.PENDING) -> None:
    IndicatorMatchState.objects.bulk_create(
        [IndicatorMatchState(indicator_id=pk, status=status) for pk in pks], ignore_conflicts=True
    )


def matches_write(hits: dict[int, list[Hit]]) -> set[int]:
    """Insert Match rows; existing (indicator, account) pairs are left as they are. Returns accounts hit."""
    now = timezone.now()
    rows = [
        Match(
            indicator_id=pk,
            account_id=h.account_pk,
            kind=h.kind,
            evidence=h.evidence,
            weight=h.weight,
            matched_at=now,
        )
        for pk, items in hits.items()
        for h in items
    ]
    Match.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return {h.account_pk for items in hits.values() for h in items}


def _quarantine_check(indicator_pks: Iterable[int]) -> set[int]:
    """Update matched_count; quarantine over-matching indicators. Returns accounts whose alerts to rescore."""
    pks = list(indicator_pks)
    if not pks:
        return set()
    threshold = quarantine_threshold()
    counts = dict(
        Match.objects.filter(indicator_id__in=pks)
        .values("indicator_id")
        .annotate(n=models.Count("pk"))
        .values_list("indicator_id", "n")
    )
    _executemany(
        IndicatorMatchState,
        "matched_count = %s WHERE indicator_id = %s",
        [(counts.get(pk, 0), pk) for pk in pks],
    )
    rescore: set[int] = set()
    for pk in [pk for pk, total in counts.items() if total > threshold]:
        flipped = (
            IndicatorMatchState.objects.filter(indicator_id=pk)
            # A reviewer released it: its over-match was accepted, it stays out of quarantine.
            .exclude(status__in=[State.QUARANTINED, State.RELEASED, State.SUPERSEDED, State.WITHDRAWN])
            .update(status=State.QUARANTINED, error=f"matched {counts[pk]} accounts (> {threshold}): review")
        )
        if flipped:
            logger.warning("indicator %s quarantined: %s matches", pk, counts[pk])
            rescore.update(Match.objects.filter(indicator_id=pk).values_list("account_id", flat=True))
    return rescore


class ReleaseError(ValueError):
    """The indicator version is not quarantined (nothing to release)."""


def quarantine_release(indicator_pk: int) -> int:
    """A reviewer accepts an over-matching indicator version: its matches count again and raise
    alerts; it is not quarantined again. Returns the number of accounts whose alerts were
    rescored. Raises ReleaseError when the version is not quarantined."""
    released = IndicatorMatchState.objects.filter(indicator_id=indicator_pk, status=State.QUARANTINED).update(
        status=State.RELEASED, error=""
    )
    if not released:
        raise ReleaseError("this indicator version is not quarantined")
    accounts = set(Match.objects.filter(indicator_id=indicator_pk).values_list("account_id", flat=True))
    alerts_update(accounts)
    return len(accounts)


def _executemany(model: type[models.Model], assignments: str, rows: list[tuple]) -> None:
    # One prepared UPDATE sent for many rows (pipelined by psycopg 3): bulk_update's CASE WHEN
    # expressions cost more to build than the whole match.
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments}", rows
        )


def score_contributions(rows: Iterable[tuple[float, str, int | None]], tier: str) -> float:
    """§4.2 noisy-OR: S = 1 − Π(1 − w_i · conf_i), ×1.5 for programme tiers, capped at 0.99.

    ``rows`` are (weight, kind, confidence). A composite's weight already is its
    confidence/100, so its confidence is not applied twice.
    """
    remaining = 1.0
    for weight, kind, confidence in rows:
        conf = (
            1.0
            if kind == "composite"
            else (confidence if confidence is not None else DEFAULT_CONFIDENCE) / 100
        )
        remaining *= 1.0 - min(max(weight * conf, 0.0), 1.0)
    score = 1.0 - remaining
    if tier in PROGRAMME_TIERS:
        score *= 1.5
    return min(score, 0.99)


def alerts_update(account_pks: Iterable[int], now: datetime | None = None) -> None:
    """Recompute the alert of each account from its supporting matches (idempotent).

    Supporting: the indicator version is still active (state pending/running/done, not revoked,
    not expired). No support → an open alert is withdrawn; human decisions are kept.
    """
    now = now or timezone.now()
    pks = sorted(set(account_pks))
    minimum = alert_min_score()
    for chunk in _chunks(pks, RECORD_CHUNK):
        support: dict[int, list[tuple[float, str, int | None]]] = {pk: [] for pk in chunk}
        rows = (
            Match.objects.filter(account_id__in=chunk, indicator__match_state__status__in=SUPPORTING)
            .filter(indicator__revoked=False)
            .filter(Q(indicator__valid_until__isnull=True) | Q(indicator__valid_until__gt=now))
            .values_list("account_id", "weight", "kind", "indicator__confidence")
        )
        for account_pk, weight, kind, confidence in rows:
            support[account_pk].append((weight, kind, confidence))
        tiers = dict(Account.objects.filter(pk__in=chunk).values_list("pk", "tier"))
        alerts = {a.account_id: a for a in Alert.objects.filter(account_id__in=chunk)}
        create, change = [], []
        for account_pk in chunk:
            if account_pk not in tiers:
                continue
            score = (
                score_contributions(support[account_pk], tiers[account_pk]) if support[account_pk] else 0.0
            )
            alert = alerts.get(account_pk)
            if alert is None:
                if support[account_pk] and score >= minimum:
                    create.append(Alert(account_id=account_pk, score=score))
                continue
            status = alert.status
            if not support[account_pk] and status in Alert.OPEN:
                status = Alert.Status.WITHDRAWN
            elif support[account_pk] and status == Alert.Status.WITHDRAWN:
                status = Alert.Status.NEW  # new evidence reopens a withdrawn alert
            if status != alert.status or abs(score - alert.score) > 1e-12:
                alert.status, alert.score, alert.updated_at = status, score, now
                change.append(alert)
        Alert.objects.bulk_create(create, ignore_conflicts=True)
        _executemany(
            Alert,
            "status = %s, score = %s, updated_at = %s WHERE id = %s",
            [
                (a.status, a.score, connection.ops.adapt_datetimefield_value(a.updated_at), a.pk)
                for a in change
            ],
        )


def _stix_id_accounts(stix_id: str, scope: Scope = ALL_ACCOUNTS) -> set[int]:
    return set(
        scope.filter(Match.objects.filter(indicator__stix_id=stix_id)).values_list("account_id", flat=True)
    )


# --- Services ---------------------------------------------------------------------------------------------


def indicator_withdraw(stix_id: str) -> int:
    """Revoked: every version of the indicator stops supporting alerts; open alerts left without
    other active support are withdrawn. Matches are kept (audit). Returns alerts rescored."""
    pks = list(StixObject.objects.filter(stix_id=stix_id, type="indicator").values_list("pk", flat=True))
    _states_ensure(pks, State.WITHDRAWN)
    IndicatorMatchState.objects.filter(indicator_id__in=pks).update(status=State.WITHDRAWN)
    accounts = _stix_id_accounts(stix_id)
    alerts_update(accounts)
    return len(accounts)


def indicator_version_withdraw(stix_object_pk: int) -> int:
    """One expired version stops supporting alerts (other versions are left alone)."""
    _states_ensure([stix_object_pk], State.WITHDRAWN)
    IndicatorMatchState.objects.filter(indicator_id=stix_object_pk).update(status=State.WITHDRAWN)
    accounts = set(Match.objects.filter(indicator_id=stix_object_pk).values_list("account_id", flat=True))
    alerts_update(accounts)
    return len(accounts)


def indicators_expire(now: datetime | None = None) -> list[str]:
    """Withdraw versions that passed valid_until (or were revoked) but still count as supporting.

    Returns the ids of the indicators concerned. Superseded versions support nothing already.
    """
    now = now or timezone.now()
    stale = list(
        IndicatorMatchState.objects.exclude(status__in=[State.WITHDRAWN, State.SUPERSEDED])
        .filter(Q(indicator__valid_until__lte=now) | Q(indicator__revoked=True))
        .values_list("indicator_id", "indicator__stix_id", "indicator__revoked")
    )
    for pk, stix_id, revoked in stale:
        if revoked:
            indicator_withdraw(stix_id)
        else:
            indicator_version_withdraw(pk)
    return sorted({stix_id for _, stix_id, _ in stale})


def _supersede_older(obj: StixObject) -> None:
    older = StixObject.objects.filter(stix_id=obj.stix_id, modified__lt=obj.modified).values_list(
        "pk", flat=True
    )
    IndicatorMatchState.objects.filter(indicator_id__in=list(older)).exclude(
        status__in=[State.WITHDRAWN, State.SUPERSEDED]
    ).update(status=State.SUPERSEDED)


def indicator_match(
    stix_object_pk: int, account_pk_range: tuple[int | None, int | None] | None = None
) -> int:
    """Match one indicator version against local accounts (all, or an inclusive pk range).

    Inactive (revoked, expired, superseded, unpublished) → its alerts are withdrawn where
    nothing else supports them, and 0 is returned. Idempotent: Match rows are unique per
    (indicator, account). Over-match → quarantined (no alerts). Returns matches found.
    """
    obj = StixObject.objects.get(pk=stix_object_pk)
    scope = Scope(*account_pk_range) if account_pk_range else ALL_ACCOUNTS
    if obj.type != "indicator" or obj.pattern_type != "stix":
        _states_ensure([obj.pk], State.NOT_EVALUABLE)
        return 0
    _states_ensure([obj.pk])
    now = timezone.now()
    if obj.revoked:
        indicator_withdraw(obj.stix_id)  # STIX 2.1 §3.6: a revoked object has no later version
        return 0
    if obj.valid_until is not None and obj.valid_until <= now:
        indicator_version_withdraw(obj.pk)
        return 0
    if not is_active(obj, now):
        # Superseded by a newer version, not yet valid, or unpublished: no new matches.
        return 0
    _supersede_older(obj)
    try:
        spec = indicator_spec(obj)
    except NotEvaluable as exc:
        IndicatorMatchState.objects.filter(indicator_id=obj.pk).update(
            status=State.NOT_EVALUABLE, error=str(exc)
        )
        return 0
    hits = match_specs([spec], scope)
    touched = matches_write(hits)
    rescore = touched | _stix_id_accounts(obj.stix_id, scope) | _quarantine_check([obj.pk])
    alerts_update(rescore)
    return len(hits[obj.pk])


def indicator_match_run(stix_object_pk: int) -> bool:
    """Claim this version's state (pending, or running but stale) and match it fully.

    Safe to call twice: only one caller claims. Returns False when there was nothing to claim.
    """
    _states_ensure([stix_object_pk])
    now = timezone.now()
    claimed = (
        IndicatorMatchState.objects.filter(indicator_id=stix_object_pk)
        .filter(Q(status=State.PENDING) | Q(status=State.RUNNING, claimed_at__lt=now - stale_after()))
        .update(status=State.RUNNING, claimed_at=now, error="")
    )
    if not claimed:
        return False
    try:
        indicator_match(stix_object_pk)
    except Exception as exc:
        IndicatorMatchState.objects.filter(indicator_id=stix_object_pk, status=State.RUNNING).update(
            status=State.PENDING, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    # Not valid yet: back to pending, so the sweep re-queues it until valid_from has passed.
    not_yet = StixObject.objects.filter(pk=stix_object_pk, valid_from__gt=timezone.now()).exists()
    IndicatorMatchState.objects.filter(indicator_id=stix_object_pk, status=State.RUNNING).update(
        status=State.PENDING if not_yet else State.DONE, last_run_at=timezone.now()
    )
    return True


def _specs_for(objects: Iterable[StixObject]) -> list[IndicatorSpec]:
    specs = []
    for obj in objects:
        try:
            specs.append(indicator_spec(obj))
        except NotEvaluable as exc:
            IndicatorMatchState.objects.filter(indicator_id=obj.pk).exclude(
                status=State.NOT_EVALUABLE
            ).update(status=State.NOT_EVALUABLE, error=str(exc))
    return specs


def indicators_match(indicator_pks: Sequence[int] | None, scope: Scope) -> int:
    """Match many indicator versions (None: every active one) over one account scope, batched.

    Lookups of all indicators are resolved together (one IN query per table and kind) and each
    candidate account is loaded and observed once. With explicit account pks, matches those
    accounts no longer satisfy are removed. Returns the number of (indicator, account) hits.
    """
    active = active_indicators()
    if indicator_pks is not None:
        active = active.filter(pk__in=list(indicator_pks))
    objects = list(
        active.only("pk", "stix_id", "modified", "data", "confidence", "valid_from", "valid_until")
    )
    if not objects:
        return 0
    _states_ensure([o.pk for o in objects], State.DONE)
    specs = _specs_for(objects)
    hits = match_specs(specs, scope)
    touched = matches_write(hits)
    rescore = set(touched)
    if scope.pks is not None:
        found = {(pk, h.account_pk) for pk, items in hits.items() for h in items}
        stale = [
            m_pk
            for m_pk, ind, acc in Match.objects.filter(
                account_id__in=scope.pks, indicator_id__in=[s.pk for s in specs]
            ).values_list("pk", "indicator_id", "account_id")
            if (ind, acc) not in found
        ]
        for part in _chunks(stale, IN_CHUNK):
            Match.objects.filter(pk__in=list(part)).delete()
        rescore |= set(scope.pks)
    rescore |= _quarantine_check([pk for pk, items in hits.items() if items])
    alerts_update(rescore)
    return sum(len(items) for items in hits.values())


def accounts_match(account_pks: Sequence[int]) -> int:
    """Changed accounts against every active indicator; stale matches of those accounts are removed."""
    total = 0
    for part in _chunks(sorted(set(account_pks)), RECORD_CHUNK):
        total += indicators_match(None, Scope(pks=tuple(part)))
    return total


def would_match_count(pattern: str) -> int | None:
    """How many local accounts a pattern would match (review preview); None if not evaluable or no accounts.

    A pattern with no indexable lookup needs a full scan; above MDX_MATCH_PREVIEW_SCAN_LIMIT
    accounts the preview answers None rather than scanning.
    """
    try:
        compiled = compile_pattern(pattern)
    except (PatternError, ValueError):
        return None
    total = Account.objects.count()
    if total == 0:
        return None
    candidates = reduce_candidates(compiled.plan.candidates)
    if candidates is None and total > int(getattr(settings, "MDX_MATCH_PREVIEW_SCAN_LIMIT", 200_000)):
        return None
    spec = IndicatorSpec(
        0, "composite", DEFAULT_CONFIDENCE, compiled, candidates, leaves=tuple(candidate_leaves(candidates))
    )
    return len(match_specs([spec])[0])


# --- Retro-hunt jobs, incremental runs and the sweep -----------------------------------------------------


def account_ranges(size: int) -> list[tuple[int, int]]:
    """Inclusive pk ranges covering every account, `size` pks wide."""
    bounds = Account.objects.aggregate(low=models.Min("pk"), high=models.Max("pk"))
    if bounds["low"] is None:
        return []
    return [
        (start, min(start + size - 1, bounds["high"]))
        for start in range(bounds["low"], bounds["high"] + 1, size)
    ]


def retro_hunt_plan(*, full: bool = True, label: str = "retro-hunt") -> list[int]:
    """Create MatchJobs: active indicators (batches) × account pk ranges. Returns the job pks.

    ``full=False`` is the incremental run: only accounts changed since the last incremental
    run (Account.changed_at, MatchingCursor "accounts-changed"), against every active indicator.
    """
    batch = int(getattr(settings, "MDX_MATCH_INDICATOR_BATCH", 500))
    span = int(getattr(settings, "MDX_MATCH_ACCOUNT_CHUNK", 250_000))
    jobs: list[MatchJob] = []
    with transaction.atomic():
        if full:
            indicator_pks = list(active_indicators().order_by("pk").values_list("pk", flat=True))
            ranges = account_ranges(span)
            for part in _chunks(indicator_pks, batch):
                for low, high in ranges:
                    jobs.append(MatchJob(label=label, indicator_pks=list(part), low_pk=low, high_pk=high))
        else:
            now = timezone.now()
            cursor = MatchingCursor.objects.select_for_update().filter(name="accounts-changed").first()
            changed = Account.objects.all()
            if cursor is not None:
                changed = changed.filter(changed_at__gt=cursor.value)
            pks = list(changed.filter(changed_at__lte=now).order_by("pk").values_list("pk", flat=True))
            for part in _chunks(pks, RECORD_CHUNK):
                jobs.append(MatchJob(label=label + " (incremental)", account_pks=list(part)))
            MatchingCursor.objects.update_or_create(name="accounts-changed", defaults={"value": now})
        created = MatchJob.objects.bulk_create(jobs, batch_size=500)
    return [job.pk for job in created]


def accounts_jobs(account_pks: Sequence[int], label: str = "accounts-changed") -> list[int]:
    jobs = [
        MatchJob(label=label, account_pks=list(part))
        for part in _chunks(sorted(set(account_pks)), RECORD_CHUNK)
    ]
    return [job.pk for job in MatchJob.objects.bulk_create(jobs)]


def match_job_claim(job_pk: int) -> MatchJob | None:
    """Conditional UPDATE: pending (or running but stale) → running. None when someone else has it."""
    now = timezone.now()
    claimed = (
        MatchJob.objects.filter(pk=job_pk)
        .filter(
            Q(status=MatchJob.Status.PENDING)
            | Q(status=MatchJob.Status.RUNNING, claimed_at__lt=now - stale_after())
        )
        .update(status=MatchJob.Status.RUNNING, claimed_at=now, attempts=models.F("attempts") + 1)
    )
    return MatchJob.objects.get(pk=job_pk) if claimed else None


def match_job_run(job_pk: int) -> bool:
    """Claim and run one MatchJob. Safe to call twice. Returns False when there was nothing to claim."""
    job = match_job_claim(job_pk)
    if job is None:
        return False
    if job.account_pks is not None:
        scope = Scope(pks=tuple(job.account_pks))
    else:
        scope = Scope(job.low_pk, job.high_pk)
    try:
        matched = indicators_match(job.indicator_pks or None, scope)
    except Exception as exc:
        MatchJob.objects.filter(pk=job.pk, status=MatchJob.Status.RUNNING).update(
            status=MatchJob.Status.PENDING, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    MatchJob.objects.filter(pk=job.pk).update(
        status=MatchJob.Status.DONE, matched=matched, finished_at=timezone.now(), error=""
    )
    return True


@dataclass
class SweepResult:
    indicator_pks: list[int]
    job_pks: list[int]
    failed_job_pks: list[int]


def matching_sweep(*, stale: timedelta | None = None, max_attempts: int = 5) -> SweepResult:
    """Find lost work: pending states/jobs not picked up and running ones whose worker died.

    Stale running rows go back to pending (the claim then succeeds again); jobs that failed
    ``max_attempts`` times are marked failed. Returns what the caller should re-enqueue.
    """
    stale = stale_after() if stale is None else stale
    cutoff = timezone.now() - stale
    IndicatorMatchState.objects.filter(status=State.RUNNING, claimed_at__lt=cutoff).update(
        status=State.PENDING
    )
    indicator_pks = list(
        IndicatorMatchState.objects.filter(status=State.PENDING)
        .filter(Q(claimed_at__isnull=True, created_at__lte=cutoff) | Q(claimed_at__lte=cutoff))
        .values_list("indicator_id", flat=True)
    )
    MatchJob.objects.filter(status=MatchJob.Status.RUNNING, claimed_at__lt=cutoff).update(
        status=MatchJob.Status.PENDING
    )
    failed = list(
        MatchJob.objects.filter(status=MatchJob.Status.PENDING, attempts__gte=max_attempts).values_list(
            "pk", flat=True
        )
    )
    MatchJob.objects.filter(pk__in=failed).update(status=MatchJob.Status.FAILED)
    job_pks = list(
        MatchJob.objects.filter(status=MatchJob.Status.PENDING)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=cutoff))
        .values_list("pk", flat=True)
    )
    return SweepResult(indicator_pks, job_pks, failed)


def jobs_mark_enqueued(job_pks: Sequence[int]) -> None:
    for part in _chunks(list(job_pks), IN_CHUNK):
        MatchJob.objects.filter(pk__in=list(part)).update(enqueued_at=timezone.now())


def indicator_versions_published(stix_object_pks: Sequence[int]) -> list[int]:
    """Record new indicator versions for matching: pending state for each, older versions of the
    same id superseded. Returns the pks to match (revoked ones too: matching them withdraws)."""
    rows = list(
        StixObject.objects.filter(pk__in=list(stix_object_pks), type="indicator").values_list(
            "pk", "stix_id", "modified"
        )
    )
    _states_ensure([pk for pk, _, _ in rows])
    # One query for every stored version of these ids, one UPDATE: a bulk publication of
    # thousands of indicators must not cost two queries per indicator inside the request.
    newest: dict[str, datetime] = {}
    for _pk, stix_id, modified in rows:
        newest[stix_id] = max(modified, newest.get(stix_id, modified))
    older = [
        pk
        for part in _chunks(sorted(newest), IN_CHUNK)
        for pk, stix_id, modified in StixObject.objects.filter(
            stix_id__in=part, type="indicator"
        ).values_list("pk", "stix_id", "modified")
        if modified < newest[stix_id]
    ]
    for part in _chunks(older, IN_CHUNK):
        IndicatorMatchState.objects.filter(indicator_id__in=part).exclude(
            status__in=[State.WITHDRAWN, State.SUPERSEDED]
        ).update(status=State.SUPERSEDED)
    return [pk for pk, _, _ in rows]


# --- Review decisions --------------------------------------------------------------------------------


class DecisionError(ValueError):
    """A review decision that is not allowed (message safe to show)."""


DECISIONS = (
    Alert.Status.TRIAGED,
    Alert.Status.CONFIRMED,
    Alert.Status.FALSE_POSITIVE,
    Alert.Status.WITHDRAWN,
)


def alert_decide(*, alert: Alert, status: str, note: str = "", reviewer=None) -> Alert:
    """Record a reviewer's decision on an alert. Never enforces anything (§4.2: advisory only)."""
    if status not in DECISIONS:
        raise DecisionError(f"status must be one of {', '.join(DECISIONS)}")
    now = timezone.now()
    alert.status = status
    alert.decision_note = note.strip()[:5000]
    alert.reviewer = reviewer
    alert.reviewed_at = now
    alert.save(update_fields=["status", "decision_note", "reviewer", "reviewed_at", "updated_at"])
    return alert
