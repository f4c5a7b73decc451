"""Observations of an account (DOMAIN §4.0) and their STIX 2.1 bundle form for stix2-matcher."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .records import AccountRecord, IpRecord
from .scos import (
    account_sco,
    api_key_sco,
    asn_sco,
    client_sco,
    identifier_sco,
    ip_sco,
    payment_sco,
    prompt_signature_sco,
    stix_timestamp,
    timing_sco,
)

# UUIDv5 namespace for the ids of our observed-data and bundles (DOMAIN §1.7 MDX_NS).
_MDX_NS = uuid.UUID("a42b288d-b014-5adb-9a3b-1d5b957caaa3")


@dataclass(frozen=True)
class Observation:
    """One observed-data: a time interval, a count and the SCOs seen together (treat as read-only)."""

    first_observed: datetime
    last_observed: datetime
    number_observed: int
    objects: dict[str, dict[str, Any]]
    root_ids: tuple[str, ...]
    by_type: Mapping[str, tuple[dict[str, Any], ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.number_observed < 1:
            raise ValueError("number_observed must be at least 1")
        if self.last_observed < self.first_observed:
            raise ValueError("last_observed is before first_observed")
        grouped: dict[str, list[dict[str, Any]]] = {}
        for sco in self.objects.values():
            grouped.setdefault(sco["type"], []).append(sco)
        object.__setattr__(self, "by_type", {k: tuple(v) for k, v in grouped.items()})


def account_observations(account: AccountRecord) -> list[Observation]:
    """DOMAIN §4.0: one profile observation, then one fact observation per attribute."""
    facts: dict[str, _Fact] = {}

    def add(
        sco: dict[str, Any],
        first: datetime | None,
        last: datetime | None,
        extra: Iterable[dict[str, Any]] = (),
    ) -> str:
        # The same attribute listed twice yields the same SCO id: one fact, widest times.
        known = facts.get(sco["id"])
        if known is None:
            facts[sco["id"]] = _Fact(sco, tuple(extra), first, last)
        else:
            known.widen(first, last)
        return str(sco["id"])

    identifier_ids = [add(identifier_sco(i), i.first_seen, i.last_seen) for i in account.identifiers]
    identifier_ids += [add(api_key_sco(k), k.created_at, k.last_used_at) for k in account.api_keys]
    payment_ids = [add(payment_sco(p), p.first_used, p.last_used) for p in account.payments]
    ip_ids: list[str] = []
    asn_ids: list[str] = []
    signup_ip_id: str | None = None
    for ip in _merge_ips(account.ips):
        asn = [asn_sco(ip.asn)] if ip.asn is not None else []
        ip_ids.append(add(ip_sco(ip), ip.first_seen, ip.last_seen, asn))
        asn_ids.extend(a["id"] for a in asn)
        if ip.signup and signup_ip_id is None:
            signup_ip_id = ip_ids[-1]
    client_ids = [add(client_sco(c), c.first_seen, c.last_seen) for c in account.clients]
    prompts = account.prompt_signatures
    prompt_ids = [add(prompt_signature_sco(s), s.window_start, s.window_end) for s in prompts]
    timing_ids = [add(timing_sco(w), w.window_start, w.window_end) for w in account.timing]

    root = account_sco(
        account,
        identifier_refs=_unique(identifier_ids),
        payment_refs=_unique(payment_ids),
        signup_ip_ref=signup_ip_id,
        ip_refs=_unique(ip_ids),
        asn_refs=_unique(asn_ids),
        client_refs=_unique(client_ids),
        prompt_signature_refs=_unique(prompt_ids),
        timing_refs=_unique(timing_ids),
    )
    # DOMAIN §4.0: the profile spans created_at to the latest last_seen/window_end.
    profile_first = account.created_at
    profile_last = max([profile_first, *(f.last for f in facts.values() if f.last is not None)])
    profile_objects = {root["id"]: root}
    for fact in facts.values():
        profile_objects[fact.sco["id"]] = fact.sco
        profile_objects.update((sco["id"], sco) for sco in fact.extra)
    observations = [Observation(profile_first, profile_last, 1, profile_objects, (root["id"],))]
    for fact in facts.values():
        first = fact.first or profile_first
        last = fact.last or profile_last
        objects = {fact.sco["id"]: fact.sco, **{sco["id"]: sco for sco in fact.extra}}
        # An attribute first seen after the profile's end (or with inverted times) is an instant.
        observations.append(Observation(first, max(first, last), 1, objects, (fact.sco["id"],)))
    return observations


def observations_as_bundles(observations: Sequence[Observation]) -> list[dict[str, Any]]:
    """STIX 2.1 bundles, one per observation (observed-data + its top-level SCOs), as stix2-matcher wants."""
    bundles = []
    for index, obs in enumerate(observations):
        seed = f"{index}|{','.join(obs.root_ids)}|{stix_timestamp(obs.first_observed)}"
        observed = {
            "type": "observed-data",
            "spec_version": "2.1",
            "id": f"observed-data--{uuid.uuid5(_MDX_NS, seed)}",
            "created": _EPOCH,
            "modified": _EPOCH,
            "first_observed": stix_timestamp(obs.first_observed),
            "last_observed": stix_timestamp(obs.last_observed),
            "number_observed": obs.number_observed,
            "object_refs": list(obs.objects),
        }
        bundles.append(
            {
                "type": "bundle",
                "id": f"bundle--{uuid.uuid5(_MDX_NS, 'bundle|' + seed)}",
                "objects": [observed, *obs.objects.values()],
            }
        )
    return bundles


_EPOCH = stix_timestamp(datetime(1970, 1, 1, tzinfo=UTC))


@dataclass
class _Fact:
    sco: dict[str, Any]
    extra: tuple[dict[str, Any], ...]
    first: datetime | None
    last: datetime | None

    def widen(self, first: datetime | None, last: datetime | None) -> None:
        if first is not None:
            self.first = first if self.first is None else min(self.first, first)
        if last is not None:
            self.last = last if self.last is None else max(self.last, last)


def _merge_ips(ips: Sequence[IpRecord]) -> list[IpRecord]:
    # The IP SCO id depends on the address only, so rows for one address become one
    # SCO; its mdx-ip-context extension then spans all of them.
    merged: dict[str, IpRecord] = {}
    for ip in ips:
        known = merged.get(ip.ip)
        merged[ip.ip] = ip if known is None else known.merged_with(ip)
    return list(merged.values())


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))
