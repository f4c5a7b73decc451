"""Account lines (DOMAIN.md §4.0): field-by-field validation of one JSON line into rows.

The careful path: it accepts exactly the valid lines and names the bad field of the others.
Raw identifier values are never stored and never appear in a message (it names the field).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from indicators import hashing
from indicators.hashing import HashingError, Keyring

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

_IPV4_MAPPED = 0xFFFF << 32  # IPv4 in ::ffff:0:0/96, as indicators.matching.plan.ip_to_range
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


# Account columns written by the importer, in _Parsed.columns order.
_ACCOUNT_COLUMNS = (
    "pseudonym", "created_at", "status", "tier", "org_category", "access_channel", "signup_country",
)  # fmt: skip


@dataclass(slots=True)
class _Parsed:
    """One valid line: the account's columns and its attribute rows (without the account pk)."""

    # Tuples, not lists: a tuple of immutable values is untracked by the cyclic garbage collector
    # once it has seen it, so the batches waiting to be written do not make collections slower.
    account_id: str
    columns: tuple  # _ACCOUNT_COLUMNS order
    identifiers: tuple[tuple, ...] = ()
    payments: tuple[tuple, ...] = ()
    ips: tuple[tuple, ...] = ()
    api_keys: tuple[tuple, ...] = ()
    clients: tuple[tuple, ...] = ()
    signatures: tuple[tuple[dict, list[str]], ...] = ()  # (columns, band keys)
    timing: tuple[tuple, ...] = ()


@dataclass(frozen=True, slots=True)
class _Keys:
    """The keyring as the hot path uses it: epochs in hashing order, the pseudonym key."""

    epochs: tuple[tuple[str, bytes], ...]
    pseudonym_key: bytes

    @classmethod
    def of(cls, keyring: Keyring) -> _Keys:
        return cls(tuple(_epochs(keyring)), keyring.pseudonym_key)


def _parse_careful(raw: str | bytes, keyring: Keyring) -> _Parsed | None:
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
        columns=(
            hashing.account_pseudonym(keyring.pseudonym_key, account_id),
            account.timestamp("created_at", required=True),
            account.text("status", max_length=20, choices=STATUSES),
            account.text("tier", max_length=40),
            account.text("org_category", max_length=40, choices=ORG_CATEGORIES),
            account.text("access_channel", max_length=40),
            country,
        ),
    )
    parsed.identifiers = tuple(_identifiers(account, keyring, country or None))
    parsed.payments = tuple(_payments(account, keyring))
    parsed.ips = tuple(_ip(item) for item in account.objects("ips", _IP_FIELDS))
    parsed.api_keys = tuple(_api_key(item) for item in account.objects("api_keys", _API_KEY_FIELDS))
    parsed.clients = tuple(_client(item) for item in account.objects("clients", _CLIENT_FIELDS))
    parsed.signatures = tuple(
        _signature(item) for item in account.objects("prompt_signatures", _SIGNATURE_FIELDS)
    )
    parsed.timing = tuple(_timing(item) for item in account.objects("timing", _TIMING_FIELDS))
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


def _ntop_is_rfc5952() -> bool:
    """Whether this C library's inet_ntop writes IPv6 as ipaddress does (RFC 5952; glibc does)."""
    samples = ("2001:db8::1", "2001:db8:0:1:1:1:1:1", "2001:0:0:1::1", "1::", "::", "::1", "fe80::abcd:0:0:1")
    try:
        return all(socket.inet_ntop(socket.AF_INET6, ipaddress.IPv6Address(s).packed) == s for s in samples)
    except (OSError, ValueError, AttributeError):
        return False


_NTOP_RFC5952 = _ntop_is_rfc5952()


def _ipv6_text(address: ipaddress.IPv6Address) -> str:
    """str(address), about 20x cheaper: ipaddress formats in Python, inet_ntop in C."""
    if _NTOP_RFC5952 and address.scope_id is None:
        text = socket.inet_ntop(socket.AF_INET6, address.packed)
        if "." not in text:  # inet_ntop writes IPv4-compatible forms as ::a.b.c.d, ipaddress does not
            return text
    return str(address)


@lru_cache(maxsize=16384)  # addresses repeat across accounts (NATs, proxies, shared egress)
def _canonical_ip(text: str) -> tuple[str, bytes, bytes] | None:
    """Canonical text (RFC 5952 for IPv6; a block keeps its prefix) and its 16-byte range
    (as matching.plan.ip_to_range of that text); None if ``text`` is neither an address nor a
    CIDR block."""
    text = text.strip()
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
        else:
            # Without a prefix ip_network accepts exactly what ip_address accepts and gives the
            # /32 or /128 of it: parsing the address alone costs a third (IPv6 parsing is slow
            # and signup addresses are mostly unique).
            address = ipaddress.ip_address(text)
            network = None
    except ValueError:
        return None
    if network is None:
        mapped = address.ipv4_mapped if address.version == 6 else None
        if mapped is not None:
            address = mapped  # ::ffff:a.b.c.d is the IPv4 address (see below)
        offset = _IPV4_MAPPED if address.version == 4 else 0
        low = high = offset + int(address)
        canonical = _ipv6_text(address) if offset == 0 else str(address)
    else:
        mapped = network.network_address.ipv4_mapped if network.version == 6 else None
        if mapped is not None and network.prefixlen >= 96:
            # ::ffff:a.b.c.d is the IPv4 address: store it as one, or it would not match IPv4 indicators.
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        if network.prefixlen == network.max_prefixlen:
            canonical = str(network.network_address)
        else:
            canonical = str(network)
        offset = _IPV4_MAPPED if network.version == 4 else 0
        low, high = offset + int(network.network_address), offset + int(network.broadcast_address)
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
        try:
            fingerprint = hashing.api_key_fingerprint(item.text("key", max_length=MAX_RAW_VALUE))
        except HashingError as exc:  # e.g. an empty key: this line is bad, the import goes on
            raise _BadLine(f"{item.name('key')}: {exc}") from None
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
