"""SCO dicts of the DOMAIN §1.7 types, with deterministic STIX 2.1 ids."""

from __future__ import annotations

import decimal
import ipaddress
import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from .records import (
    AccountRecord,
    ApiKeyRecord,
    ClientRecord,
    IdentifierRecord,
    IpRecord,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
)

# STIX 2.1 SCO deterministic identifiers: UUIDv5 in this namespace over the JCS
# (RFC 8785) serialisation of the ID contributing properties.
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

EXTENSION_IDS = {
    "mdx-hashed-identifier": "extension-definition--f269ee26-d797-48c8-bb27-c89e80861096",
    "mdx-payment-fingerprint": "extension-definition--b06d3d0d-1cb9-410b-8cdc-ba664dc3fe2e",
    "mdx-ai-account": "extension-definition--744616a0-5fc2-4979-8aba-20cd64b1763e",
    "mdx-prompt-signature": "extension-definition--f3e4a9e2-9808-48f3-b46d-582b8c0c80ca",
    "mdx-timing-fingerprint": "extension-definition--aeb58f68-6838-4cdc-a4c4-7032693e1a2c",
    "mdx-client-fingerprint": "extension-definition--b31d0363-5929-44da-966e-bedbe9d0e405",
}
IP_CONTEXT_EXTENSION = "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03"

ID_CONTRIB_PROPS = {
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "autonomous-system": ("number",),
    "mdx-hashed-identifier": ("identifier_type", "scheme", "key_id", "value"),
    "mdx-payment-fingerprint": ("instrument_type", "basis", "scheme", "key_id", "value"),
    "mdx-ai-account": ("account_pseudonym",),
    "mdx-prompt-signature": ("normalization", "key_id", "minhash", "template_hmac", "simhash64"),
    "mdx-timing-fingerprint": (
        "method",
        "window_start",
        "window_end",
        "iat_histogram",
        "hour_of_day_histogram",
    ),
    "mdx-client-fingerprint": ("user_agent", "sdk_name", "sdk_version", "ja4", "ja4h", "header_order_sha256"),
}

_INSTRUMENT_TYPES = {
    "pan": "card",
    "par": "card",
    "iban": "bank-account",
    "wallet-id": "wallet",
    "crypto-address": "crypto-address",
}


def canonical_json(value: Any) -> str:
    """RFC 8785 JSON canonicalisation for the JSON values SCOs hold (ASCII keys)."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{canonical_json(k)}:{canonical_json(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, float):
        return _es6_number(value)
    return json.dumps(value, ensure_ascii=False)


def sco_id(sco_type: str, props: dict[str, Any]) -> str:
    """`<type>--<uuid5>` over the ID contributing properties present in `props`."""
    contributing = {k: props[k] for k in ID_CONTRIB_PROPS[sco_type] if props.get(k) is not None}
    if not contributing:
        raise ValueError(f"{sco_type} has none of its ID contributing properties")
    return f"{sco_type}--{uuid.uuid5(SCO_NAMESPACE, canonical_json(contributing))}"


def stix_timestamp(moment: datetime) -> str:
    """STIX 2.1 timestamp text in UTC (`Z`), with a fraction only when there is one."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def identifier_sco(ident: IdentifierRecord) -> dict[str, Any]:
    # DOMAIN §1.7: `sha256` only for api-key, keyed HMAC otherwise.
    scheme = "sha256" if ident.type == "api-key" else "hmac-sha256"
    return _sco(
        "mdx-hashed-identifier",
        identifier_type=ident.type,
        scheme=scheme,
        key_id=ident.key_id,
        normalization=ident.normalization,
        value=ident.value,
    )


def api_key_sco(key: ApiKeyRecord) -> dict[str, Any]:
    return _sco(
        "mdx-hashed-identifier",
        identifier_type="api-key",
        scheme="sha256",
        normalization="raw",
        value=key.sha256,
    )


def payment_sco(payment: PaymentRecord) -> dict[str, Any]:
    return _sco(
        "mdx-payment-fingerprint",
        instrument_type=_INSTRUMENT_TYPES.get(payment.basis, "card"),
        basis=payment.basis,
        scheme="hmac-sha256",
        key_id=payment.key_id,
        value=payment.value,
        card_iin=payment.card_iin,
        card_network=payment.card_network,
        card_funding=payment.card_funding,
        is_virtual=payment.is_virtual,
        issuer_country=payment.issuer_country,
    )


