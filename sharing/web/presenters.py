"""How the review UI presents one STIX object version: pattern, warnings, diff, neighbourhood."""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import re
from dataclasses import dataclass, field

from django.urls import reverse
from django.utils import timezone

from indicators.decay import Decay, indicator_decay
from indicators.models import StixObject
from sharing.warninglist import WarninglistError, warninglist_load

log = logging.getLogger(__name__)

# Address literals compared against ipv4-addr / ipv6-addr values in a STIX pattern.
_ADDRESS_RE = re.compile(r"(ipv4-addr|ipv6-addr):value\s*(?:=|ISSUBSET|ISSUPERSET|IN|!=)\s*\(?\s*'([^']+)'")
_QUOTED_IN_LIST_RE = re.compile(r"(ipv4-addr|ipv6-addr):value\s+IN\s*\(([^)]*)\)")
_NETWORK_TYPES = ("ipv4-addr", "ipv6-addr", "domain-name", "url", "network-traffic", "autonomous-system")
_BREAK_WORDS = (" AND ", " OR ", " FOLLOWEDBY ")
# Broader than this prefix is flagged: a /15 IPv4 block is 131,072 addresses of shared infrastructure.
BROAD_PREFIX = {4: 16, 6: 32}


def pattern_pretty(pattern: str) -> str:
    """Break a STIX pattern before AND / OR / FOLLOWEDBY outside quoted strings, indenting by depth."""
    out, depth, i, quoted = [], 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'" and (i == 0 or pattern[i - 1] != "\\"):
            quoted = not quoted
        if not quoted:
            if ch in "[(":
                depth += 1
            elif ch in "])":
                depth = max(depth - 1, 0)
            word = next((w for w in _BREAK_WORDS if pattern.startswith(w, i)), None)
            if word:
                out.append("\n" + "  " * depth + word.strip() + " ")
                i += len(word)
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def pattern_networks(pattern: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    literals = [m.group(2) for m in _ADDRESS_RE.finditer(pattern or "")]
    for match in _QUOTED_IN_LIST_RE.finditer(pattern or ""):
        literals += re.findall(r"'([^']+)'", match.group(2))
    networks = []
    for literal in literals:
        try:
            networks.append(ipaddress.ip_network(literal.strip(), strict=False))
        except ValueError:
            continue
    return list(dict.fromkeys(networks))


def object_warnings(obj: StixObject) -> list[str]:
    """What a reviewer should look at twice before approving this version."""
    warnings = []
    data = obj.data
    pattern = str(data.get("pattern", "")) if obj.type == "indicator" else ""
    networks = pattern_networks(pattern) if data.get("pattern_type", "stix") == "stix" else []
    try:
        benign = warninglist_load()
    except WarninglistError as exc:
        log.error("%s", exc)
        warnings.append(f"the warninglist could not be read: {exc}")
        benign = None
    for network in networks:
        for entry in benign.hits(network) if benign else []:
            warnings.append(
                f"pattern range {network} overlaps a known-benign range: {entry.network} ({entry.label})"
            )
        if network.prefixlen < BROAD_PREFIX[network.version]:
            warnings.append(
                f"CIDR {network} is broader than /{BROAD_PREFIX[network.version]} "
                f"({network.num_addresses:,} addresses)"
            )
    if obj.valid_until is not None and obj.valid_until < timezone.now():
        warnings.append(f"valid_until {obj.valid_until:%Y-%m-%d %H:%M} UTC is in the past")
    if (
        obj.type == "indicator"
        and obj.valid_until is None
        and any(t + ":" in pattern for t in _NETWORK_TYPES)
    ):
        warnings.append("network indicator without valid_until: addresses get reassigned, set an expiry")
    return warnings


def would_match_count(obj: StixObject) -> int | None:
    """Local accounts the pattern would match, when this node has matching installed; else None."""
    if obj.type != "indicator" or not obj.data.get("pattern"):
        return None
    try:
        from indicators import matching_service

        count = matching_service.would_match_count
    except (ImportError, AttributeError):
        return None
    try:
        return count(obj.data["pattern"])
    except Exception:  # a preview must never break the review page
        log.exception("would_match_count failed for %s", obj)
        return None


def pretty_json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def previous_version(obj: StixObject) -> StixObject | None:
    return (
        StixObject.objects.filter(stix_id=obj.stix_id, modified__lt=obj.modified)
        .order_by("-modified")
        .first()
    )


@dataclass
class DiffLine:
    kind: str  # "add", "del", "hunk", "ctx"
    text: str


def version_diff(obj: StixObject) -> tuple[StixObject | None, list[DiffLine]]:
    """A unified diff (difflib) of pretty JSON against the previous stored version of the same id."""
    prev = previous_version(obj)
    if prev is None:
        return None, []
    lines = difflib.unified_diff(
        pretty_json(prev.data).splitlines(),
        pretty_json(obj.data).splitlines(),
        fromfile=f"modified {prev.data.get('modified', '')}",
        tofile=f"modified {obj.data.get('modified', '')}",
        lineterm="",
    )
    out = []
    for line in lines:
        if line.startswith(("+++", "---")) or line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append(DiffLine(kind, line))
    return prev, out


@dataclass
class ObjectView:
    """Everything the templates show about one version."""

    obj: StixObject
    pattern: str = ""
    external_references: list[dict] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    would_match: int | None = None
    raw_json: str = ""
    previous: StixObject | None = None
    diff: list[DiffLine] = field(default_factory=list)
    decay: Decay | None = None  # indicators only


def object_view(obj: StixObject, *, with_diff: bool = True) -> ObjectView:
    data = obj.data
    view = ObjectView(
        obj=obj,
        decay=indicator_decay(data, timezone.now()) if obj.type == "indicator" else None,
        pattern=pattern_pretty(str(data.get("pattern", ""))) if data.get("pattern") else "",
        external_references=[r for r in data.get("external_references", []) if isinstance(r, dict)],
        labels=[str(label) for label in data.get("labels", [])],
        warnings=object_warnings(obj),
        would_match=would_match_count(obj),
        raw_json=pretty_json(data),
    )
    if with_diff:
        view.previous, view.diff = version_diff(obj)
    return view


def attach_decay(objects: list[StixObject]) -> None:
    """Set ``.decay`` on each object (None unless an indicator), for a list that deferred ``data``.

    One query fetches the data of the indicators only, so the page's other objects stay deferred.
    """
    now = timezone.now()
    pks = [o.pk for o in objects if o.type == "indicator"]
    data = dict(StixObject.objects.filter(pk__in=pks).values_list("pk", "data")) if pks else {}
    for obj in objects:
        obj.decay = indicator_decay(data[obj.pk], now) if obj.pk in data else None


# --- Neighbourhood --------------------------------------------------------------------------------


def _latest(stix_ids: set[str]) -> dict[str, StixObject]:
    found: dict[str, StixObject] = {}
    for row in StixObject.objects.filter(stix_id__in=stix_ids).order_by("stix_id", "modified"):
        found[row.stix_id] = row  # ascending, so the last one per id wins
    return found


def _label(obj: StixObject | None, stix_id: str) -> str:
    if obj is not None and obj.name:
        return obj.name
    return stix_id.split("--", 1)[0] + " " + stix_id.split("--", 1)[-1][:8]


def _refs(data: dict) -> list[tuple[str, str]]:
    """(property, id) for every *_ref / *_refs of the object, except markings and relationship ends."""
    refs = []
    for key, value in data.items():
        if key in {"object_marking_refs", "source_ref", "target_ref", "id"}:
            continue
        if key.endswith("_ref") and isinstance(value, str):
            refs.append((key, value))
        elif key.endswith("_refs") and isinstance(value, list):
            refs += [(key, v) for v in value if isinstance(v, str)]
    return refs


def relationships(obj: StixObject) -> list[dict]:
    """Edges around the object: relationship objects naming it, sightings of it, and its own refs."""
    edges: list[dict] = []
    rels = StixObject.objects.filter(type="relationship").filter(
        data__source_ref=obj.stix_id
    ) | StixObject.objects.filter(type="relationship", data__target_ref=obj.stix_id)
    newest: dict[str, StixObject] = {}
    for rel in rels.order_by("stix_id", "modified"):
        newest[rel.stix_id] = rel
    for rel in newest.values():
        outgoing = rel.data.get("source_ref") == obj.stix_id
        other = rel.data.get("target_ref") if outgoing else rel.data.get("source_ref")
        edges.append(
            {
                "relation": rel.data.get("relationship_type", "related-to"),
                "direction": "out" if outgoing else "in",
                "other_id": other,
                "via": rel,
            }
        )
    for sighting in StixObject.objects.filter(type="sighting", data__sighting_of_ref=obj.stix_id)[:50]:
        edges.append(
            {"relation": "sighting of", "direction": "in", "other_id": sighting.stix_id, "via": None}
        )
    for key, ref in _refs(obj.data):
        edges.append(
            {
                "relation": key.removesuffix("_refs").removesuffix("_ref").replace("_", " "),
                "direction": "out",
                "other_id": ref,
                "via": None,
            }
        )
    others = _latest({e["other_id"] for e in edges if e["other_id"]})
    for edge in edges:
        other = others.get(edge["other_id"])
        edge["other"] = other
        edge["label"] = _label(other, edge["other_id"] or "")
        edge["type"] = (edge["other_id"] or "").split("--", 1)[0]
        edge["url"] = reverse("web:object-detail", args=[other.pk]) if other is not None else ""
    return edges


def graph_nodes(obj: StixObject, edges: list[dict]) -> tuple[dict, list[dict]]:
    centre = {"label": _label(obj, obj.stix_id), "type": obj.type}
    return centre, [
        {"label": e["label"], "type": e["type"], "relation": e["relation"], "url": e["url"]} for e in edges
    ]
