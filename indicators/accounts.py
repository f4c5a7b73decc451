"""Local account import (DOMAIN.md §4.0): JSON Lines in, hashed attribute rows out.

:func:`accounts_import` streams the lines in batches (constant memory), validates every
field of every line, hashes raw identifiers with the node's key epochs (§3.3) and writes each
batch in one transaction: upsert the accounts, delete their old attribute rows (one query
per table), insert the new ones (PostgreSQL ``COPY``; a portable ``INSERT`` elsewhere).
Parsing runs one batch ahead in a thread, overlapping the database round trips.

Raw identifier values (e-mail, phone, PAN, PAR, API key, ...) are never stored and never
appear in an error message: messages name the field, never its value.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from queue import Full, Queue

from django.db import connection, models, transaction
from django.utils import timezone

from indicators import hashing
from indicators.hashing import HashingError, Keyring
from indicators.matching.plan import ip_to_range
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
)

__all__ = ["AccountImportError", "ImportResult", "accounts_import"]

# Closed enumerations of DOMAIN §1.7; the "-ov" vocabularies (tier, access_channel,
# capability tags) are open, so only their type and length are checked.
STATUSES = ("active", "suspended", "terminated")
ORG_CATEGORIES = ("individual", "university", "research-institute", "startup", "enterprise", "unknown")
INSTRUMENT_TYPES = ("card", "bank-account", "wallet", "crypto-address")
PAYMENT_BASES = ("pan", "par", "iban", "wallet-id", "crypto-address")
CARD_FUNDING = ("credit", "debit", "prepaid", "unknown")
PROXY_TYPES = ("residential", "mobile", "datacenter", "vpn", "tor", "ai-reseller-egress", "unknown")
# API keys have their own list (`api_keys`): their scheme is sha256, not a keyed HMAC.
IDENTIFIER_TYPES = tuple(t for t in hashing.NORMALIZATIONS if t != "api-key")

MINHASH_SIZE, LSH_BANDS = 128, 16
IAT_BINS, HOUR_BINS = 16, 24
# Column limits of the models: a value past them would abort the whole batch in PostgreSQL.
MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1
MAX_ASN = 2**32 - 1  # 4-byte AS numbers (RFC 6793)
MAX_RAW_VALUE = 1000

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_IIN = re.compile(r"[0-9]{6,8}")
_BAND = re.compile(r"[0-9]{2}:[0-9a-f]{16}")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


class AccountImportError(Exception):
    """The import cannot run at all (e.g. the node has no keyring)."""


@dataclass
class ImportResult:
    imported: int = 0  # lines written (created + updated)
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, message)
    changed_account_pks: list[int] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.errors)


class _BadLine(ValueError):
    """A field of one line is invalid; the message names the field, never its value."""


# --- Field validation ---------------------------------------------------------------------------


def _kind(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


class _Fields:
    """One JSON object of a line, with typed getters; absent and null are the same."""

    def __init__(self, value: object, path: str, allowed: frozenset[str]):
        if not isinstance(value, dict):
            raise _BadLine(f"{path or 'line'}: must be a JSON object, not {_kind(value)}")
        if unknown := value.keys() - allowed:
            where = f"{path}: " if path else ""
            raise _BadLine(f"{where}unknown field(s) {', '.join(sorted(unknown))}")
        self.data = value
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _get(self, key: str, required: bool) -> object:
        value = self.data.get(key)
        if value is None and required:
            raise _BadLine(f"{self.name(key)}: is required")
        return value

    def text(
        self,
        key: str,
        *,
        max_length: int,
        required: bool = False,
        choices: tuple[str, ...] | None = None,
        pattern: re.Pattern | None = None,
        what: str = "",
    ) -> str:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise _BadLine(f"{self.name(key)}: is required")
            return ""
        return _check_text(value, self, key, max_length, choices, pattern, what)

    def key_id(self) -> str:
        return self.text("key_id", required=True, max_length=64, pattern=hashing.KEY_ID_RE, what=_KEY_ID_WHAT)

    def hex64(self, key: str) -> str:
        return self.text(key, max_length=64, pattern=_HEX64, what="64 lowercase hex characters")

    def country(self, key: str) -> str:
        return self.text(key, max_length=2, pattern=_COUNTRY, what="a 2-letter country code").upper()

    def no_key_id(self) -> None:
        if self.has("key_id"):
            raise _BadLine(
                f"{self.name('key_id')}: only with a pre-hashed hmac (raw values use this node's keys)"
            )

    def integer(self, key: str, *, maximum: int, required: bool = False) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _check_integer(value, self, key, maximum)

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _check_number(value, self, key)

    def boolean(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise _BadLine(f"{self.name(key)}: must be true or false, not {_kind(value)}")
        return value

    def timestamp(self, key: str, *, required: bool = False) -> datetime | None:
        value = self._get(key, required)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise _BadLine(f"{self.name(key)}: must be an RFC 3339 timestamp with a time zone")
        return parsed

    def array(self, key: str, *, required: bool = False) -> list:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _BadLine(f"{self.name(key)}: must be an array, not {_kind(value)}")
        return value

    def objects(self, key: str, allowed: frozenset[str]) -> Iterator[_Fields]:
        for i, item in enumerate(self.array(key)):
            yield _Fields(item, f"{self.name(key)}[{i}]", allowed)

    def numbers(self, key: str, length: int, *, maximum: int | None = None, required: bool = False) -> list:
        """An array of exactly ``length`` numbers (unsigned integers up to ``maximum`` if given)."""
        values = self.array(key, required=required)
        if (values or required) and len(values) != length:
            raise _BadLine(f"{self.name(key)}: must have {length} values, got {len(values)}")
        if maximum is None:
            return [_check_number(v, self, key) for v in values]
        return [_check_integer(v, self, key, maximum) for v in values]

    def window(self) -> tuple[datetime, datetime]:
        start = self.timestamp("window_start", required=True)
        end = self.timestamp("window_end", required=True)
        if end < start:
            raise _BadLine(f"{self.name('window_end')}: is before window_start")
        return start, end


# The checks take (where, key) rather than a field name: building names only on failure
# keeps validation cheap on the import's hot path.


def _check_text(
    value: object,
    where: _Fields,
    key: str,
    max_length: int,
    choices: tuple[str, ...] | None = None,
    pattern: re.Pattern | None = None,
    what: str = "",
) -> str:
    if not isinstance(value, str):
        raise _BadLine(f"{where.name(key)}: must be a string, not {_kind(value)}")
    if choices is not None:
        if value not in choices:
            raise _BadLine(f"{where.name(key)}: must be one of {', '.join(choices)}")
        return value
    if pattern is not None:
        if not pattern.fullmatch(value):
            raise _BadLine(f"{where.name(key)}: must be {what}")
        return value
    if not value.strip():
        raise _BadLine(f"{where.name(key)}: must not be empty")
    if len(value) > max_length:
        raise _BadLine(f"{where.name(key)}: must be at most {max_length} characters")
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: either would
    # abort the whole batch instead of this one line.
    if "\x00" in value:
        raise _BadLine(f"{where.name(key)}: must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise _BadLine(f"{where.name(key)}: is not valid Unicode text") from None
    return value


def _check_integer(value: object, where: _Fields, key: str, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise _BadLine(f"{where.name(key)}: must be an integer from 0 to {maximum}")
    return value


def _check_number(value: object, where: _Fields, key: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise _BadLine(f"{where.name(key)}: must be a finite number")
    return float(value)


# --- Line parsing -------------------------------------------------------------------------------

_ACCOUNT_FIELDS = frozenset(
    {
        "account_id", "created_at", "status", "tier", "org_category", "access_channel", "signup_country",
        "identifiers", "payments", "ips", "api_keys", "clients", "prompt_signatures", "timing",
    }
)  # fmt: skip
_IDENTIFIER_FIELDS = frozenset({"type", "value", "region", "key_id", "hmac", "first_seen", "last_seen"})
_PAYMENT_FIELDS = frozenset(
    {
        "instrument_type", "basis", "key_id", "hmac", "pan", "par", "card_iin", "card_network",
        "card_funding", "is_virtual", "issuer_country", "first_used", "last_used",
    }
)  # fmt: skip
_IP_FIELDS = frozenset({"ip", "asn", "proxy_type", "signup", "first_seen", "last_seen", "request_count"})
_API_KEY_FIELDS = frozenset({"sha256", "key", "created_at", "last_used_at", "revoked_at"})
_CLIENT_TEXT = {
    "user_agent": 500, "sdk_name": 100, "sdk_version": 50, "http_library": 100, "ja4": 100, "ja4h": 100,
}  # fmt: skip
_CLIENT_FIELDS = frozenset({*_CLIENT_TEXT, "header_order_sha256", "first_seen", "last_seen", "request_count"})
_SIGNATURE_FIELDS = frozenset(
    {
        "key_id", "window_start", "window_end", "minhash", "lsh_bands", "template_hmac", "simhash64",
        "capability_tags", "language", "sample_size",
    }
)  # fmt: skip
_TIMING_FIELDS = frozenset(
    {
        "window_start", "window_end", "method", "request_count", "iat_histogram", "hour_of_day_histogram",
        "median_iat_ms", "iat_cv", "max_concurrency", "release_switch_latency_h",
    }
)  # fmt: skip
_KEY_ID_WHAT = "a key id like mdx-2026q4"


@dataclass
class _Parsed:
    """One valid line: the account's columns and its attribute rows (without the account pk)."""

    account_id: str
    columns: dict
    identifiers: list[tuple] = field(default_factory=list)
    payments: list[tuple] = field(default_factory=list)
    ips: list[tuple] = field(default_factory=list)
    api_keys: list[tuple] = field(default_factory=list)
    clients: list[tuple] = field(default_factory=list)
    signatures: list[tuple[dict, list[str]]] = field(default_factory=list)  # (columns, band keys)
    timing: list[tuple] = field(default_factory=list)


