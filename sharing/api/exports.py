"""Collection exports: a STIX 2.1 bundle, CSV, and plain-text IP and hashed-identifier lists.

Each export streams rows from ``sharing.api.selectors.export_entries`` (the grant + TLP
filter) with ``.iterator()`` so memory stays flat however large the collection is. The two
text lists must be sorted and deduplicated, so they hold the (small) set of values only.
An optional ``ScoreFloor`` leaves out indicators whose decay score (indicators.decay) is
below a minimum, checked row by row as the rows stream.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from indicators.decay import decay_score
from indicators.matching import PatternError, parse_pattern
from indicators.matching.nodes import (
    Bracket,
    CompAnd,
    Comparison,
    CompOr,
    FollowedBy,
    ObsAnd,
    ObsOr,
    Op,
    Repeats,
    StartStop,
    Within,
)
from indicators.stix import TLP_MARKING_OBJECTS

CHUNK = 1000
CSV_COLUMNS = (
    "id",
    "type",
    "name",
    "pattern",
    "valid_from",
    "valid_until",
    "confidence",
    "tlp",
    "labels",
    "created_by_ref",
    "modified",
)
IP_TYPES = frozenset({"ipv4-addr", "ipv6-addr"})
HASHED_IDENTIFIER = "mdx-hashed-identifier"
_HASH_FIELDS = frozenset({"identifier_type", "key_id", "value"})
_TLP_MARKING_IDS = frozenset(m["id"] for m in TLP_MARKING_OBJECTS)


@dataclass(frozen=True)
class ScoreFloor:
    """``?min_score=``: indicators scoring below ``minimum`` at ``now`` are left out.

    Other objects have no decay score and are kept (a campaign does not go stale with its
    indicators).
    """

    minimum: int
    now: datetime

    def keeps(self, kind: str, data: dict) -> bool:
        return kind != "indicator" or decay_score(data, self.now) >= self.minimum


def _keeps(floor: ScoreFloor | None, kind: str, data: dict) -> bool:
    return floor is None or floor.keeps(kind, data)


# --- STIX bundle ----------------------------------------------------------------------------------


def stix_bundle_chunks(entries: QuerySet, *, floor: ScoreFloor | None = None) -> Iterator[bytes]:
    """A STIX 2.1 bundle (§8) of the stored canonical JSON, with the TLP 2.0 marking definitions.

    The markings come first so every object_marking_refs in the bundle resolves.
    """
    yield ('{"type":"bundle","id":"bundle--' + str(uuid.uuid4()) + '","objects":[').encode()
    yield ",".join(
        json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in TLP_MARKING_OBJECTS
    ).encode()
    rows = entries.values_list("stix_id", "type", "stix_object__json_text")
    for stix_id, kind, text in rows.iterator(chunk_size=CHUNK):
        if stix_id in _TLP_MARKING_IDS:
            continue  # already emitted above
        if floor is not None and kind == "indicator" and not floor.keeps(kind, json.loads(text)):
            continue
        yield ("," + text).encode()
    yield b"]}"


# --- CSV ------------------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write() returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _csv_row(data: dict, tlp: str) -> list:
    labels = data.get("labels") or []
    return [
        data.get("id", ""),
        data.get("type", ""),
        data.get("name", ""),
        data.get("pattern", ""),
        data.get("valid_from", ""),
        data.get("valid_until", ""),
        "" if data.get("confidence") is None else data["confidence"],
        tlp,
        ";".join(str(label) for label in labels) if isinstance(labels, list) else "",
        data.get("created_by_ref", ""),
        data.get("modified", ""),
    ]


def csv_lines(entries: QuerySet, *, floor: ScoreFloor | None = None) -> Iterator[str]:
    """A header and one CSV row per object (labels joined with ';')."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = entries.values_list("type", "stix_object__data", "stix_object__tlp")
    for kind, data, tlp in rows.iterator(chunk_size=CHUNK):
        if _keeps(floor, kind, data):
            yield writer.writerow(_csv_row(data, tlp))


# --- Pattern walking ------------------------------------------------------------------------------


def _brackets(expr) -> Iterator[Bracket]:
    if isinstance(expr, Bracket):
        yield expr
    elif isinstance(expr, ObsAnd | ObsOr):
        for operand in expr.operands:
            yield from _brackets(operand)
    elif isinstance(expr, FollowedBy):
        yield from _brackets(expr.left)
        yield from _brackets(expr.right)
    elif isinstance(expr, Within | Repeats | StartStop):
        yield from _brackets(expr.expr)


def _comparisons(expr) -> Iterator[Comparison]:
    if isinstance(expr, Comparison):
        yield expr
    elif isinstance(expr, CompAnd | CompOr):
        for operand in expr.operands:
            yield from _comparisons(operand)


def _parsed(pattern: str):
    try:
        return parse_pattern(pattern)
    except (PatternError, RecursionError):
        return None  # stored patterns were validated; an unparseable one contributes nothing


# --- IP list --------------------------------------------------------------------------------------


