"""The fast path of line parsing: the same checks as ``lines``, inlined for the usual shapes."""

from __future__ import annotations

import re
from datetime import datetime

from indicators import hashing
from indicators.accounts.lines import (
    _ACCOUNT_FIELDS,
    _API_KEY_FIELDS,
    _CLIENT_FIELDS,
    _COUNTRY,
    _HEX64,
    _IDENTIFIER_FIELDS,
    _IIN,
    _IP_FIELDS,
    _PAYMENT_FIELDS,
    CARD_FUNDING,
    IDENTIFIER_TYPES,
    INSTRUMENT_TYPES,
    MAX_ASN,
    MAX_BIGINT,
    MAX_RAW_VALUE,
    ORG_CATEGORIES,
    PAYMENT_BASES,
    PROXY_TYPES,
    STATUSES,
    _canonical_ip,
    _Keys,
    _Parsed,
)
from indicators.hashing import HashingError

# --- Fast path ----------------------------------------------------------------------------------
# The same checks as above, inlined for the usual shapes of a line. Anything unusual (a bad or
# non-ASCII value, a prompt signature, a timing window, a value the hashing rejects, ...)
# raises _Slow and the line goes through the careful path, which names the bad field. So this
# path only has to be right about what it accepts: exactly what the careful path accepts,
# giving the same rows (tests/indicators/test_accounts_import.py compares the two).


class _Slow(Exception):
    """The fast path does not handle this line."""


_NOTHING = (None, [])  # an absent or empty list


def _f_text(value: object, max_length: int) -> str:
    """Optional free text (an absent or empty value is "")."""
    if value is None or value == "":
        return ""
    if (
        type(value) is str
        and len(value) <= max_length
        and value.isascii()  # so it encodes; other text goes the careful way
        and "\x00" not in value
        and not value.isspace()
    ):
        return value
    raise _Slow


def _f_pattern(value: object, pattern: re.Pattern) -> str:
    """Optional text matching ``pattern`` ("" if absent)."""
    if value is None or value == "":
        return ""
    if type(value) is str and pattern.fullmatch(value):
        return value
    raise _Slow


def _f_choice(value: object, choices: tuple[str, ...]) -> str:
    if value is None or value == "":
        return ""
    if type(value) is str and value in choices:
        return value
    raise _Slow


def _f_key_id(value: object) -> str:
    if type(value) is str and hashing.KEY_ID_RE.fullmatch(value):
        return value
    raise _Slow


def _f_hex64(value: object) -> str:
    """A required 64-hex value (hmac, sha256)."""
    if type(value) is str and _HEX64.fullmatch(value):
        return value
    raise _Slow


def _f_time(value: object) -> datetime | None:
    if value is None:
        return None
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _Slow from None
        if parsed.tzinfo is not None:
            return parsed
    raise _Slow


def _f_int(value: object, maximum: int) -> int | None:
    if value is None or (type(value) is int and 0 <= value <= maximum):
        return value
    raise _Slow


def _f_bool(value: object) -> bool | None:
    if value is None or value is True or value is False:
        return value
    raise _Slow


def _f_objects(value: object, allowed: frozenset[str]) -> list[dict]:
    if value is None:
        return []
    if type(value) is not list:
        raise _Slow
    for item in value:
        if type(item) is not dict or not allowed.issuperset(item):
            raise _Slow
    return value


