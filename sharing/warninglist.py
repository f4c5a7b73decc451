"""Known-benign address ranges that reviewers are warned about (documentation and shared cloud egress).

The list is a JSON file::

    {"name": "...", "description": "...",
     "entries": [{"cidr": "192.0.2.0/24", "label": "TEST-NET-1 (RFC 5737)"}, ...]}

By default the bundled ``sharing/data/warninglist.json`` is used (the RFC 5737 / RFC 3849
documentation ranges and a few examples of major cloud egress). Set ``MDX_WARNINGLIST_FILE`` to
the path of your own file to replace it; the file is read once per process and path. A
missing or malformed file raises ``WarninglistError`` naming the file, so a typo is not
silently treated as "nothing is benign".
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "warninglist.json"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WarninglistError(ValueError):
    """The warninglist file is missing or malformed."""


@dataclass(frozen=True)
class WarninglistEntry:
    network: Network
    label: str


@dataclass(frozen=True)
class Warninglist:
    name: str
    entries: tuple[WarninglistEntry, ...]

    def hits(self, network: Network) -> list[WarninglistEntry]:
        """Entries that overlap ``network`` (it lies inside them, or contains them)."""
        return [
            e for e in self.entries if e.network.version == network.version and e.network.overlaps(network)
        ]


def warninglist_path() -> Path:
    configured = getattr(settings, "MDX_WARNINGLIST_FILE", None)
    return Path(configured) if configured else DEFAULT_PATH


@lru_cache(maxsize=4)
def _load(path: Path) -> Warninglist:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WarninglistError(f"warninglist {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise WarninglistError(f'warninglist {path}: expected an object with an "entries" list')
    entries = []
    for index, item in enumerate(raw["entries"]):
        try:
            network = ipaddress.ip_network(str(item["cidr"]), strict=False)
        except (KeyError, TypeError, ValueError) as exc:
            raise WarninglistError(f"warninglist {path}: entry #{index}: bad cidr ({exc})") from None
        entries.append(WarninglistEntry(network, str(item.get("label") or network)))
    return Warninglist(name=str(raw.get("name") or path.name), entries=tuple(entries))


def warninglist_load() -> Warninglist:
    """The configured warninglist (cached per path)."""
    return _load(warninglist_path())