def ip_sco(ip: IpRecord) -> dict[str, Any]:
    family = ipaddress.ip_network(ip.ip, strict=False).version
    sco_type = "ipv4-addr" if family == 4 else "ipv6-addr"
    props: dict[str, Any] = {
        "type": sco_type,
        "spec_version": "2.1",
        "id": sco_id(sco_type, {"value": ip.ip}),
        "value": ip.ip,
    }
    context = _present(proxy_type=ip.proxy_type, first_seen=_ts(ip.first_seen), last_seen=_ts(ip.last_seen))
    if context:
        props["extensions"] = {IP_CONTEXT_EXTENSION: {"extension_type": "property-extension", **context}}
    return props


def asn_sco(number: int) -> dict[str, Any]:
    return {
        "type": "autonomous-system",
        "spec_version": "2.1",
        "id": sco_id("autonomous-system", {"number": number}),
        "number": number,
    }


def client_sco(client: ClientRecord) -> dict[str, Any]:
    return _sco(
        "mdx-client-fingerprint",
        user_agent=client.user_agent,
        sdk_name=client.sdk_name,
        sdk_version=client.sdk_version,
        http_library=client.http_library,
        ja4=client.ja4,
        ja4h=client.ja4h,
        header_order_sha256=client.header_order_sha256,
    )


def prompt_signature_sco(sig: PromptSignatureRecord) -> dict[str, Any]:
    return _sco(
        "mdx-prompt-signature",
        normalization="mdx-prompt-v1",
        key_id=sig.key_id,
        shingling="word-5",
        num_perm=len(sig.minhash),
        minhash=list(sig.minhash),
        lsh_b=len(sig.lsh_bands),
        lsh_r=len(sig.minhash) // max(len(sig.lsh_bands), 1),
        lsh_bands=list(sig.lsh_bands),
        template_hmac=sig.template_hmac,
        simhash64=sig.simhash64,
        capability_tags=list(sig.capability_tags) or None,
        language=sig.language,
        sample_size=sig.sample_size,
    )


def timing_sco(window: TimingRecord) -> dict[str, Any]:
    return _sco(
        "mdx-timing-fingerprint",
        method="mdx-iat-log2x16+hod24-v1",
        window_start=_ts(window.window_start),
        window_end=_ts(window.window_end),
        request_count=window.request_count,
        iat_histogram=list(window.iat_histogram),
        hour_of_day_histogram=list(window.hour_of_day_histogram),
        median_iat_ms=window.median_iat_ms,
        iat_cv=window.iat_cv,
        max_concurrency=window.max_concurrency,
        release_switch_latency_h=window.release_switch_latency_h,
    )


def account_sco(account: AccountRecord, **refs: str | list[str] | None) -> dict[str, Any]:
    created_day = account.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # STIX 2.1 "list" type: a list property must not be empty, so absent references are omitted.
    present_refs = {k: v for k, v in refs.items() if v}
    return _sco(
        "mdx-ai-account",
        account_pseudonym=account.pseudonym,
        access_channel=account.access_channel,
        account_tier=account.tier,
        org_category=account.org_category,
        account_created=_ts(created_day),
        signup_country=account.signup_country,
        status=account.status,
        **present_refs,
    )


def _sco(sco_type: str, **props: Any) -> dict[str, Any]:
    present = _present(**props)
    return {
        "type": sco_type,
        "spec_version": "2.1",
        "id": sco_id(sco_type, present),
        **present,
        "extensions": {EXTENSION_IDS[sco_type]: {"extension_type": "new-sco"}},
    }


def _present(**props: Any) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else stix_timestamp(moment)


def _es6_number(number: float) -> str:
    # RFC 8785 §3.2.2.3 serialises numbers as ECMAScript's Number.prototype.toString,
    # from the shortest round-tripping digits (which is what repr() finds).
    if math.isnan(number) or math.isinf(number):
        raise ValueError("JSON has no NaN or Infinity")
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    exact = decimal.Decimal(repr(abs(number))).normalize()
    _, digit_tuple, exponent = exact.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    point = k + exponent  # value = 0.<digits> x 10^point
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    shown = point - 1
    body = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{body}e{'+' if shown >= 0 else '-'}{abs(shown)}"
