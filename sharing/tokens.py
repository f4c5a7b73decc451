"""API token format, generation and verification.

A token is ``mdx_<8 hex lookup prefix>_<43 url-safe chars>``: 256 bits of secret entropy
behind a fixed, recognisable ``mdx_`` prefix that secret scanners can match with
``mdx_[0-9a-f]{8}_[A-Za-z0-9_-]{43}``. Only the lookup prefix and the SHA-256 digest of the
whole token are stored. A fast hash is right here: the secret is random and long, so there
is nothing to brute-force, and a slow password hash would cost tens of ms per request.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "mdx_"
TOKEN_RE = re.compile(r"^mdx_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class NewToken:
    plaintext: str
    prefix: str
    digest: str


def token_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def token_generate() -> NewToken:
    lookup = secrets.token_hex(4)
    plaintext = f"{TOKEN_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    return NewToken(plaintext=plaintext, prefix=f"{TOKEN_PREFIX}{lookup}", digest=token_digest(plaintext))


def token_lookup_prefix(plaintext: str) -> str | None:
    """The stored lookup prefix of a well-formed token, or None for anything else."""
    match = TOKEN_RE.match(plaintext)
    return f"{TOKEN_PREFIX}{match.group(1)}" if match else None


def token_matches(plaintext: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(plaintext), digest)


def parse_cidrs(raw: str | list[str]) -> list[str]:
    """Validate a comma-separated (or list) CIDR allowlist; returns normalised networks."""
    items = raw if isinstance(raw, list) else raw.split(",")
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"not an IP network: {item!r}") from None
    return networks


def address_allowed(address: str | None, cidrs: list[str]) -> bool:
    if not cidrs:
        return True
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(c) for c in cidrs)
