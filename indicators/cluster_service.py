"""Hydra-cluster linking on the database (DOMAIN §4.3; the clustering half of §4.5 "score_and_cluster").

Reads the §4.1 account tables in bulk — per attribute kind one grouped SQL query that keeps
only the values held by 2 … D accounts inside the rolling window, streamed in value order
through a server-side cursor, plus the few over-cap values the degree cap exempts — feeds
the pure linker (indicators.clustering), and persists the components of ≥ 2 accounts in one
transaction as AccountCluster / AccountClusterMember rows.

A cluster keeps its id, first_seen and review across runs: each new component takes over the
previous cluster with which it shares the most members. Runs are serialised by a lease (a
conditional UPDATE on a MatchingCursor row), so a beat run and a manual run never interleave.

Entry points: ``clusters_link`` (one run) and ``cluster_review`` (a reviewer's decision; the
interfaces audit it). Everything here is node-private: nothing leaves the provider (§4.4).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import chain, groupby
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from indicators import clustering
from indicators.clustering import Holder, LinkConfig, TimingWindow, ValueGroup
from indicators.matching.plan import ClientLookup, HashLookup, IpRangeLookup, PropertyLookup, candidate_leaves
from indicators.matching_service import (
    SUPPORTING,
    NotEvaluable,
    active_indicators,
    indicator_spec,
    stale_after,
)
from indicators.models import (
    Account,
    AccountApiKey,
    AccountClient,
    AccountCluster,
    AccountClusterMember,
    AccountIdentifier,
    AccountIp,
    AccountPayment,
    AccountPromptSignature,
    AccountTiming,
    Alert,
    Match,
    MatchingCursor,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]

FETCH = 5000  # rows per round trip of a streamed query
IN_CHUNK = 500  # values per IN (...) list, well under SQLite's bound-parameter limit
LEASE = "clusters-link-lease"  # MatchingCursor holding the running run's claim time
LAST_RUN = "clusters-linked"  # MatchingCursor holding the end of the last completed run
_IDLE = datetime(1970, 1, 1, tzinfo=UTC)
_IPV4_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96: how AccountIp stores IPv4 (models.py)
_LINK_IDENTIFIERS = (clustering.EMAIL, clustering.PHONE, clustering.DEVICE)


def min_size() -> int:
    return int(getattr(settings, "MDX_CLUSTER_MIN_SIZE", 20))


def degree_cap() -> int:
    return int(getattr(settings, "MDX_CLUSTER_DEGREE_CAP", 50))


def window_days() -> int:
    return int(getattr(settings, "MDX_CLUSTER_WINDOW_DAYS", 90))


@dataclass
class LinkSummary:
    """What one run did. ``skipped``: another run held the lease, nothing was done."""

    skipped: bool = False
    clusters: int = 0
    candidates: int = 0
    accounts: int = 0  # accounts in clusters
    created: int = 0
    kept: int = 0  # previous clusters carried over (id and review kept)
    dissolved: int = 0
    members_changed: int = 0
    seconds: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- Reading: shared values per attribute kind -------------------------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _db_time(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def _moment(value: Any) -> datetime:
    # Raw SQL: PostgreSQL returns aware datetimes, SQLite returns text (naive UTC, see settings).
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Source:
    """One attribute kind as SQL: ``seen`` selects (value, account_id, first_at, last_at, flag)
    for the rows inside the window; ``flag`` is 1 on reseller egress (signup networks only)."""

    label: str
    seen: str
    params: tuple
    link_type: Callable[[Any], str]
    value_text: Callable[[Any], str] = str


def _interval(alias: str, first: str, last: str) -> tuple[str, str]:
    # A missing end falls back to the other one, a row without times to the account's sign-up
    # (DOMAIN §4.0: an attribute's own times, else the profile's).
    return (
        f"COALESCE({alias}.{first}, {alias}.{last}, a.created_at)",
        f"COALESCE({alias}.{last}, {alias}.{first}, a.created_at)",
    )


def _windowed(select: str, table: str, alias: str, first: str, last: str, where: str) -> str:
    first_at, last_at = _interval(alias, first, last)
    return (
        f"SELECT {select}, {alias}.account_id AS account_id, {first_at} AS first_at, {last_at} AS last_at, "
        f"0 AS flag FROM {table} {alias} JOIN {_table(Account)} a ON a.id = {alias}.account_id "
        f"WHERE {where} AND {last_at} >= %s AND {first_at} <= %s"
    )


def _net_text(prefix: Any) -> str:
    raw = bytes(prefix)
    if len(raw) == 15:  # an IPv4-mapped /120, i.e. the IPv4 /24
        return str(ipaddress.IPv4Network((raw[12:] + b"\x00", 24)))
    return str(ipaddress.IPv6Network((raw + bytes(16 - len(raw)), 48)))


def _net_range(prefix: Any) -> tuple[int, int]:
    raw = bytes(prefix)
    spare = 16 - len(raw)
    return int.from_bytes(raw + bytes(spare), "big"), int.from_bytes(raw + b"\xff" * spare, "big")


def strong_sources(window: tuple[Any, Any]) -> list[_Source]:
    """§4.3.2: payment HMACs (PAN/PAR), email-canonical/phone/device-id HMACs, API-key SHA-256."""
    payments = _windowed(
        "p.value AS value",
        _table(AccountPayment),
        "p",
        "first_used",
        "last_used",
        "p.basis IN ('pan', 'par')",
    )
    identifier_types = ", ".join(f"'{t}'" for t in _LINK_IDENTIFIERS)
    identifiers = _windowed(
        "i.identifier_type || ':' || i.value AS value",
        _table(AccountIdentifier),
        "i",
        "first_seen",
        "last_seen",
        f"i.identifier_type IN ({identifier_types})",
    )
    api_keys = _windowed(
        "k.key_sha256 AS value",
        _table(AccountApiKey),
        "k",
        "created_at",
        "last_used_at",
        "k.key_sha256 <> ''",
    )
    return [
        _Source("payments", payments, window, lambda v: clustering.PAYMENT),
        _Source("identifiers", identifiers, window, lambda v: v.split(":", 1)[0]),
        _Source("api keys", api_keys, window, lambda v: clustering.API_KEY),
    ]


def weak_sources(window: tuple[Any, Any]) -> list[_Source]:
    """§4.3.3: signup /24 or /48, client ja4/ja4h, the account's top templates (timing: pairwise)."""
    start, end = window
    signup = (
        "SELECT substr(s.ip_low, 1, CASE WHEN substr(s.ip_low, 1, 12) = %s THEN 15 ELSE 6 END) AS value, "
        "s.account_id AS account_id, a.created_at AS first_at, a.created_at AS last_at, "
        f"CASE WHEN s.proxy_type = '{clustering.RESELLER_EGRESS}' THEN 1 ELSE 0 END AS flag "
        f"FROM {_table(AccountIp)} s JOIN {_table(Account)} a ON a.id = s.account_id "
        "WHERE s.is_signup = %s AND a.created_at >= %s AND a.created_at <= %s"
    )
    ja4 = _windowed(
        "'ja4:' || c.ja4 AS value", _table(AccountClient), "c", "first_seen", "last_seen", "c.ja4 <> ''"
    )
    ja4h = _windowed(
        "'ja4h:' || c.ja4h AS value", _table(AccountClient), "c", "first_seen", "last_seen", "c.ja4h <> ''"
    )
    # An account's top templates: its TOP_TEMPLATES heaviest template HMACs by prompt mass.
    templates = (
        "SELECT value, account_id, first_at, last_at, 0 AS flag FROM ("
        "SELECT t.template_hmac AS value, t.account_id AS account_id, MIN(t.window_start) AS first_at, "
        "MAX(t.window_end) AS last_at, ROW_NUMBER() OVER (PARTITION BY t.account_id "
        "ORDER BY SUM(COALESCE(t.sample_size, 1)) DESC, t.template_hmac) AS template_rank "
        f"FROM {_table(AccountPromptSignature)} t "
        "WHERE t.template_hmac <> '' AND t.window_end >= %s AND t.window_start <= %s "
        "GROUP BY t.account_id, t.template_hmac) ranked WHERE template_rank <= %s"
    )
    return [
        _Source(
            "signup networks",
            signup,
            (_IPV4_MAPPED, True, start, end),
            lambda v: clustering.SIGNUP_NET,
            _net_text,
        ),
        _Source(
            "client fingerprints", f"{ja4} UNION ALL {ja4h}", window + window, lambda v: clustering.CLIENT
        ),
        _Source("templates", templates, (*window, clustering.TOP_TEMPLATES), lambda v: clustering.TEMPLATE),
    ]


