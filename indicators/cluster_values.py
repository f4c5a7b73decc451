"""What a confirmed hydra cluster may say about itself beyond its size (DOMAIN.md §4.3.6).

The outbound report after a cluster review carries "new indicators for cluster identifiers not
seen before", and no per-account list. A *cluster identifier* here is an attribute value that
ties the cluster together rather than describing one customer:

* it is one of the values linking uses (§4.3.2–4.3.3) and that other members can match on: a
  payment HMAC (PAN or PAR basis), an ``email-canonical``, phone or device-id HMAC, the signup
  /24 (IPv4) or /48 (IPv6), a client ja4 or ja4h;
* at least two members hold it — a value of one account would be that account's attribute;
* no account outside the cluster holds it (ever, not only inside the linking window), so an
  indicator made from it names the operator's infrastructure and none of our other customers;
* no indicator stored on this node names it already ("not seen before").

API-key hashes are left out (keys are issued per provider, so no other member can hold the
same one), and so are template HMACs and timing (they are similarity evidence, not identifiers).
Every value is keyed with the consortium key epoch at import, like the indicators members
already exchange; raw identifiers are never stored, so none can leave.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count

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
    """One value a cluster's members share exclusively, ready to become an indicator."""

    link_type: str  # indicators.clustering link type
    label: str  # what it is, for people: "payment card (PAN HMAC)"
    pattern: str  # STIX 2.1 pattern matching it
    kind: str  # mdx_indicator_kind (DOMAIN.md §1.7)
    literal: str  # the value as a pattern would quote it (the "seen before" test)
    holders: int  # members holding it

    @property
    def strong(self) -> bool:
        return self.link_type in clustering.STRONG_TYPES


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _members(cluster_pk: int):
    return AccountClusterMember.objects.filter(cluster_id=cluster_pk).values("account_id")