def _parse_line(raw: str | bytes, keyring: Keyring) -> _Parsed | None:
    """Parse one line; None for a blank line. Raises _BadLine."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _BadLine("line is not valid UTF-8") from None
    raw = raw.lstrip("\ufeff")  # a BOM some editors put at the start of the file
    if not raw.strip():
        return None
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (json.JSONDecodeError, _BadLine) as exc:
        # json's message gives a position, never the content.
        raise _BadLine(f"not valid JSON: {exc}") from None
    account = _Fields(data, "", _ACCOUNT_FIELDS)
    account_id = account.text("account_id", required=True, max_length=200)
    country = account.country("signup_country")
    parsed = _Parsed(
        account_id=account_id,
        columns={
            "pseudonym": hashing.account_pseudonym(keyring.pseudonym_key, account_id),
            "created_at": account.timestamp("created_at", required=True),
            "status": account.text("status", max_length=20, choices=STATUSES),
            "tier": account.text("tier", max_length=40),
            "org_category": account.text("org_category", max_length=40, choices=ORG_CATEGORIES),
            "access_channel": account.text("access_channel", max_length=40),
            "signup_country": country,
        },
    )
    parsed.identifiers = _identifiers(account, keyring, country or None)
    parsed.payments = _payments(account, keyring)
    parsed.ips = [_ip(item) for item in account.objects("ips", _IP_FIELDS)]
    parsed.api_keys = [_api_key(item) for item in account.objects("api_keys", _API_KEY_FIELDS)]
    parsed.clients = [_client(item) for item in account.objects("clients", _CLIENT_FIELDS)]
    parsed.signatures = [_signature(item) for item in account.objects("prompt_signatures", _SIGNATURE_FIELDS)]
    parsed.timing = [_timing(item) for item in account.objects("timing", _TIMING_FIELDS)]
    return parsed


def _reject_constant(name: str) -> None:
    raise _BadLine(f"{name} is not a JSON number")


def _identifiers(account: _Fields, keyring: Keyring, default_region: str | None) -> list[tuple]:
    """Rows (identifier_type, key_id, value, normalization, first_seen, last_seen), deduplicated."""
    rows: dict[tuple[str, str, str], tuple] = {}
    for item in account.objects("identifiers", _IDENTIFIER_FIELDS):
        id_type = item.text("type", required=True, max_length=30, choices=IDENTIFIER_TYPES)
        seen = (item.timestamp("first_seen"), item.timestamp("last_seen"))
        if item.has("hmac"):
            if item.has("value") or item.has("region"):
                raise _BadLine(f"{item.path}: give either a raw value or a pre-hashed hmac, not both")
            key_id = item.key_id()
            value = item.hex64("hmac")
            hashed = [(id_type, key_id, value)]
        else:
            item.no_key_id()
            region = item.country("region")
            if region and id_type != "phone":
                raise _BadLine(f"{item.name('region')}: only applies to phone identifiers")
            raw = item.text("value", required=True, max_length=MAX_RAW_VALUE)
            hashed = _hash_raw_identifier(item, id_type, raw, region or default_region, keyring)
        for form_type, key_id, value in hashed:
            rows.setdefault(
                (form_type, key_id, value),
                (form_type, key_id, value, hashing.NORMALIZATIONS[form_type], *seen),
            )
    return list(rows.values())


def _hash_raw_identifier(
    item: _Fields, id_type: str, raw: str, region: str | None, keyring: Keyring
) -> list[tuple[str, str, str]]:
    """(type, key_id, hmac) under every key epoch the node holds (§3.2: during a rotation
    overlap members compute both the current and the previous epoch). An ``email`` also
    yields its ``email-canonical`` hash (§4.0)."""
    try:
        if id_type == "email":
            exact = hashing.normalize_email(raw)
            forms = [("email", exact), ("email-canonical", hashing.normalize_email_canonical(exact))]
        else:
            forms = [(id_type, hashing.normalize(id_type, raw, region=region))]
    except HashingError:
        # HashingError messages quote the input: never pass them on (raw PII).
        raise _BadLine(f"{item.name('value')}: {_invalid_identifier(id_type, region)}") from None
    return [
        (form_type, key_id, hashing.keyed_hash(key, form_type, normalised))
        for key_id, key in _epochs(keyring)
        for form_type, normalised in forms
    ]


def _invalid_identifier(id_type: str, region: str | None) -> str:
    if id_type in ("email", "email-canonical"):
        return "not a valid email address"
    if id_type == "phone":
        if region:
            return f"not a valid phone number for region {region}"
        return "not a valid phone number (no region: give region, signup_country or a +country code)"
    if id_type == "org-domain":
        return "not a registrable domain name"
    return f"not a valid {id_type}"


def _epochs(keyring: Keyring) -> list[tuple[str, bytes]]:
    """The current key first, then the other epochs still held."""
    return [(keyring.current, keyring.key())] + [
        (key_id, key) for key_id, key in keyring.keys.items() if key_id != keyring.current
    ]


def _payments(account: _Fields, keyring: Keyring) -> list[tuple]:
    """Rows (instrument_type, basis, key_id, value, card_iin, card_network, card_funding,
    is_virtual, issuer_country, first_used, last_used)."""
    rows = []
    for item in account.objects("payments", _PAYMENT_FIELDS):
        instrument = item.text("instrument_type", max_length=20, choices=INSTRUMENT_TYPES) or "card"
        basis = item.text("basis", max_length=20, choices=PAYMENT_BASES)
        raw_bases = [b for b in ("pan", "par") if item.has(b)]
        if item.has("hmac"):
            if raw_bases:
                raise _BadLine(f"{item.path}: give either a raw pan/par or a pre-hashed hmac, not both")
            if not basis:
                raise _BadLine(f"{item.name('basis')}: is required with hmac")
            key_id = item.key_id()
            hashed = [(basis, key_id, item.hex64("hmac"))]
        elif raw_bases:
            if basis and basis not in raw_bases:
                raise _BadLine(f"{item.name('basis')}: does not match the raw pan/par given")
            item.no_key_id()
            hashed = [row for b in raw_bases for row in _hash_card(item, b, keyring)]
        else:
            raise _BadLine(
                f"{item.path}: needs a pre-hashed hmac (with basis and key_id) or a raw pan or par"
            )
        facts = (
            item.text("card_iin", max_length=8, pattern=_IIN, what="6 to 8 digits"),
            item.text("card_network", max_length=30),
            item.text("card_funding", max_length=10, choices=CARD_FUNDING),
            item.boolean("is_virtual"),
            item.country("issuer_country"),
            item.timestamp("first_used"),
            item.timestamp("last_used"),
        )
        rows.extend((instrument, b, key_id, value, *facts) for b, key_id, value in hashed)
    return rows


def _hash_card(item: _Fields, basis: str, keyring: Keyring) -> list[tuple[str, str, str]]:
    raw = _check_text(item.data[basis], item, basis, MAX_RAW_VALUE)
    try:
        return [(basis, key_id, hashing.payment_hash(key, basis, raw)) for key_id, key in _epochs(keyring)]
    except HashingError:
        what = "PAN (12-19 digits, Luhn-valid)" if basis == "pan" else "PAR (29 letters or digits)"
        raise _BadLine(f"{item.name(basis)}: not a valid {what}") from None


@lru_cache(maxsize=16384)  # addresses repeat across accounts (NATs, proxies, shared egress)
def _canonical_ip(text: str) -> tuple[str, bytes, bytes] | None:
    """Canonical text (RFC 5952 for IPv6; a block keeps its prefix) and its 16-byte range
    (matching.plan.ip_to_range); None if ``text`` is neither an address nor a CIDR block."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:
        # ::ffff:a.b.c.d is the IPv4 address: store it as one, or it would not match IPv4 indicators.
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    canonical = str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
    low, high = ip_to_range(canonical)
    return canonical, low.to_bytes(16, "big"), high.to_bytes(16, "big")