def normalise_ip(
    value: str,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address, or a network for CIDR notation (host bits cleared); None if not an IP."""
    text = value.strip()
    try:
        if "/" in text:
            return ipaddress.ip_network(text, strict=False)
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def pattern_ips(pattern: str) -> set:
    """IPs and CIDRs a pattern matches positively: `ipv4-addr:value` / `ipv6-addr:value` with = or ISSUBSET.

    Negated comparisons (NOT …) and other operators say nothing a blocklist can use.
    """
    tree = _parsed(pattern)
    if tree is None:
        return set()
    found = set()
    for bracket in _brackets(tree):
        for comparison in _comparisons(bracket.expr):
            if (
                comparison.path.object_type in IP_TYPES
                and comparison.path.steps == ("value",)
                and comparison.op in (Op.EQ, Op.ISSUBSET)
                and not comparison.negated
                and isinstance(comparison.value, str)
            ):
                ip = normalise_ip(comparison.value)
                if ip is not None:
                    found.add(ip)
    return found


def _ip_sort_key(ip) -> tuple:
    if isinstance(ip, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return ip.version, int(ip.network_address), ip.prefixlen
    return ip.version, int(ip), ip.max_prefixlen + 1  # an address sorts after networks starting with it


def ip_lines(entries: QuerySet, *, floor: ScoreFloor | None = None) -> list[str]:
    """One IP or CIDR per line, deduplicated, sorted by address family and value."""
    found = set()
    rows = entries.filter(type__in=["indicator", *IP_TYPES]).values_list("type", "stix_object__data")
    for kind, data in rows.iterator(chunk_size=CHUNK):
        if not _keeps(floor, kind, data):
            continue
        if kind == "indicator":
            if data.get("pattern_type", "stix") == "stix" and isinstance(data.get("pattern"), str):
                found |= pattern_ips(data["pattern"])
        elif isinstance(data.get("value"), str):
            ip = normalise_ip(data["value"])
            if ip is not None:
                found.add(ip)
    return [f"{ip}\n" for ip in sorted(found, key=_ip_sort_key)]


# --- Hashed identifiers ---------------------------------------------------------------------------


def _hash_field(comparison: Comparison) -> tuple[str, str] | None:
    path = comparison.path
    if (
        path.object_type == HASHED_IDENTIFIER
        and len(path.steps) == 1
        and path.steps[0] in _HASH_FIELDS
        and comparison.op is Op.EQ
        and not comparison.negated
        and isinstance(comparison.value, str)
    ):
        return str(path.steps[0]), comparison.value
    return None


def _hash_groups(expr, inherited: dict[str, str]) -> list[dict[str, str]]:
    """Field sets (identifier_type, key_id, value) that the comparisons of an expression AND together."""
    if isinstance(expr, Comparison):
        field = _hash_field(expr)
        fields = {**inherited, field[0]: field[1]} if field else inherited
        return [fields] if "value" in fields else []
    if isinstance(expr, CompOr):
        return [group for operand in expr.operands for group in _hash_groups(operand, inherited)]
    fields = dict(inherited)
    nested = []
    for operand in expr.operands:
        field = _hash_field(operand) if isinstance(operand, Comparison) else None
        if field:
            fields[field[0]] = field[1]
        elif not isinstance(operand, Comparison):
            nested.append(operand)
    groups = [group for operand in nested for group in _hash_groups(operand, fields)]
    return groups or ([fields] if "value" in fields else [])


def pattern_hashes(pattern: str) -> set[tuple[str, str, str]]:
    """(identifier_type, key_id, value) of each mdx-hashed-identifier a pattern matches positively."""
    tree = _parsed(pattern)
    if tree is None:
        return set()
    return {
        (g.get("identifier_type", ""), g.get("key_id", ""), g["value"])
        for bracket in _brackets(tree)
        for g in _hash_groups(bracket.expr, {})
    }


def hash_lines(entries: QuerySet, *, floor: ScoreFloor | None = None) -> list[str]:
    """`<identifier_type>\\t<key_id>\\t<value>` per hashed identifier, deduplicated and sorted."""
    found: set[tuple[str, str, str]] = set()
    rows = entries.filter(type__in=["indicator", HASHED_IDENTIFIER]).values_list("type", "stix_object__data")
    for kind, data in rows.iterator(chunk_size=CHUNK):
        if not _keeps(floor, kind, data):
            continue
        if kind == "indicator":
            if data.get("pattern_type", "stix") == "stix" and isinstance(data.get("pattern"), str):
                found |= pattern_hashes(data["pattern"])
        elif isinstance(data.get("value"), str):
            found.add((str(data.get("identifier_type", "")), str(data.get("key_id", "")), data["value"]))
    return [_tsv(row) for row in sorted(found)]


def _tsv(fields: Iterable[str]) -> str:
    # Tabs and newlines inside a value would break the line format; STIX values never need them.
    return "\t".join(f.replace("\t", " ").replace("\n", " ").replace("\r", " ") for f in fields) + "\n"
