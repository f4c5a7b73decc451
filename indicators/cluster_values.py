"""What a confirmed hydra cluster may say about itself beyond its size (DOMAIN.md §4.3.6).

The outbound report after a cluster review carries "new indicators for cluster identifiers not
seen before", and no per-account list. A *cluster identifier* here is an attribute value that
ties the cluster together rather than describing one customer:

* it is one of the values linking uses (§4.3.2–4.3.3) and that other members can match on: a
  payment HMAC (PAN or PAR basis), an ``email-canonical``, phone or device-id HMAC, the signup
  /24 (IPv4) or /48 (IPv6), a client ja4 or ja4h;
* at least ``min_holders`` members hold it (default 3) — a value of one or two accounts is in
  effect a person's identifier, not the operator's;
* no account outside the cluster holds it (ever, not only inside the linking window), so an
  indicator made from it names the operator's infrastructure and none of our other customers;
* no indicator stored on this node names it already ("not seen before"), other than the ones
  this node derived earlier from the same cluster (``ignore_ids``: those are re-issued);
* a keyed hash is taken under the current key epoch only: the importer hashes every identifier
  under each epoch the node holds, and one card need not leave as two linkable hashes.

API-key hashes are left out (keys are issued per provider, so no other member can hold the
same one), and so are template HMACs and timing (they are similarity evidence, not identifiers).
Raw identifiers are never stored, so none can leave.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef

from indicators import clustering
from indicators.matching.plan import ip_to_range
from indicators.models import (
    AccountClient,
    AccountClusterMember,
    AccountIdentifier,
    AccountIp,
    AccountPayment,
    StixObject,
)

IDENTIFIER_TYPES = (clustering.EMAIL, clustering.PHONE, clustering.DEVICE)
PAYMENT_BASES = ("pan", "par")
# The literal inside a STIX pattern's single quotes (STIX 2.1 §9.3: \' and \\ are the escapes).
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
IN_CHUNK = 500


@dataclass(frozen=True)
class ClusterIdentifier:
    """One value a cluster's members share, ready to become an indicator."""

    link_type: str  # indicators.clustering link type
    label: str  # what it is, for people: "payment card (PAN HMAC)"
    pattern: str  # STIX 2.1 pattern matching it
    kind: str  # mdx_indicator_kind (DOMAIN.md §1.7)
    literal: str  # the value as a pattern would quote it (the "seen before" test)
    holders: int  # members holding it

    @property
    def strong(self) -> bool:
        return self.link_type in clustering.STRONG_TYPES


@dataclass(frozen=True)
class _Candidate:
    identifier: ClusterIdentifier
    held_outside: Callable[[], bool]  # run only for candidates that could be chosen


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class _Reader:
    """Reads one cluster's shared values; every query is restricted to the members or to the
    values already found, never a scan of all accounts."""

    def __init__(self, cluster_pk: int, *, current_key: str | None, min_holders: int):
        self.cluster_pk, self.current_key, self.min_holders = cluster_pk, current_key, min_holders

    def members(self):
        return AccountClusterMember.objects.filter(cluster_id=self.cluster_pk).values("account_id")

    def outsider(self):
        """Rows of accounts that are not members (``~Exists``: one anti-join, not NOT IN)."""
        return ~Exists(
            AccountClusterMember.objects.filter(cluster_id=self.cluster_pk, account_id=OuterRef("account_id"))
        )

    def shared(self, model, fields: tuple[str, ...], **where) -> list[dict]:
        return list(
            model.objects.filter(account_id__in=self.members(), **where)
            .values(*fields)
            .annotate(holders=Count("account_id", distinct=True))
            .filter(holders__gte=self.min_holders)
            .order_by(*fields)
        )

    def held_outside(self, model, field: str, values: list[str]) -> set[str]:
        """The values some account outside the cluster also holds (batched, ahead of choosing)."""
        outside: set[str] = set()
        for start in range(0, len(values), IN_CHUNK):
            part = values[start : start + IN_CHUNK]
            outside.update(
                model.objects.filter(self.outsider(), **{f"{field}__in": part})
                .values_list(field, flat=True)
                .distinct()
            )
        return outside

    def payments(self) -> Iterator[_Candidate]:
        if self.current_key is None:
            return
        rows = self.shared(
            AccountPayment, ("basis", "value"), basis__in=PAYMENT_BASES, key_id=self.current_key
        )
        outside = self.held_outside(AccountPayment, "value", [r["value"] for r in rows])
        for r in rows:
            if r["value"] in outside:
                continue
            pattern = (
                f"[mdx-payment-fingerprint:basis = '{_quote(r['basis'])}' AND "
                f"mdx-payment-fingerprint:key_id = '{_quote(self.current_key)}' AND "
                f"mdx-payment-fingerprint:value = '{_quote(r['value'])}']"
            )
            label = f"payment card ({r['basis'].upper()} HMAC)"
            yield _settled(
                ClusterIdentifier(clustering.PAYMENT, label, pattern, "payment", r["value"], r["holders"])
            )

    def identifiers(self) -> Iterator[_Candidate]:
        if self.current_key is None:
            return
        rows = self.shared(
            AccountIdentifier,
            ("identifier_type", "value"),
            identifier_type__in=IDENTIFIER_TYPES,
            key_id=self.current_key,
        )
        outside = self.held_outside(AccountIdentifier, "value", [r["value"] for r in rows])
        for r in rows:
            if r["value"] in outside:
                continue
            pattern = (
                f"[mdx-hashed-identifier:identifier_type = '{_quote(r['identifier_type'])}' AND "
                f"mdx-hashed-identifier:key_id = '{_quote(self.current_key)}' AND "
                f"mdx-hashed-identifier:value = '{_quote(r['value'])}']"
            )
            label = f"{r['identifier_type']} (keyed hash)"
            identifier = ClusterIdentifier(
                r["identifier_type"], label, pattern, "exact-identifier", r["value"], r["holders"]
            )
            yield _settled(identifier)

    def signup_nets(self) -> Iterator[_Candidate]:
        holders: dict = defaultdict(set)
        signups = AccountIp.objects.filter(account_id__in=self.members(), is_signup=True)
        for account_pk, ip in signups.values_list("account_id", "ip").iterator(chunk_size=5000):
            net = _signup_net(ip)
            if net is not None:
                holders[net].add(account_pk)
        for net, accounts in sorted(holders.items(), key=lambda item: (item[0].version, item[0])):
            if len(accounts) < self.min_holders:
                continue
            identifier = ClusterIdentifier(
                clustering.SIGNUP_NET,
                f"signup network /{net.prefixlen}",
                f"[mdx-ai-account:signup_ip_ref.value ISSUBSET '{net}']",
                "network-range",
                str(net),
                len(accounts),
            )
            # One range query per network, so it waits until the network could be chosen.
            yield _Candidate(identifier, lambda net=net: self.signup_outside(net))

    def signup_outside(self, net) -> bool:
        low, high = (value.to_bytes(16, "big") for value in ip_to_range(str(net)))
        # Bounded on both sides of ip_low, so the ip_low index serves it (as matching does).
        inside = AccountIp.objects.filter(
            is_signup=True, ip_low__gte=low, ip_low__lte=high, ip_high__lte=high
        )
        return inside.filter(self.outsider()).exists()

    def clients(self) -> Iterator[_Candidate]:
        for field in ("ja4", "ja4h"):
            rows = [r for r in self.shared(AccountClient, (field,)) if r[field]]
            outside = self.held_outside(AccountClient, field, [r[field] for r in rows])
            for r in rows:
                if r[field] in outside:
                    continue
                pattern = f"[mdx-client-fingerprint:{field} = '{_quote(r[field])}']"
                label = f"client fingerprint ({field})"
                identifier = ClusterIdentifier(
                    clustering.CLIENT, label, pattern, "client-fingerprint", r[field], r["holders"]
                )
                yield _settled(identifier)