def _ip(item: _Fields) -> tuple:
    """Row (ip, ip_low, ip_high, asn, proxy_type, is_signup, first_seen, last_seen, request_count)."""
    address = _canonical_ip(item.text("ip", required=True, max_length=50))
    if address is None:
        raise _BadLine(f"{item.name('ip')}: not an IP address or CIDR block")
    return (
        *address,
        item.integer("asn", maximum=MAX_ASN),
        item.text("proxy_type", max_length=30, choices=PROXY_TYPES),
        bool(item.boolean("signup")),
        item.timestamp("first_seen"),
        item.timestamp("last_seen"),
        item.integer("request_count", maximum=MAX_BIGINT),
    )


def _api_key(item: _Fields) -> tuple:
    """Row (key_sha256, created_at, last_used_at, revoked_at)."""
    if item.has("sha256") == item.has("key"):
        raise _BadLine(f"{item.path}: give exactly one of sha256 (pre-hashed) or key (raw)")
    if item.has("sha256"):
        fingerprint = item.hex64("sha256")
    else:
        fingerprint = hashing.api_key_fingerprint(item.text("key", max_length=MAX_RAW_VALUE))
    return (
        fingerprint,
        item.timestamp("created_at"),
        item.timestamp("last_used_at"),
        item.timestamp("revoked_at"),
    )