def _chunks(values: list, size: int = IN_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _held_outside(model, field: str, values: list[str], cluster_pk: int, **where) -> set[str]:
    """The values some account outside the cluster also holds."""
    outside: set[str] = set()
    for part in _chunks(values):
        outside.update(
            model.objects.filter(**{f"{field}__in": part}, **where)
            .exclude(account_id__in=_members(cluster_pk))
            .values_list(field, flat=True)
            .distinct()
        )
    return outside


def _payments(cluster_pk: int) -> list[ClusterIdentifier]:
    rows = (
        AccountPayment.objects.filter(account_id__in=_members(cluster_pk), basis__in=PAYMENT_BASES)
        .values("basis", "key_id", "value")
        .annotate(holders=Count("account_id", distinct=True))
        .filter(holders__gte=2)
        .order_by("value")
    )
    rows = list(rows)
    outside = _held_outside(AccountPayment, "value", [r["value"] for r in rows], cluster_pk)
    return [
        ClusterIdentifier(
            link_type=clustering.PAYMENT,
            label=f"payment card ({r['basis'].upper()} HMAC)",
            pattern=(
                f"[mdx-payment-fingerprint:basis = '{_quote(r['basis'])}' AND "
                f"mdx-payment-fingerprint:key_id = '{_quote(r['key_id'])}' AND "
                f"mdx-payment-fingerprint:value = '{_quote(r['value'])}']"
            ),
            kind="payment",
            literal=r["value"],
            holders=r["holders"],
        )
        for r in rows
        if r["value"] not in outside
    ]


def _identifiers(cluster_pk: int) -> list[ClusterIdentifier]:
    rows = list(
        AccountIdentifier.objects.filter(
            account_id__in=_members(cluster_pk), identifier_type__in=IDENTIFIER_TYPES
        )
        .values("identifier_type", "key_id", "value")
        .annotate(holders=Count("account_id", distinct=True))
        .filter(holders__gte=2)
        .order_by("value")
    )
    outside = _held_outside(AccountIdentifier, "value", [r["value"] for r in rows], cluster_pk)
    found = []
    for r in rows:
        if r["value"] in outside:
            continue
        terms = [f"mdx-hashed-identifier:identifier_type = '{_quote(r['identifier_type'])}'"]
        if r["key_id"]:
            terms.append(f"mdx-hashed-identifier:key_id = '{_quote(r['key_id'])}'")
        terms.append(f"mdx-hashed-identifier:value = '{_quote(r['value'])}'")
        found.append(
            ClusterIdentifier(
                link_type=r["identifier_type"],
                label=f"{r['identifier_type']} (keyed hash)",
                pattern=f"[{' AND '.join(terms)}]",
                kind="exact-identifier",
                literal=r["value"],
                holders=r["holders"],
            )
        )
    return found


def _signup_net(ip: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The /24 or /48 a signup address (or a block no wider than that) lies in (§4.3.3)."""
    try:
        network = ipaddress.ip_network(ip, strict=False)
    except ValueError:
        return None
    prefix = 24 if network.version == 4 else 48
    return network.supernet(new_prefix=prefix) if network.prefixlen >= prefix else None


def _signup_nets(cluster_pk: int) -> list[ClusterIdentifier]:
    holders: dict = defaultdict(set)
    for account_id, ip in AccountIp.objects.filter(
        account_id__in=_members(cluster_pk), is_signup=True
    ).values_list("account_id", "ip"):
        net = _signup_net(ip)
        if net is not None:
            holders[net].add(account_id)
    found = []
    for net, accounts in sorted(holders.items(), key=lambda item: (item[0].version, item[0])):
        if len(accounts) < 2:
            continue
        low, high = (value.to_bytes(16, "big") for value in ip_to_range(str(net)))
        outsider = (
            AccountIp.objects.filter(is_signup=True, ip_low__gte=low, ip_high__lte=high)
            .exclude(account_id__in=_members(cluster_pk))
            .exists()
        )
        if outsider:
            continue
        found.append(
            ClusterIdentifier(
                link_type=clustering.SIGNUP_NET,
                label=f"signup network /{net.prefixlen}",
                pattern=f"[mdx-ai-account:signup_ip_ref.value ISSUBSET '{net}']",
                kind="network-range",
                literal=str(net),
                holders=len(accounts),
            )
        )
    return found


def _clients(cluster_pk: int) -> list[ClusterIdentifier]:
    found = []
    for field in ("ja4", "ja4h"):
        rows = list(
            AccountClient.objects.filter(account_id__in=_members(cluster_pk))
            .exclude(**{field: ""})
            .values(field)
            .annotate(holders=Count("account_id", distinct=True))
            .filter(holders__gte=2)
            .order_by(field)
        )
        outside = _held_outside(AccountClient, field, [r[field] for r in rows], cluster_pk)
        found.extend(
            ClusterIdentifier(
                link_type=clustering.CLIENT,
                label=f"client fingerprint ({field})",
                pattern=f"[mdx-client-fingerprint:{field} = '{_quote(r[field])}']",
                kind="client-fingerprint",
                literal=r[field],
                holders=r["holders"],
            )
            for r in rows
            if r[field] not in outside
        )
    return found


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def seen_in_stored_indicators(candidates: set[str]) -> set[str]:
    """The candidate values some indicator stored here (any version, any state) already names:
    quoted as they are or, for a network, inside a network a pattern quotes."""
    seen: set[str] = set()
    if not candidates:
        return seen
    nets = {text: net for text in candidates if "/" in text and (net := _network(text)) is not None}
    patterns = StixObject.objects.filter(type="indicator").values_list("data__pattern", flat=True)
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


def cluster_identifiers(cluster_pk: int) -> list[ClusterIdentifier]:
    """The cluster's identifiers not seen before: strong ones first, most-held first."""
    found = _payments(cluster_pk) + _identifiers(cluster_pk) + _signup_nets(cluster_pk) + _clients(cluster_pk)
    seen = seen_in_stored_indicators({identifier.literal for identifier in found})
    fresh = [identifier for identifier in found if identifier.literal not in seen]
    return sorted(fresh, key=lambda i: (not i.strong, -i.holders, i.link_type, i.literal))