def _stream(sql: str, params: Sequence) -> Iterator[tuple]:
    """Rows of one query, fetched in batches (a server-side cursor on PostgreSQL)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, list(params))
        while rows := cursor.fetchmany(FETCH):
            yield from rows


def _groups(rows: Iterable[tuple], source: _Source, exempt: bool) -> Iterator[ValueGroup]:
    for value, members in groupby(rows, key=lambda row: row[0]):
        holders = tuple(
            Holder(account_pk, _moment(first), _moment(last)) for _, account_pk, first, last in members
        )
        text = source.value_text(value)
        yield ValueGroup(source.link_type(text), text, holders, exempt)


def shared_values(
    source: _Source,
    cap: int,
    is_exempt: Callable[[Any, int], bool],
    capped: Counter,
    progress: Progress | None = None,
) -> Iterator[ValueGroup]:
    """The values of one source held by 2 … ``cap`` accounts in the window, then the over-cap
    values ``is_exempt(value, reseller_flag)`` lifts the cap for (§4.3.4), in value order.
    Over-cap values that stay capped are counted in ``capped[source.label]``."""
    seen = f"WITH seen AS ({source.seen}) "
    holders = "COUNT(DISTINCT account_id)"
    linked = (
        f"{seen}, linked AS (SELECT value FROM seen GROUP BY value HAVING {holders} BETWEEN 2 AND %s) "
        "SELECT seen.value, seen.account_id, seen.first_at, seen.last_at FROM seen "
        "JOIN linked ON linked.value = seen.value ORDER BY seen.value, seen.account_id"
    )
    over_cap = f"{seen}SELECT value, MAX(flag) FROM seen GROUP BY value HAVING {holders} > %s"

    def exempt_groups() -> Iterator[ValueGroup]:
        exempt = []
        for value, flag in _stream(over_cap, (*source.params, cap)):
            if is_exempt(value, flag):
                exempt.append(value)
            else:
                capped[source.label] += 1
        for part in _chunks(exempt):
            members = (
                f"{seen}SELECT value, account_id, first_at, last_at FROM seen "
                f"WHERE value IN ({', '.join(['%s'] * len(part))}) ORDER BY value, account_id"
            )
            yield from _groups(_stream(members, (*source.params, *part)), source, True)

    rows = 0
    for group in chain(_groups(_stream(linked, (*source.params, cap)), source, False), exempt_groups()):
        rows += len(group.holders)
        if progress is not None:
            progress(source.label, rows)
        yield group


# --- Values that lift the degree cap: what active indicators matched (§4.3.4) -------------------------


@dataclass
class IndicatorValues:
    """Values named by the patterns of active indicators that matched local accounts."""

    hashes: set[str] = field(default_factory=set)  # identifier, payment and API-key hashes
    clients: set[str] = field(default_factory=set)  # "ja4:<value>", "ja4h:<value>"
    templates: set[str] = field(default_factory=set)
    ranges: list[tuple[int, int]] = field(default_factory=list)  # IpRangeLookup [low, high]

    def add(self, lookup) -> None:
        if isinstance(lookup, HashLookup) and lookup.field == "value":
            self.hashes.add(lookup.value)
        elif isinstance(lookup, ClientLookup) and lookup.field in ("ja4", "ja4h"):
            self.clients.add(f"{lookup.field}:{lookup.value}")
        elif isinstance(lookup, IpRangeLookup):
            self.ranges.append((lookup.low, lookup.high))
        elif (
            isinstance(lookup, PropertyLookup)
            and lookup.sco_type == "mdx-prompt-signature"
            and lookup.path == ("template_hmac",)
            and isinstance(lookup.value, str)
        ):
            self.templates.add(lookup.value)

    def covers_net(self, prefix: Any) -> bool:
        low, high = _net_range(prefix)
        return any(r_low <= high and low <= r_high for r_low, r_high in self.ranges)


def indicator_values() -> IndicatorValues:
    """Lookups of every active indicator version with a supporting match (quarantined ones excluded).

    Indicators are judged as of now, like alerts (matching_service.alerts_update), whatever the
    window end of the run.
    """
    values = IndicatorValues()
    hitting = (
        active_indicators()
        .filter(match_state__status__in=SUPPORTING)
        .filter(Exists(Match.objects.filter(indicator_id=OuterRef("pk"))))
        .only("pk", "stix_id", "modified", "data", "confidence", "valid_from", "valid_until")
    )
    for obj in hitting.iterator(chunk_size=500):
        try:
            spec = indicator_spec(obj)  # compiled once per version (cached)
        except NotEvaluable:
            continue
        for lookup in candidate_leaves(spec.compiled.plan.candidates):
            values.add(lookup)
    return values


def _exemption(source_label: str, known: IndicatorValues) -> Callable[[Any, int], bool]:
    if source_label == "signup networks":
        return lambda value, flag: bool(flag) or known.covers_net(value)
    if source_label == "identifiers":
        return lambda value, flag: value.split(":", 1)[1] in known.hashes
    if source_label == "client fingerprints":
        return lambda value, flag: value in known.clients
    if source_label == "templates":
        return lambda value, flag: value in known.templates
    return lambda value, flag: value in known.hashes


# --- Timing and member features -------------------------------------------------------------------


def _chunks(values: Sequence, size: int = IN_CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _timing_loader(config: LinkConfig) -> Callable[[set[int]], dict[int, list[TimingWindow]]]:
    """Timing windows in the window, loaded only for the accounts the linker asks about."""

    def load(accounts: set[int]) -> dict[int, list[TimingWindow]]:
        in_window = AccountTiming.objects.filter(
            window_end__gte=config.window_start, window_start__lte=config.now
        )
        having = set(
            in_window.order_by().values_list("account_id", flat=True).distinct().iterator(chunk_size=FETCH)
        )
        wanted = sorted(accounts & having)
        windows: dict[int, list[TimingWindow]] = {}
        for part in _chunks(wanted):
            for row in in_window.filter(account_id__in=part).values_list(
                "account_id", "window_start", "window_end", "request_count", "iat_histogram",
                "hour_of_day_histogram",
            ):  # fmt: skip
                account_pk, start, end, requests, iat, hod = row
                windows.setdefault(account_pk, []).append(
                    TimingWindow(start, end, requests, tuple(iat or ()), tuple(hod or ()))
                )
        return windows

    return load


@dataclass
class _Features:
    indicator_hits: int = 0
    max_alert_score: float | None = None
    narrow_scores: list[float | None] = field(default_factory=list)
    template_weights: Counter = field(default_factory=Counter)


def _features(components: list[clustering.Component], config: LinkConfig) -> list[_Features]:
    """Per component: members matched by supporting indicators (as of now, like alerts), the
    highest alert score and, for components big enough to be candidates, the §4.3.5 prompt
    features over the window."""
    current = timezone.now()
    owner = {account: index for index, c in enumerate(components) for account in c.accounts}
    features = [_Features() for _ in components]
    accounts = sorted(owner)
    for part in _chunks(accounts):
        hits = (
            Match.objects.filter(account_id__in=part, indicator__match_state__status__in=SUPPORTING)
            .filter(indicator__revoked=False)
            .filter(Q(indicator__valid_until__isnull=True) | Q(indicator__valid_until__gt=current))
            .order_by()  # Match's default ordering would defeat DISTINCT
            .values_list("account_id", flat=True)
            .distinct()
        )
        for account_pk in hits:
            features[owner[account_pk]].indicator_hits += 1
        for account_pk, score in Alert.objects.filter(account_id__in=part).values_list("account_id", "score"):
            best = features[owner[account_pk]].max_alert_score
            features[owner[account_pk]].max_alert_score = score if best is None else max(best, score)
    big = [a for a in accounts if len(components[owner[a]].accounts) >= config.min_size]
    tags: dict[int, Counter] = {}
    for part in _chunks(big):
        rows = AccountPromptSignature.objects.filter(
            account_id__in=part, window_end__gte=config.window_start, window_start__lte=config.now
        ).values_list("account_id", "template_hmac", "capability_tags", "sample_size")
        for account_pk, template, capability_tags, sample_size in rows:
            mass = float(sample_size or 1)
            if template:
                features[owner[account_pk]].template_weights[template] += mass
            labels = [t for t in capability_tags or () if isinstance(t, str)]
            for label in labels:
                tags.setdefault(account_pk, Counter())[label] += mass / len(labels)
    for account_pk in big:
        weights = tags.get(account_pk)
        score = clustering.narrow_capability_score(weights) if weights else None
        features[owner[account_pk]].narrow_scores.append(score)
    return features


# --- Persisting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    component: clustering.Component
    assessment: clustering.Assessment
    features: _Features

    def fields(self) -> dict[str, Any]:
        return {
            "size": len(self.component.accounts),
            "link_counts": self.component.link_counts,
            "indicator_hits": self.features.indicator_hits,
            "max_alert_score": self.features.max_alert_score,
            "narrow_score_median": self.assessment.narrow_score_median,
            "top_template_share": self.assessment.top_template_share,
            "is_candidate": self.assessment.is_candidate,
            "candidate_reason": self.assessment.reason,
        }


def _carry_over(planned: list[_Planned], previous: dict[int, int]) -> dict[int, int]:
    """Component index -> previous cluster pk: greedily by largest member overlap, each at most once."""
    overlaps = []
    for index, plan in enumerate(planned):
        counts = Counter(previous[a] for a in plan.component.accounts if a in previous)
        overlaps.extend((-n, cluster_pk, index) for cluster_pk, n in counts.items())
    taken: dict[int, int] = {}
    used: set[int] = set()
    for _, cluster_pk, index in sorted(overlaps):
        if index not in taken and cluster_pk not in used:
            taken[index] = cluster_pk
            used.add(cluster_pk)
    return taken


_CLUSTER_FIELDS = (
    "size",
    "link_counts",
    "indicator_hits",
    "max_alert_score",
    "narrow_score_median",
    "top_template_share",
    "is_candidate",
    "candidate_reason",
)


def _persist(planned: list[_Planned], summary: LinkSummary) -> None:
    """Write the run's clusters and memberships (call inside the run's transaction)."""
    now = timezone.now()
    previous = dict(
        AccountClusterMember.objects.values_list("account_id", "cluster_id").iterator(chunk_size=FETCH)
    )
    carried = _carry_over(planned, previous)
    existing = AccountCluster.objects.in_bulk(list(carried.values()))
    changed, fresh = [], []
    for index, plan in enumerate(planned):
        values = plan.fields()
        cluster = existing.get(carried.get(index))
        if cluster is None:
            fresh.append(AccountCluster(**values, first_seen=now, updated_at=now))
        elif any(getattr(cluster, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(cluster, name, value)
            cluster.updated_at = now
            changed.append(cluster)
    dissolved = sorted(set(AccountCluster.objects.values_list("pk", flat=True)) - set(carried.values()))
    for part in _chunks(dissolved):
        AccountCluster.objects.filter(pk__in=list(part)).delete()  # cascades to their members
    AccountCluster.objects.bulk_update(changed, [*_CLUSTER_FIELDS, "updated_at"], batch_size=500)
    created = iter(AccountCluster.objects.bulk_create(fresh, batch_size=500))
    wanted: dict[int, int] = {}
    for index, plan in enumerate(planned):
        cluster_pk = carried[index] if index in carried else next(created).pk
        wanted.update(dict.fromkeys(plan.component.accounts, cluster_pk))
    summary.members_changed = _members_sync(wanted, previous)
    summary.created, summary.kept, summary.dissolved = len(fresh), len(carried), len(dissolved)


def _members_sync(wanted: dict[int, int], previous: dict[int, int]) -> int:
    """Make AccountClusterMember equal ``wanted`` (account -> cluster pk); returns rows changed."""
    stale = [a for a, cluster_pk in previous.items() if wanted.get(a) != cluster_pk]
    for part in _chunks(stale):
        AccountClusterMember.objects.filter(account_id__in=list(part)).delete()
    fresh = [
        AccountClusterMember(account_id=a, cluster_id=cluster_pk)
        for a, cluster_pk in wanted.items()
        if previous.get(a) != cluster_pk
    ]
    AccountClusterMember.objects.bulk_create(fresh, batch_size=1000)
    return len(stale) + len(fresh)


# --- Entry points --------------------------------------------------------------------------------


def _lease_claim() -> datetime | None:
    """Conditional UPDATE: the lease is free (idle) or stale → ours. None when another run holds it."""
    claimed_at = timezone.now()
    MatchingCursor.objects.get_or_create(name=LEASE, defaults={"value": _IDLE})
    taken = MatchingCursor.objects.filter(name=LEASE, value__lt=claimed_at - stale_after()).update(
        value=claimed_at
    )
    return claimed_at if taken else None


def _lease_held(claimed_at: datetime) -> bool:
    # Inside the write transaction: a run that outlived its lease must not overwrite a newer run.
    return MatchingCursor.objects.select_for_update().filter(name=LEASE, value=claimed_at).exists()


def _lease_release(claimed_at: datetime) -> None:
    MatchingCursor.objects.filter(name=LEASE, value=claimed_at).update(value=_IDLE)


def link_config(now: datetime | None = None) -> LinkConfig:
    return LinkConfig(
        now=now or timezone.now(), window_days=window_days(), degree_cap=degree_cap(), min_size=min_size()
    )


def clusters_link(now: datetime | None = None, *, progress: Progress | None = None) -> LinkSummary:
    """Link every account inside the window ending at ``now`` and persist the clusters.

    Idempotent: the same data gives the same clusters, ids and memberships (a re-run writes
    nothing). Returns a summary; ``skipped`` when another run holds the lease.
    """
    started = time.perf_counter()
    claimed_at = _lease_claim()
    if claimed_at is None:
        logger.info("cluster linking skipped: another run holds the lease")
        return LinkSummary(skipped=True)
    try:
        config = link_config(now)
        summary = _link(config, claimed_at, progress)
    finally:
        _lease_release(claimed_at)
    summary.seconds = time.perf_counter() - started
    logger.debug("cluster linking: %s", summary.as_dict())  # the command prints it, Celery logs it
    return summary


def _link(config: LinkConfig, claimed_at: datetime, progress: Progress | None) -> LinkSummary:
    window = (_db_time(config.window_start), _db_time(config.now))
    known = indicator_values()
    capped: Counter = Counter()  # over-cap values SQL never hands to the linker

    def groups(sources: list[_Source]) -> Iterator[ValueGroup]:
        for source in sources:
            exempt = _exemption(source.label, known)
            yield from shared_values(source, config.degree_cap, exempt, capped, progress)

    linking = clustering.link_components(
        groups(strong_sources(window)), groups(weak_sources(window)), config, _timing_loader(config)
    )
    linking.stats.values_capped += sum(capped.values())
    if progress is not None:
        progress("features", len(linking.components))
    features = _features(linking.components, config)
    planned = [
        _Planned(component, _assess(component, feature, config), feature)
        for component, feature in zip(linking.components, features, strict=True)
    ]
    summary = LinkSummary(
        clusters=len(planned),
        candidates=sum(p.assessment.is_candidate for p in planned),
        accounts=sum(len(p.component.accounts) for p in planned),
        stats=asdict(linking.stats),
    )
    if progress is not None:
        progress("saving", len(planned))
    with transaction.atomic():
        if not _lease_held(claimed_at):
            logger.warning("cluster linking outlived its lease; a newer run saves instead")
            return LinkSummary(skipped=True)
        _persist(planned, summary)
        MatchingCursor.objects.update_or_create(name=LAST_RUN, defaults={"value": config.now})
    return summary


def _assess(component: clustering.Component, feature: _Features, config: LinkConfig) -> clustering.Assessment:
    return clustering.assess_component(
        size=len(component.accounts),
        indicator_hits=feature.indicator_hits,
        narrow_scores=feature.narrow_scores,
        template_weights=feature.template_weights,
        min_size=config.min_size,
    )


def last_linked() -> datetime | None:
    """The window end of the last completed linking run, if any."""
    return MatchingCursor.objects.filter(name=LAST_RUN).values_list("value", flat=True).first()


class ClusterReviewError(ValueError):
    """A review decision that is not allowed (message safe to show)."""


REVIEW_STATUSES = tuple(AccountCluster.Status.values)


def members_digest(cluster_pk: int) -> str:
    """SHA-256 over the cluster's member account pks: which accounts a decision was about."""
    digest = hashlib.sha256()
    members = AccountClusterMember.objects.filter(cluster_id=cluster_pk).order_by("account_id")
    for account_pk in members.values_list("account_id", flat=True).iterator(chunk_size=FETCH):
        digest.update(b"%d," % account_pk)
    return digest.hexdigest()


def members_changed_since_review(cluster: AccountCluster) -> bool:
    """Whether relinking changed the members after the decision (a review keeps its status
    across runs, but what leaves the node must be about the accounts a person looked at)."""
    return cluster.reviewed_at is not None and cluster.reviewed_members != members_digest(cluster.pk)


def cluster_review(*, cluster: AccountCluster, user=None, status: str, note: str = "") -> AccountCluster:
    """Record a reviewer's decision on a cluster (``new`` reopens it). Never enforces anything:
    §4.3.6 outbound sharing happens only after review, and only as counts."""
    if status not in REVIEW_STATUSES:
        raise ClusterReviewError(f"status must be one of {', '.join(REVIEW_STATUSES)}")
    now = timezone.now()
    cluster.status = status
    cluster.review_note = note.strip()[:5000]
    cluster.reviewer = user
    cluster.reviewed_at = now
    cluster.reviewed_members = members_digest(cluster.pk)
    cluster.updated_at = now
    fields = ["status", "review_note", "reviewer", "reviewed_at", "reviewed_members", "updated_at"]
    cluster.save(update_fields=fields)
    return cluster