def _settled(identifier: ClusterIdentifier) -> _Candidate:
    return _Candidate(identifier, lambda: False)


def _signup_net(ip: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The /24 or /48 a signup address (or a block no wider than that) lies in (§4.3.3)."""
    network = _network(ip)
    if network is None:
        return None
    prefix = 24 if network.version == 4 else 48
    return network.supernet(new_prefix=prefix) if network.prefixlen >= prefix else None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def seen_in_stored_indicators(candidates: set[str], ignore_ids: Iterable[str] = ()) -> set[str]:
    """The candidate values some indicator stored here (any version, any state) already names:
    quoted as they are or, for a network, inside a network a pattern quotes. Indicators whose id
    is in ``ignore_ids`` do not count."""
    seen: set[str] = set()
    if not candidates:
        return seen
    nets = {text: net for text in candidates if "/" in text and (net := _network(text)) is not None}
    patterns = (
        StixObject.objects.filter(type="indicator")
        .exclude(stix_id__in=list(ignore_ids))
        .values_list("data__pattern", flat=True)
    )
    for pattern in patterns.iterator(chunk_size=2000):
        if not isinstance(pattern, str):
            continue
        for quoted in _QUOTED.findall(pattern):
            literal = quoted.replace("\\'", "'").replace("\\\\", "\\")
            if literal in candidates:
                seen.add(literal)
            elif nets and ("." in literal or ":" in literal) and (stored := _network(literal)) is not None:
                seen.update(
                    text
                    for text, net in nets.items()
                    if net.version == stored.version and net.subnet_of(stored)
                )
    return seen


def cluster_identifiers(
    cluster_pk: int,
    *,
    current_key: str | None,
    limit: int,
    min_holders: int = 3,
    ignore_ids: Iterable[str] = (),
) -> tuple[list[ClusterIdentifier], bool]:
    """Up to ``limit`` of the cluster's identifiers not seen before — strong ones first, then the
    most-held — and whether candidates were left unexamined at the limit. Without a
    ``current_key`` (no keyring here) keyed hashes are left out: the current epoch is unknown."""
    reader = _Reader(cluster_pk, current_key=current_key, min_holders=max(2, min_holders))
    candidates = [*reader.payments(), *reader.identifiers(), *reader.signup_nets(), *reader.clients()]
    seen = seen_in_stored_indicators({c.identifier.literal for c in candidates}, ignore_ids)
    fresh = sorted(
        (c for c in candidates if c.identifier.literal not in seen),
        key=lambda c: (
            not c.identifier.strong,
            -c.identifier.holders,
            c.identifier.link_type,
            c.identifier.literal,
        ),
    )
    chosen: list[ClusterIdentifier] = []
    for candidate in fresh:
        if len(chosen) == limit:
            return chosen, True
        if not candidate.held_outside():
            chosen.append(candidate.identifier)
    return chosen, False
