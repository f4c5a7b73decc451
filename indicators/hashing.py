"""Identifier normalisation and keyed hashing (DOMAIN.md §3.3, "Normalisation spec v1").

Pure Python, no Django: the importer, the matcher and the benchmarks all call it.

What is here:

* identifier normalisations ``mdx-email-v1``, ``mdx-email-canonical-v1``,
  ``mdx-phone-e164-v1``, ``mdx-domain-v1`` and ``raw`` (:data:`NORMALIZATIONS`);
* the keyed hash ``HMAC-SHA256(K_epoch, b"mdx:v1:" + type + b":" + normalised)`` as lowercase
  hex (:func:`keyed_hash`, :func:`hash_identifier`);
* the unkeyed API-key fingerprint, card hashes (PAN / PAR) and the node-private account
  pseudonym;
* the prompt signature pipeline ``mdx-prompt-v1``: normalisation, word 5-shingles, keyed
  MinHash, LSH band keys and the template HMAC;
* :class:`Keyring`, the node's key epochs.

Every failure raises :class:`HashingError` (a ``ValueError``) whose message names the bad
input, never key material.

Keyring JSON format (a file, or the same text in an environment variable)::

    {"current": "mdx-2026q4",
     "keys": {"mdx-2026q4": "<64 hex>", "mdx-2026q3": "<64 hex>"},
     "pseudonym_key": "<64 hex>"}

* ``keys`` maps a consortium key id (epoch) to its 32-byte key as 64 hex characters. Key ids
  match ``^[a-z0-9][a-z0-9._-]{0,63}$``. During a rotation overlap (DOMAIN.md §3.2) the
  previous epoch stays listed so members can match indicators hashed under either.
* ``current`` is the key id used for new hashes; it must be one of ``keys``.
* ``pseudonym_key`` is the node-private 32-byte key for account pseudonyms; it is never
  shared with the consortium.

Keyed MinHash compatibility: :func:`keyed_minhash` reproduces datasketch's ``"legacy"``
permutation scheme bit for bit (the only scheme before datasketch 2.0.0; from 2.0.0 on it
must be requested with ``MinHash(..., scheme="legacy")``, because 2.0.0 changed the default
to ``"affine32"``). The permutation parameters come from numpy's ``RandomState(seed)``; we
regenerate that MT19937 stream with the standard library, so neither numpy nor datasketch
is a dependency.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import random
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import idna
import phonenumbers

__all__ = [
    "NORMALIZATIONS",
    "HashingError",
    "Keyring",
    "account_pseudonym",
    "api_key_fingerprint",
    "hash_identifier",
    "jaccard_estimate",
    "keyed_hash",
    "keyed_minhash",
    "lsh_bands",
    "normalize",
    "normalize_domain",
    "normalize_email",
    "normalize_email_canonical",
    "normalize_phone",
    "normalize_prompt",
    "payment_hash",
    "phone_number_type",
    "shingles",
    "template_hmac",
]

#: identifier_type -> normalisation name (the ``normalization`` property of
#: ``mdx-hashed-identifier``, DOMAIN.md §1.7). ``raw`` values are hashed exactly as given.
NORMALIZATIONS: dict[str, str] = {
    "email": "mdx-email-v1",
    "email-canonical": "mdx-email-canonical-v1",
    "phone": "mdx-phone-e164-v1",
    "org-domain": "mdx-domain-v1",
    "account-id": "raw",
    "device-id": "raw",
    "oauth-subject": "raw",
    "api-key": "raw",
}

KEY_BYTES = 32
KEY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEX_KEY_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_HASH_PREFIX = b"mdx:v1:"


class HashingError(ValueError):
    """An identifier, key or keyring cannot be normalised or used."""


def _require_key(key: bytes, what: str = "key") -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise HashingError(f"{what} must be {KEY_BYTES} bytes, got {size}")


def _require_text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise HashingError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise HashingError(f"{what} is empty")
    return value


_SHA256_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


@lru_cache(maxsize=64)
def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after the inner and outer key pads of HMAC (RFC 2104)."""
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    block = key.ljust(_SHA256_BLOCK, b"\0")
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def _hmac_hex(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 as lowercase hex: exactly hmac.new(key, message, sha256).hexdigest().

    An import hashes a few identifiers per account with the same few keys: starting from the
    key's precomputed pad states costs a third of a fresh HMAC (two SHA-256 blocks less)."""
    if type(key) is not bytes:
        return hmac.digest(key, message, "sha256").hex()
    inner, outer = _hmac_pads(key)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


# --- Identifier normalisations (DOMAIN.md §3.3) -------------------------------------------


class _BadDomain(ValueError):
    """Why a domain has no A-label form; the caller names the input (HashingError)."""


# Pure and costly (UTS-46 tables, ~50 µs), while account imports repeat a few thousand
# domains millions of times. The cache key is the domain alone: keyed on the whole input
# (e.g. the e-mail address) it would never hit.
@functools.lru_cache(maxsize=65536)
def _a_label(domain: str) -> str:
    """Lowercase, strip one trailing dot and convert to A-labels with UTS-46 (§3.3 step 4)."""
    domain = domain.strip()
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain:
        raise _BadDomain("has an empty domain")
    try:
        # The `idna` package implements IDNA2008 with UTS-46 mapping (which also lowercases);
        # the stdlib "idna" codec is IDNA2003 and would disagree on e.g. "ß" (§3.3).
        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise _BadDomain(f"has an invalid domain {domain!r}: {exc}") from exc


def _a_label_domain(domain: str, what: str) -> str:
    try:
        return _a_label(domain)
    except _BadDomain as exc:
        raise HashingError(f"{what} {exc}") from exc.__cause__


def normalize_email(value: str) -> str:
    """``mdx-email-v1``: the exact mailbox, e.g. ``"  John.Smith+promo@GoogleMail.com "``
    -> ``"john.smith+promo@googlemail.com"``."""
    value = _require_text(value, "email")
    # Step 1: trim whitespace, Unicode NFC.
    text = unicodedata.normalize("NFC", value.strip())
    # Step 2: split on the last "@".
    local, at, domain = text.rpartition("@")
    if not at:
        raise HashingError(f"email {value!r} has no '@'")
    if not local:
        raise HashingError(f"email {value!r} has an empty local part")
    # Step 3: lowercase the local part. Step 4: lowercase + A-label the domain.
    try:
        a_label = _a_label(domain)
    except _BadDomain as exc:
        raise HashingError(f"email {value!r} {exc}") from exc.__cause__
    return f"{local.lower()}@{a_label}"


def normalize_email_canonical(value: str) -> str:
    """``mdx-email-canonical-v1``: the linking form, e.g. ``"Alice+x@Example.COM"`` ->
    ``"alice@example.com"`` and ``"John.Smith+promo@googlemail.com"`` ->
    ``"johnsmith@gmail.com"``."""
    local, _, domain = normalize_email(value).rpartition("@")
    # Step 1: drop everything from the first "+", for all domains.
    local = local.split("+", 1)[0]
    # Step 2: Gmail ignores dots, and googlemail.com is the same mailbox as gmail.com.
    # Steps 3-4: no other provider aliases are merged and "-" is kept.
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        raise HashingError(f"email {value!r} has an empty local part once canonicalised")
    return f"{local}@{domain}"


def _parse_phone(value: str, region: str | None) -> phonenumbers.PhoneNumber:
    value = _require_text(value, "phone")
    region_code = region.strip().upper() if region else None
    where = f"for region {region_code}" if region_code else "without a default region"
    try:
        # Step 1: libphonenumber, the account's billing or signup country as default region.
        number = phonenumbers.parse(value, region_code)
    except phonenumbers.NumberParseException as exc:
        raise HashingError(f"phone {value!r} cannot be parsed {where}: {exc}") from exc
    # Step 2: reject numbers that fail is_valid_number.
    if not phonenumbers.is_valid_number(number):
        raise HashingError(f"phone {value!r} is not a valid number {where}")
    return number


def normalize_phone(value: str, region: str | None = None) -> str:
    """``mdx-phone-e164-v1``: ``"020 7946 0018"`` (region ``GB``) -> ``"+442079460018"``.

    ``region`` is an ISO 3166-1 alpha-2 code; without it the number must start with ``+``.
    """
    # Step 3: format as E.164.
    return phonenumbers.format_number(_parse_phone(value, region), phonenumbers.PhoneNumberFormat.E164)


_PHONE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed-or-mobile",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll-free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}


def phone_number_type(value: str, region: str | None = None) -> str:
    """The number type kept as a local feature (§3.3 phone step 4): ``"mobile"``, ``"fixed"``,
    ``"voip"``, ... or ``"unknown"``. VoIP and virtual numbers are a farm signal."""
    return _PHONE_TYPES.get(phonenumbers.number_type(_parse_phone(value, region)), "unknown")


# Registrable domain = the label below the public suffix. We use a small rule: the suffix is
# the last label, or the last two labels when they are one of these well-known two-level
# public suffixes. This covers the organisation domains we expect (universities, labs,
# startups); a full Public Suffix List (e.g. the `publicsuffix2` data) is the production
# upgrade, and changing the rule changes hashes, so it would ship as mdx-domain-v2.
_TWO_LEVEL_SUFFIXES = frozenset(
    {
        "ac.uk", "co.uk", "gov.uk", "ltd.uk", "me.uk", "net.uk", "nhs.uk", "org.uk", "plc.uk", "sch.uk",
        "asn.au", "com.au", "edu.au", "gov.au", "id.au", "net.au", "org.au",
        "ac.nz", "co.nz", "govt.nz", "net.nz", "org.nz",
        "ac.jp", "co.jp", "go.jp", "ne.jp", "or.jp",
        "ac.kr", "co.kr", "or.kr",
        "ac.cn", "com.cn", "edu.cn", "gov.cn", "net.cn", "org.cn",
        "com.hk", "edu.hk", "org.hk",
        "com.tw", "edu.tw", "org.tw",
        "com.sg", "edu.sg", "org.sg",
        "ac.in", "co.in", "edu.in", "net.in", "org.in",
        "ac.il", "co.il", "org.il",
        "ac.za", "co.za", "org.za",
        "com.br", "edu.br", "org.br",
        "com.mx", "edu.mx", "org.mx",
        "com.tr", "edu.tr", "org.tr",
        "ac.at", "co.at", "or.at",
    }
)  # fmt: skip


def normalize_domain(value: str) -> str:
    """``mdx-domain-v1``: lowercase, A-label, registrable domain
    (``"CS.Example.EDU."`` -> ``"example.edu"``, ``"www.ox.ac.uk"`` -> ``"ox.ac.uk"``)."""
    value = _require_text(value, "domain")
    domain = _a_label_domain(unicodedata.normalize("NFC", value), f"domain {value!r}")
    labels = domain.split(".")
    if any(not label for label in labels):
        raise HashingError(f"domain {value!r} has an empty label")
    if labels[-1].isdigit():
        raise HashingError(f"domain {value!r} looks like an IP address, not a domain name")
    suffix_labels = 2 if ".".join(labels[-2:]) in _TWO_LEVEL_SUFFIXES else 1
    if len(labels) <= suffix_labels:
        raise HashingError(f"domain {value!r} is a public suffix, not a registrable domain")
    return ".".join(labels[-(suffix_labels + 1) :])


def _normalize_raw(identifier_type: str, value: str) -> str:
    # `raw` (DOMAIN.md §1.7): provider-issued ids are compared exactly, so nothing is changed.
    return _require_text(value, identifier_type)


def normalize(identifier_type: str, value: str, *, region: str | None = None) -> str:
    """Normalise ``value`` as :data:`NORMALIZATIONS` says for ``identifier_type``.

    ``region`` is only used for ``phone``.
    """
    normalization = NORMALIZATIONS.get(identifier_type)
    if normalization is None:
        raise HashingError(
            f"unknown identifier_type {identifier_type!r}; expected one of {sorted(NORMALIZATIONS)}"
        )
    if normalization == "mdx-email-v1":
        return normalize_email(value)
    if normalization == "mdx-email-canonical-v1":
        return normalize_email_canonical(value)
    if normalization == "mdx-phone-e164-v1":
        return normalize_phone(value, region)
    if normalization == "mdx-domain-v1":
        return normalize_domain(value)
    return _normalize_raw(identifier_type, value)


# --- Keyed hashes (DOMAIN.md §3.2-§3.3) ---------------------------------------------------


def keyed_hash(key: bytes, identifier_type: str, normalised: str) -> str:
    """``HMAC-SHA256(key, b"mdx:v1:" + identifier_type + b":" + normalised)``, lowercase hex.

    The type is inside the MAC input (domain separation, §3.2), so ``email`` and
    ``email-canonical`` of the same address, or a phone and an account id, never collide.
    ``normalised`` must already be normalised (see :func:`normalize`).
    """
    _require_key(key)
    if identifier_type not in NORMALIZATIONS:
        raise HashingError(
            f"unknown identifier_type {identifier_type!r}; expected one of {sorted(NORMALIZATIONS)}"
        )
    if identifier_type == "api-key":
        # §1.7: api-key is the only type with scheme sha256; a keyed API-key hash would never
        # match what the issuer shares.
        raise HashingError("identifier_type 'api-key' uses scheme sha256: use api_key_fingerprint()")
    _require_text(normalised, f"normalised {identifier_type}")
    return _hmac_hex(key, _HASH_PREFIX + f"{identifier_type}:{normalised}".encode())


def hash_identifier(identifier_type: str, value: str, *, key: bytes, region: str | None = None) -> str:
    """Normalise ``value`` and return its :func:`keyed_hash` under ``key``."""
    if identifier_type == "api-key":
        raise HashingError("identifier_type 'api-key' uses scheme sha256: use api_key_fingerprint()")
    return keyed_hash(key, identifier_type, normalize(identifier_type, value, region=region))


def api_key_fingerprint(api_key: str) -> str:
    """Unkeyed SHA-256 of the full API key, lowercase hex (§3.3 "API keys": the key's own
    entropy makes an unkeyed hash safe)."""
    _require_text(api_key, "api key")
    return hashlib.sha256(api_key.encode()).hexdigest()


_PAN_SEPARATORS_RE = re.compile(r"[ \-]")
_PAR_RE = re.compile(r"^[A-Z0-9]{29}$")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def payment_hash(key: bytes, basis: str, value: str) -> str:
    """``HMAC(key, "mdx:v1:<basis>:<value>")`` for ``mdx-payment-fingerprint`` (§3.3 "Cards").

    * ``pan``: spaces and hyphens are removed; the rest must be 12-19 digits and Luhn-valid.
      Compute this inside the PCI CDE or tokenisation vault only.
    * ``par``: the EMVCo Payment Account Reference, 29 letters or digits (uppercased).
    """
    _require_key(key)
    if basis not in ("pan", "par"):
        raise HashingError(f"unknown payment basis {basis!r}; expected 'pan' or 'par'")
    value = _require_text(value, basis)
    if basis == "pan":
        digits = _PAN_SEPARATORS_RE.sub("", value.strip())
        if not digits.isascii() or not digits.isdigit():
            raise HashingError("pan must contain only digits (spaces and hyphens are ignored)")
        if not 12 <= len(digits) <= 19:
            raise HashingError(f"pan must have 12-19 digits, got {len(digits)}")
        if not _luhn_valid(digits):
            # The PAN itself is never echoed into an error message.
            raise HashingError("pan fails the Luhn check")
        normalised = digits
    else:
        normalised = value.strip().upper()
        if not _PAR_RE.fullmatch(normalised):
            raise HashingError(f"par must be 29 letters or digits, got {len(normalised)} characters")
    return _hmac_hex(key, _HASH_PREFIX + f"{basis}:{normalised}".encode())


def account_pseudonym(private_key: bytes, account_id: str) -> str:
    """``HMAC(K_member_private, provider_account_id)`` hex (§3.3 "Account pseudonym"); only the
    originating member can resolve it."""
    _require_key(private_key, "pseudonym key")
    _require_text(account_id, "account id")
    return _hmac_hex(private_key, account_id.encode())


# --- Keyring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyring:
    """The node's key epochs (format in the module docstring). ``repr`` never shows keys."""

    keys: dict[str, bytes] = field(repr=False)
    current: str
    pseudonym_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise HashingError("keyring has no keys")
        for key_id, key in self.keys.items():
            if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
                raise HashingError(f"keyring key id {key_id!r} does not match {KEY_ID_RE.pattern}")
            _require_key(key, f"keyring key {key_id!r}")
        if self.current not in self.keys:
            raise HashingError(f"keyring current key id {self.current!r} is not in keys {sorted(self.keys)}")
        _require_key(self.pseudonym_key, "keyring pseudonym_key")

    def key(self, key_id: str | None = None) -> bytes:
        """The key for ``key_id``, or the current key when ``key_id`` is None."""
        key_id = self.current if key_id is None else key_id
        try:
            return self.keys[key_id]
        except KeyError:
            raise HashingError(f"unknown key id {key_id!r}; this node has {sorted(self.keys)}") from None

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse and validate the keyring JSON format."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise HashingError(f"keyring is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HashingError("keyring JSON must be an object with 'current', 'keys' and 'pseudonym_key'")
        expected = {"current", "keys", "pseudonym_key"}
        if missing := expected - data.keys():
            raise HashingError(f"keyring JSON is missing {sorted(missing)}")
        if unknown := data.keys() - expected:
            raise HashingError(f"keyring JSON has unknown fields {sorted(unknown)}")
        if not isinstance(data["keys"], dict):
            raise HashingError("keyring 'keys' must be an object mapping key id to 64 hex characters")
        if not isinstance(data["current"], str):
            raise HashingError("keyring 'current' must be a key id string")
        keys = {
            key_id: _parse_hex_key(hex_key, f"keyring key {key_id!r}")
            for key_id, hex_key in data["keys"].items()
        }
        return cls(
            keys=keys,
            current=data["current"],
            pseudonym_key=_parse_hex_key(data["pseudonym_key"], "keyring pseudonym_key"),
        )

    @classmethod
    def load(cls, *, path: str | None, inline: str | None) -> Keyring:
        """Load from a JSON file (``path``) or from the JSON text itself (``inline``, e.g. an
        environment variable); exactly one must be given."""
        if (path is None) == (inline is None):
            raise HashingError("give exactly one of a keyring file path or inline keyring JSON")
        if inline is not None:
            return cls.from_json(inline)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise HashingError(f"cannot read keyring file {path!r}: {exc.strerror}") from None
        return cls.from_json(text)

    @classmethod
    def development(cls) -> Keyring:
        """A fixed, PUBLIC keyring for `make run` demos only: its keys are in this source file."""
        return cls(
            keys={"mdx-dev-0": hashlib.sha256(b"mdx development keyring, not secret").digest()},
            current="mdx-dev-0",
            pseudonym_key=hashlib.sha256(b"mdx development pseudonym key, not secret").digest(),
        )

    @classmethod
    def for_tests(cls) -> Keyring:
        """The §3.3 test-vector keyring: ``mdx-test-0`` = 32 zero bytes; pseudonym key 32 x 0x01."""
        return cls(
            keys={"mdx-test-0": bytes(KEY_BYTES)}, current="mdx-test-0", pseudonym_key=b"\x01" * KEY_BYTES
        )


def _parse_hex_key(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX_KEY_RE.fullmatch(value):
        # Do not echo the value: it may be a (malformed) secret.
        raise HashingError(f"{what} must be 64 hex characters (32 bytes)")
    return bytes.fromhex(value)


# --- Prompt signatures: mdx-prompt-v1 (DOMAIN.md §3.3) ---------------------------------------

# Step 2 patterns, applied in this order to casefolded text so that a URL's digits or an
# email's domain are not masked piecemeal first.
_URL_RE = re.compile(r"(?:(?:https?|ftp)://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID_RE = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"
)
# Hex or base64 runs of 16+ characters. A run must contain a digit and a letter, so long
# ordinary words ("internationalisation") and long numbers (masked as <num>) are left alone.
_ID_RUN_RE = re.compile(
    r"(?<![\w+/])(?=[a-z0-9+/]*[0-9])(?=[a-z0-9+/]*[a-z])[a-z0-9+/]{16,}={0,2}(?![\w+/=])"
)
_NUMBER_RE = re.compile(r"(?<!\w)\d+(?:[.,]\d+)*(?!\w)")
_WHITESPACE_RE = re.compile(r"\s+")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

# Step 8: spans masked to <slot> before the template HMAC. Fenced code first, so its inner
# backticks and quotes are not matched separately. A single-quoted span must not start
# after a letter, so apostrophes ("don't") are not quotes.
_SLOT_RES = (
    re.compile(r"```.*?```", re.DOTALL),
    re.compile(r"`[^`\n]+`"),
    re.compile(r"\"[^\"\n]*\""),
    re.compile(r"“[^”\n]*”"),
    re.compile(r"‘[^’\n]*’"),
    re.compile(r"(?<!\w)'[^'\n]*'(?!\w)"),
)


def _prompt_text(text: str) -> str:
    """Steps 1-3 of mdx-prompt-v1: NFKC + casefold, mask, collapse whitespace."""
    if not isinstance(text, str):
        raise HashingError(f"prompt must be a string, got {type(text).__name__}")
    # Step 1.
    text = unicodedata.normalize("NFKC", text).casefold()
    # Step 2.
    text = _URL_RE.sub("<url>", text)
    text = _EMAIL_RE.sub("<email>", text)
    text = _UUID_RE.sub("<id>", text)
    text = _ID_RUN_RE.sub("<id>", text)
    text = _NUMBER_RE.sub("<num>", text)
    # Step 3.
    return _WHITESPACE_RE.sub(" ", text).strip()


def normalize_prompt(text: str) -> list[str]:
    """Steps 1-4 of mdx-prompt-v1: the prompt's tokens (``\\w+|[^\\w\\s]``).

    Mask placeholders tokenise like any text: ``"<url>"`` -> ``["<", "url", ">"]``.
    """
    # Step 4.
    return _TOKEN_RE.findall(_prompt_text(text))


def shingles(tokens: list[str], k: int = 5) -> set[str]:
    """Step 5: word k-shingles, each the tokens joined by one space. Fewer than ``k`` tokens
    give one shingle of all tokens; no tokens give the empty set."""
    if k < 1:
        raise HashingError(f"shingle size must be positive, got {k}")
    if not tokens:
        return set()
    if len(tokens) < k:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


_MERSENNE_61 = (1 << 61) - 1
_MASK_32 = (1 << 32) - 1
_MASK_64 = (1 << 64) - 1


def _numpy_random_state(seed: int) -> random.Random:
    """A stdlib MT19937 in the state of numpy's ``RandomState(seed)``.

    numpy seeds an integer with the reference ``init_genrand`` (Matsumoto-Nishimura 2002);
    Python's ``random.seed`` uses ``init_by_array`` instead, so we compute the init_genrand
    state and install it with ``setstate``. Position 624 makes the first draw regenerate
    the state block, as numpy does. Both are the same MT19937, so the 32-bit outputs agree.
    """
    if not 0 <= seed <= _MASK_32:
        raise HashingError(f"MinHash seed must be in [0, 2**32), got {seed}")
    state = [seed]
    for i in range(1, 624):
        previous = state[-1]
        state.append((1812433253 * (previous ^ (previous >> 30)) + i) & _MASK_32)
    generator = random.Random()
    generator.setstate((3, (*state, 624), None))
    return generator


def _randint_uint64(generator: random.Random, low: int, high: int) -> int:
    """``RandomState.randint(low, high, dtype=np.uint64)``: numpy's legacy masked rejection
    sampling over 64-bit draws, each the high 32-bit output then the low one."""
    span = high - 1 - low
    mask = (1 << span.bit_length()) - 1
    while True:
        draw = ((generator.getrandbits(32) << 32) | generator.getrandbits(32)) & mask
        if draw <= span:
            return low + draw


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[tuple[int, int], ...]:
    """datasketch legacy ``_init_permutations``: for each permutation, ``a`` in [1, p) then
    ``b`` in [0, p), p = 2^61 - 1, drawn alternately from ``RandomState(seed)``."""
    generator = _numpy_random_state(seed)
    return tuple(
        (_randint_uint64(generator, 1, _MERSENNE_61), _randint_uint64(generator, 0, _MERSENNE_61))
        for _ in range(num_perm)
    )


def keyed_minhash(key: bytes, shingle_set: set[str], num_perm: int = 128, seed: int = 1) -> list[int]:
    """Step 6: keyed MinHash, ``num_perm`` unsigned 32-bit values.

    Equal to ``datasketch.MinHash(num_perm, seed, hashfunc=h, scheme="legacy")`` updated with
    every shingle, where ``h(shingle)`` is the first 4 bytes, little-endian, of
    ``HMAC-SHA256(key, shingle)``.
    """
    _require_key(key)
    if num_perm < 1:
        raise HashingError(f"num_perm must be positive, got {num_perm}")
    if not shingle_set:
        raise HashingError("cannot compute a MinHash of an empty prompt (no shingles)")
    hashes = [
        int.from_bytes(hmac.new(key, shingle.encode(), hashlib.sha256).digest()[:4], "little")
        for shingle in shingle_set
    ]
    # datasketch computes a*h + b in numpy uint64, which wraps modulo 2^64 before the
    # "% p"; the mask reproduces that wrap so the values are bit-identical.
    return [
        min((((a * h + b) & _MASK_64) % _MERSENNE_61) & _MASK_32 for h in hashes)
        for a, b in _permutations(num_perm, seed)
    ]


def lsh_bands(minhash: list[int], b: int = 16, r: int = 8) -> list[str]:
    """Step 7: ``b`` band keys ``"%02d:" % i + sha256(pack("<8I", band)).hexdigest()[:16]``,
    band ``i`` being ``minhash[i*r:(i+1)*r]``."""
    if b < 1 or r < 1 or len(minhash) != b * r:
        raise HashingError(f"LSH with b={b}, r={r} needs {b * r} MinHash values, got {len(minhash)}")
    try:
        return [
            f"{i:02d}:"
            + hashlib.sha256(struct.pack(f"<{r}I", *minhash[i * r : (i + 1) * r])).hexdigest()[:16]
            for i in range(b)
        ]
    except struct.error as exc:
        raise HashingError(f"MinHash values must be unsigned 32-bit integers: {exc}") from None


def jaccard_estimate(a: list[int], b: list[int]) -> float:
    """The MinHash Jaccard estimate: the fraction of positions where the two sketches agree."""
    if len(a) != len(b) or not a:
        raise HashingError(f"cannot compare MinHash sketches of lengths {len(a)} and {len(b)}")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def template_hmac(key: bytes, text: str) -> str:
    """Step 8: HMAC-SHA256 (hex) of the prompt with quoted, backticked and code-fenced spans
    masked to ``<slot>``, then normalised by steps 1-3 so that templates differing only in
    case, whitespace, URLs, ids or numbers match."""
    _require_key(key)
    if not isinstance(text, str):
        raise HashingError(f"prompt must be a string, got {type(text).__name__}")
    for pattern in _SLOT_RES:
        text = pattern.sub("<slot>", text)
    template = _prompt_text(text)
    if not template:
        raise HashingError("cannot compute a template HMAC of an empty prompt")
    return _hmac_hex(key, template.encode())