def _parse_fast(data: object, keys: _Keys) -> _Parsed:
    """:func:`_parse_careful` for the usual lines; raises _Slow for anything else."""
    if type(data) is not dict or not _ACCOUNT_FIELDS.issuperset(data):
        raise _Slow
    get = data.get
    if get("prompt_signatures") not in _NOTHING or get("timing") not in _NOTHING:
        raise _Slow
    account_id = _f_text(get("account_id"), 200)
    created_at = _f_time(get("created_at"))
    if not account_id or created_at is None:
        raise _Slow
    country = _f_pattern(get("signup_country"), _COUNTRY).upper()
    epochs = keys.epochs
    try:
        columns = (
            hashing.account_pseudonym(keys.pseudonym_key, account_id),
            created_at,
            _f_choice(get("status"), STATUSES),
            _f_text(get("tier"), 40),
            _f_choice(get("org_category"), ORG_CATEGORIES),
            _f_text(get("access_channel"), 40),
            country,
        )
        identifiers = _f_identifiers(get("identifiers"), epochs, country or None)
        payments = _f_payments(get("payments"), epochs)
    except HashingError:
        raise _Slow from None
    ips = []
    for item in _f_objects(get("ips"), _IP_FIELDS):
        address = _canonical_ip(_f_text(item.get("ip"), 50))
        if address is None:
            raise _Slow
        ips.append(
            (
                *address,
                _f_int(item.get("asn"), MAX_ASN),
                _f_choice(item.get("proxy_type"), PROXY_TYPES),
                bool(_f_bool(item.get("signup"))),
                _f_time(item.get("first_seen")),
                _f_time(item.get("last_seen")),
                _f_int(item.get("request_count"), MAX_BIGINT),
            )
        )
    api_keys = []
    for item in _f_objects(get("api_keys"), _API_KEY_FIELDS):
        sha256, key = item.get("sha256"), item.get("key")
        if sha256 is not None and key is None:
            fingerprint = _f_hex64(sha256)
        elif key is not None and sha256 is None and (key := _f_text(key, MAX_RAW_VALUE)):
            fingerprint = hashing.api_key_fingerprint(key)
        else:
            raise _Slow
        api_keys.append(
            (
                fingerprint,
                _f_time(item.get("created_at")),
                _f_time(item.get("last_used_at")),
                _f_time(item.get("revoked_at")),
            )
        )
    clients = []
    for item in _f_objects(get("clients"), _CLIENT_FIELDS):
        iget = item.get
        row = (
            _f_text(iget("user_agent"), 500),
            _f_text(iget("sdk_name"), 100),
            _f_text(iget("sdk_version"), 50),
            _f_text(iget("http_library"), 100),
            _f_text(iget("ja4"), 100),
            _f_text(iget("ja4h"), 100),
            _f_pattern(iget("header_order_sha256"), _HEX64),
            _f_time(iget("first_seen")),
            _f_time(iget("last_seen")),
            _f_int(iget("request_count"), MAX_BIGINT),
        )
        if not any(row[:7]):
            raise _Slow
        clients.append(row)
    return _Parsed(
        account_id,
        columns,
        tuple(identifiers),
        tuple(payments),
        tuple(ips),
        tuple(api_keys),
        tuple(clients),
        (),
        (),
    )


def _f_identifiers(value: object, epochs: tuple, default_region: str | None) -> list[tuple]:
    rows: dict[tuple[str, str, str], tuple] = {}
    for item in _f_objects(value, _IDENTIFIER_FIELDS):
        get = item.get
        id_type = get("type")
        if type(id_type) is not str or id_type not in IDENTIFIER_TYPES:
            raise _Slow
        seen = (_f_time(get("first_seen")), _f_time(get("last_seen")))
        if (hmac := get("hmac")) is not None:
            if get("value") is not None or get("region") is not None:
                raise _Slow
            hashed: list | tuple = ((id_type, _f_key_id(get("key_id")), _f_hex64(hmac)),)
        else:
            if get("key_id") is not None:
                raise _Slow
            region = _f_pattern(get("region"), _COUNTRY).upper()
            raw = _f_text(get("value"), MAX_RAW_VALUE)
            if (region and id_type != "phone") or not raw:
                raise _Slow
            if id_type == "email":
                exact = hashing.normalize_email(raw)
                forms: tuple = (
                    ("email", exact),
                    ("email-canonical", hashing.normalize_email_canonical(exact)),
                )
            else:
                forms = ((id_type, hashing.normalize(id_type, raw, region=region or default_region)),)
            hashed = [
                (form_type, key_id, hashing.keyed_hash(key, form_type, normalised))
                for key_id, key in epochs
                for form_type, normalised in forms
            ]
        for form_type, key_id, hashed_value in hashed:
            if (form_type, key_id, hashed_value) not in rows:
                rows[form_type, key_id, hashed_value] = (
                    form_type,
                    key_id,
                    hashed_value,
                    hashing.NORMALIZATIONS[form_type],
                    *seen,
                )
    return list(rows.values())


def _f_payments(value: object, epochs: tuple) -> list[tuple]:
    rows = []
    for item in _f_objects(value, _PAYMENT_FIELDS):
        get = item.get
        instrument = _f_choice(get("instrument_type"), INSTRUMENT_TYPES) or "card"
        basis = _f_choice(get("basis"), PAYMENT_BASES)
        raw_bases = [b for b in ("pan", "par") if get(b) is not None]
        if (hmac := get("hmac")) is not None:
            if raw_bases or not basis:
                raise _Slow
            hashed: list | tuple = ((basis, _f_key_id(get("key_id")), _f_hex64(hmac)),)
        elif raw_bases:
            if (basis and basis not in raw_bases) or get("key_id") is not None:
                raise _Slow
            hashed = []
            for b in raw_bases:
                if not (raw := _f_text(get(b), MAX_RAW_VALUE)):
                    raise _Slow
                hashed.extend((b, key_id, hashing.payment_hash(key, b, raw)) for key_id, key in epochs)
        else:
            raise _Slow
        facts = (
            _f_pattern(get("card_iin"), _IIN),
            _f_text(get("card_network"), 30),
            _f_choice(get("card_funding"), CARD_FUNDING),
            _f_bool(get("is_virtual")),
            _f_pattern(get("issuer_country"), _COUNTRY).upper(),
            _f_time(get("first_used")),
            _f_time(get("last_used")),
        )
        rows.extend((instrument, b, key_id, hashed_value, *facts) for b, key_id, hashed_value in hashed)
    return rows
