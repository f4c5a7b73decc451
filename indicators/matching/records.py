"""Local account data as read from the §4.1 tables (values already normalised and keyed-hashed)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class IdentifierRecord:
    """account_identifiers: one keyed hash of an identifier (DOMAIN §3.3)."""

    type: str
    key_id: str | None
    value: str
    normalization: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None


@dataclass(frozen=True)
class PaymentRecord:
    """payment_instruments: a keyed hash of a PAN/PAR/IBAN/wallet plus coarse card facts."""

    basis: str
    key_id: str
    value: str
    card_iin: str | None = None
    card_network: str | None = None
    card_funding: str | None = None
    is_virtual: bool | None = None
    issuer_country: str | None = None
    first_used: datetime | None = None
    last_used: datetime | None = None


@dataclass(frozen=True)
class IpRecord:
    """account_ips: an address (or CIDR block) the account used; `signup` marks the signup IP."""

    ip: str
    asn: int | None = None
    proxy_type: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    signup: bool = False

    def merged_with(self, other: IpRecord) -> IpRecord:
        """Two rows for the same address as one: widest times, first known ASN and proxy type."""
        return replace(
            self,
            asn=self.asn if self.asn is not None else other.asn,
            proxy_type=self.proxy_type or other.proxy_type,
            first_seen=_earliest(self.first_seen, other.first_seen),
            last_seen=_latest(self.last_seen, other.last_seen),
            signup=self.signup or other.signup,
        )


@dataclass(frozen=True)
class ApiKeyRecord:
    """api_keys: SHA-256 of an API key (hex)."""

    sha256: str
    created_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class ClientRecord:
    """client_fingerprints: one client/TLS/HTTP fingerprint tuple."""

    user_agent: str | None = None
    sdk_name: str | None = None
    sdk_version: str | None = None
    http_library: str | None = None
    ja4: str | None = None
    ja4h: str | None = None
    header_order_sha256: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None


@dataclass(frozen=True)
class PromptSignatureRecord:
    """prompt_sketches + prompt_lsh_bands: one weekly MinHash sketch of the account's prompts."""

    key_id: str
    window_start: datetime
    window_end: datetime
    minhash: tuple[int, ...]
    lsh_bands: tuple[str, ...]
    template_hmac: str
    simhash64: str | None = None
    capability_tags: tuple[str, ...] = ()
    language: str | None = None
    sample_size: int | None = None


@dataclass(frozen=True)
class TimingRecord:
    """timing_profiles: request-timing histograms over one window (DOMAIN §4.2)."""

    window_start: datetime
    window_end: datetime
    request_count: int
    iat_histogram: tuple[float, ...]
    hour_of_day_histogram: tuple[float, ...]
    median_iat_ms: float | None = None
    iat_cv: float | None = None
    max_concurrency: int | None = None
    release_switch_latency_h: float | None = None


@dataclass(frozen=True)
class AccountRecord:
    """accounts row plus its attribute rows; `pseudonym` is the provider-keyed HMAC (hex)."""

    pseudonym: str
    created_at: datetime
    status: str | None = None
    tier: str | None = None
    org_category: str | None = None
    access_channel: str | None = None
    signup_country: str | None = None
    identifiers: tuple[IdentifierRecord, ...] = ()
    payments: tuple[PaymentRecord, ...] = ()
    ips: tuple[IpRecord, ...] = ()
    api_keys: tuple[ApiKeyRecord, ...] = ()
    clients: tuple[ClientRecord, ...] = ()
    prompt_signatures: tuple[PromptSignatureRecord, ...] = ()
    timing: tuple[TimingRecord, ...] = ()


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