def _client(item: _Fields) -> tuple:
    """Row (user_agent, sdk_name, sdk_version, http_library, ja4, ja4h, header_order_sha256,
    first_seen, last_seen, request_count)."""
    texts = [item.text(key, max_length=limit) for key, limit in _CLIENT_TEXT.items()]
    header_order = item.hex64("header_order_sha256")
    if not any(texts) and not header_order:
        raise _BadLine(f"{item.path}: needs at least one of {', '.join(_CLIENT_TEXT)}, header_order_sha256")
    return (
        *texts,
        header_order,
        item.timestamp("first_seen"),
        item.timestamp("last_seen"),
        item.integer("request_count", maximum=MAX_BIGINT),
    )


def _signature(item: _Fields) -> tuple[dict, list[str]]:
    """Columns of an AccountPromptSignature and its LSH band keys (§3.3 mdx-prompt-v1)."""
    start, end = item.window()
    minhash = item.numbers("minhash", MINHASH_SIZE, maximum=2**32 - 1, required=True)
    expected = hashing.lsh_bands(minhash, b=LSH_BANDS, r=MINHASH_SIZE // LSH_BANDS)
    if item.has("lsh_bands"):
        bands = item.array("lsh_bands")
        if len(bands) != LSH_BANDS or not all(isinstance(b, str) and _BAND.fullmatch(b) for b in bands):
            raise _BadLine(f"{item.name('lsh_bands')}: must be {LSH_BANDS} strings 'NN:<16 hex>'")
        # The bands are derived from the MinHash; a mismatch means a different LSH (b, r) or a bug.
        if bands != expected:
            raise _BadLine(f"{item.name('lsh_bands')}: do not match minhash (b=16, r=8)")
    tags = item.array("capability_tags")
    columns = {
        "key_id": item.key_id(),
        "window_start": start,
        "window_end": end,
        "minhash": minhash,
        "template_hmac": item.hex64("template_hmac"),
        "simhash64": item.text(
            "simhash64", max_length=16, pattern=_HEX16, what="16 lowercase hex characters"
        ),
        "capability_tags": [_check_text(tag, item, "capability_tags", 60) for tag in tags],
        "language": item.text("language", max_length=20),
        "sample_size": item.integer("sample_size", maximum=MAX_INT),
    }
    return columns, expected


def _timing(item: _Fields) -> tuple:
    """Row in _TIMING_COLUMNS order (DOMAIN §4.2 histogram definition)."""
    start, end = item.window()
    return (
        start,
        end,
        item.text("method", max_length=40) or "mdx-iat-log2x16+hod24-v1",
        item.integer("request_count", maximum=MAX_INT, required=True),
        item.numbers("iat_histogram", IAT_BINS, required=True),
        item.numbers("hour_of_day_histogram", HOUR_BINS, required=True),
        item.number("median_iat_ms"),
        item.number("iat_cv"),
        item.integer("max_concurrency", maximum=MAX_INT),
        item.number("release_switch_latency_h"),
    )


# --- Writing a batch ----------------------------------------------------------------------------

_IDENTIFIER_COLUMNS = ("identifier_type", "key_id", "value", "normalization", "first_seen", "last_seen")
_PAYMENT_COLUMNS = (
    "instrument_type", "basis", "key_id", "value", "card_iin", "card_network", "card_funding",
    "is_virtual", "issuer_country", "first_used", "last_used",
)  # fmt: skip
_IP_COLUMNS = (
    "ip", "ip_low", "ip_high", "asn", "proxy_type", "is_signup", "first_seen", "last_seen", "request_count",
)  # fmt: skip
_API_KEY_COLUMNS = ("key_sha256", "created_at", "last_used_at", "revoked_at")
_CLIENT_COLUMNS = (
    "user_agent", "sdk_name", "sdk_version", "http_library", "ja4", "ja4h", "header_order_sha256",
    "first_seen", "last_seen", "request_count",
)  # fmt: skip
_TIMING_COLUMNS = (
    "window_start", "window_end", "method", "request_count", "iat_histogram", "hour_of_day_histogram",
    "median_iat_ms", "iat_cv", "max_concurrency", "release_switch_latency_h",
)  # fmt: skip
# (model, columns after account_id, the _Parsed attribute holding the rows)
_ATTRIBUTE_TABLES: tuple[tuple[type[models.Model], tuple[str, ...], str], ...] = (
    (AccountIdentifier, _IDENTIFIER_COLUMNS, "identifiers"),
    (AccountPayment, _PAYMENT_COLUMNS, "payments"),
    (AccountIp, _IP_COLUMNS, "ips"),
    (AccountApiKey, _API_KEY_COLUMNS, "api_keys"),
    (AccountClient, _CLIENT_COLUMNS, "clients"),
    (AccountTiming, _TIMING_COLUMNS, "timing"),
)
# Children before parents, so each delete is a single fast query.
_DELETE_ORDER = (AccountLshBand, AccountPromptSignature, *(table[0] for table in _ATTRIBUTE_TABLES))
_ACCOUNT_UPDATE_FIELDS = [
    "pseudonym", "created_at", "status", "tier", "org_category", "access_channel", "signup_country",
    "changed_at",
]  # fmt: skip


def _quoted(model: type[models.Model], columns: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """The quoted table name and column list of ``columns`` (field names or attnames)."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    return quote(model._meta.db_table), names


class _Writer:
    """Batch writes through the ORM and ``executemany``: portable (SQLite, tests)."""

    def existing(self, account_ids: list[str]) -> dict[str, int]:
        return dict(Account.objects.filter(account_id__in=account_ids).values_list("account_id", "pk"))

    def upsert(self, rows: list[dict]) -> dict[str, int]:
        """Insert or update accounts by account_id; returns account_id -> pk."""
        accounts = [Account(**row) for row in rows]
        Account.objects.bulk_create(
            accounts,
            update_conflicts=True,
            unique_fields=["account_id"],
            update_fields=_ACCOUNT_UPDATE_FIELDS,
        )
        return {a.account_id: a.pk for a in accounts}

    def delete(self, model: type[models.Model], account_pks: list[int]) -> None:
        model.objects.filter(account_id__in=account_pks).delete()

    def insert(self, model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        table, names = _quoted(model, columns)
        prepare = [model._meta.get_field(c).get_db_prep_save for c in columns]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})",
                [tuple(p(v, connection) for p, v in zip(prepare, row, strict=True)) for row in rows],
            )


class _PostgresWriter(_Writer):
    """The same writes with one array parameter per column and COPY: the ORM's per-value
    work and psycopg's conversion of thousands of placeholders dominate an import otherwise."""

    def existing(self, account_ids: list[str]) -> dict[str, int]:
        table, _ = _quoted(Account, [])
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT account_id, id FROM {table} WHERE account_id = ANY(%s::text[])", [account_ids]
            )
            return dict(cursor.fetchall())

    def upsert(self, rows: list[dict]) -> dict[str, int]:
        columns = ["account_id", *_ACCOUNT_UPDATE_FIELDS]
        table, names = _quoted(Account, columns)
        quote = connection.ops.quote_name
        arrays = [[row[c] for row in rows] for c in columns]
        types = ["timestamptz" if c in ("created_at", "changed_at") else "text" for c in columns]
        updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in _ACCOUNT_UPDATE_FIELDS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest("
                + ", ".join(f"%s::{t}[]" for t in types)
                + f") ON CONFLICT (account_id) DO UPDATE SET {updates} RETURNING account_id, id",
                arrays,
            )
            return dict(cursor.fetchall())

    def delete(self, model: type[models.Model], account_pks: list[int]) -> None:
        # Children are deleted before their parents (_DELETE_ORDER), so no cascade is needed.
        table, _ = _quoted(model, [])
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE account_id = ANY(%s::bigint[])", [account_pks])

    def insert(self, model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        table, names = _quoted(model, columns)
        json_columns = [
            i for i, c in enumerate(columns) if isinstance(model._meta.get_field(c), models.JSONField)
        ]
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                if json_columns:
                    row = list(row)
                    for i in json_columns:
                        row[i] = json.dumps(row[i])
                copy.write_row(row)


def _write_batch(writer: _Writer, batch: list[_Parsed], result: ImportResult) -> list[int]:
    """Upsert the accounts and replace their attribute rows, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        existing = writer.existing([p.account_id for p in batch])
        pk_of = writer.upsert([{"account_id": p.account_id, **p.columns, "changed_at": now} for p in batch])
        if existing:
            old = list(existing.values())
            for model in _DELETE_ORDER:
                writer.delete(model, old)
        pks = [pk_of[p.account_id] for p in batch]
        for model, columns, attribute in _ATTRIBUTE_TABLES:
            writer.insert(
                model,
                ("account_id", *columns),
                [(pk, *row) for pk, p in zip(pks, batch, strict=True) for row in getattr(p, attribute)],
            )
        _write_signatures(writer, pks, batch)
    result.imported += len(pks)
    result.updated += len(existing)
    result.created += len(pks) - len(existing)
    result.changed_account_pks.extend(pks)
    return pks


def _write_signatures(writer: _Writer, pks: list[int], batch: list[_Parsed]) -> None:
    signatures, bands = [], []
    for pk, parsed in zip(pks, batch, strict=True):
        for columns, keys in parsed.signatures:
            signatures.append(AccountPromptSignature(account_id=pk, **columns))
            bands.append(keys)
    if not signatures:
        return
    AccountPromptSignature.objects.bulk_create(signatures)  # few rows, and their pks are needed
    writer.insert(
        AccountLshBand,
        ("signature_id", "account_id", "band_key"),
        [(s.pk, s.account_id, key) for s, keys in zip(signatures, bands, strict=True) for key in keys],
    )


def _notify_changed(pks: list[int]) -> None:
    """Tell the matching engine (DOMAIN §4.5 match_incremental), if it is installed."""
    try:
        from indicators.tasks import accounts_changed
    except (ImportError, AttributeError):
        return
    accounts_changed(pks)


# --- The service --------------------------------------------------------------------------------


@dataclass
class _Chunk:
    """Parsed lines: a batch of distinct accounts, the bad lines among them, lines read so far."""

    batch: list[_Parsed]
    errors: list[tuple[int, str]]
    lines_read: int


def _chunks(lines: Iterable[str | bytes], keyring: Keyring, batch_size: int) -> Iterator[_Chunk]:
    batch: dict[str, _Parsed] = {}
    errors: list[tuple[int, str]] = []
    line_number = 0
    for line_number, raw in enumerate(lines, start=1):
        try:
            parsed = _parse_line(raw, keyring)
        except _BadLine as exc:
            errors.append((line_number, str(exc)))
            continue
        if parsed is None:
            continue
        if parsed.account_id in batch:
            # A later line for the same account replaces the earlier one: write them in order.
            yield _Chunk(list(batch.values()), errors, line_number - 1)
            batch, errors = {}, []
        batch[parsed.account_id] = parsed
        if len(batch) >= batch_size:
            yield _Chunk(list(batch.values()), errors, line_number)
            batch, errors = {}, []
    yield _Chunk(list(batch.values()), errors, line_number)


def _read_ahead(items: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """Produce ``items`` one step ahead in a thread, so parsing the next batch (pure Python)
    overlaps the database round trips of this one (the drivers release the GIL while they
    wait). The queue holds one chunk: memory stays constant. Exceptions reach the caller."""
    queue: Queue = Queue(maxsize=1)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((None, None))
        except BaseException as exc:  # re-raised in the consumer
            put((None, exc))

    thread = threading.Thread(target=produce, name="accounts-import-parse", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = queue.get()
            if exc is not None:
                raise exc
            if item is None:
                return
            yield item
    finally:
        stop.set()
        # Bounded: a producer blocked reading its input (an idle stdin) is a daemon thread
        # and must not hang a caller that is leaving on an exception.
        thread.join(timeout=1.0)


def accounts_import(
    lines: Iterable[str | bytes],
    *,
    keyring: Keyring | None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
) -> ImportResult:
    """Import §4.0 JSON Lines. Bad lines are reported as (line number, message) and skipped;
    the others are committed ``batch_size`` accounts at a time. A re-imported account keeps
    its pk, gets its attributes replaced and its ``changed_at`` bumped.

    ``progress`` is called with the number of lines read after each batch.
    """
    if keyring is None:
        raise AccountImportError(
            "this node has no keyring: set MDX_KEYRING or MDX_KEYRING_FILE to import accounts"
        )
    if batch_size < 1:
        raise AccountImportError("batch_size must be at least 1")
    result = ImportResult()
    writer = _PostgresWriter() if connection.vendor == "postgresql" else _Writer()
    for chunk in _read_ahead(_chunks(lines, keyring, batch_size)):
        result.errors.extend(chunk.errors)
        if chunk.batch:
            _notify_changed(_write_batch(writer, chunk.batch, result))
        if progress is not None:
            progress(chunk.lines_read)
    return result
