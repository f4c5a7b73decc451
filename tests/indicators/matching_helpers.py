"""Shared by the matching tests: store AccountRecords in the §4.1 tables, publish indicators."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from django.utils import timezone

from indicators.matching import AccountRecord, ip_to_range
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


def oracle_harness():
    """tests/matching/oracle_harness.py (seeded accounts and patterns), importable from any folder."""
    if "oracle_harness" in sys.modules:
        return sys.modules["oracle_harness"]
    path = Path(__file__).parents[1] / "matching" / "oracle_harness.py"
    spec = importlib.util.spec_from_file_location("oracle_harness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["oracle_harness"] = module
    spec.loader.exec_module(module)
    return module


def records_store(records: list[AccountRecord], prefix: str = "acct") -> list[int]:
    """Insert records as accounts; returns their pks in order."""
    now = timezone.now()
    accounts = Account.objects.bulk_create(
        [
            Account(
                account_id=f"{prefix}-{i}",
                pseudonym=r.pseudonym,
                created_at=r.created_at,
                status=r.status or "",
                tier=r.tier or "",
                org_category=r.org_category or "",
                access_channel=r.access_channel or "",
                signup_country=r.signup_country or "",
                changed_at=now,
            )
            for i, r in enumerate(records)
        ]
    )
    if accounts[0].pk is None:  # backends that do not return pks from bulk inserts
        accounts = list(Account.objects.filter(account_id__startswith=f"{prefix}-").order_by("pk"))
    ids, pays, ips, keys, clients, timing = [], [], [], [], [], []
    sigs, sig_bands = [], []
    for account, r in zip(accounts, records, strict=True):
        for i in r.identifiers:
            ids.append(
                AccountIdentifier(
                    account=account,
                    identifier_type=i.type,
                    key_id=i.key_id or "",
                    value=i.value,
                    normalization=i.normalization,
                    first_seen=i.first_seen,
                    last_seen=i.last_seen,
                )
            )
        for p in r.payments:
            pays.append(
                AccountPayment(
                    account=account,
                    basis=p.basis,
                    key_id=p.key_id,
                    value=p.value,
                    card_iin=p.card_iin or "",
                    card_network=p.card_network or "",
                    card_funding=p.card_funding or "",
                    is_virtual=p.is_virtual,
                    issuer_country=p.issuer_country or "",
                    first_used=p.first_used,
                    last_used=p.last_used,
                )
            )
        for ip in r.ips:
            low, high = ip_to_range(ip.ip)
            ips.append(
                AccountIp(
                    account=account,
                    ip=ip.ip,
                    ip_low=low.to_bytes(16, "big"),
                    ip_high=high.to_bytes(16, "big"),
                    asn=ip.asn,
                    proxy_type=ip.proxy_type or "",
                    is_signup=ip.signup,
                    first_seen=ip.first_seen,
                    last_seen=ip.last_seen,
                )
            )
        for k in r.api_keys:
            keys.append(
                AccountApiKey(
                    account=account, key_sha256=k.sha256, created_at=k.created_at, last_used_at=k.last_used_at
                )
            )
        for c in r.clients:
            clients.append(
                AccountClient(
                    account=account,
                    user_agent=c.user_agent or "",
                    sdk_name=c.sdk_name or "",
                    sdk_version=c.sdk_version or "",
                    http_library=c.http_library or "",
                    ja4=c.ja4 or "",
                    ja4h=c.ja4h or "",
                    header_order_sha256=c.header_order_sha256 or "",
                    first_seen=c.first_seen,
                    last_seen=c.last_seen,
                )
            )
        for s in r.prompt_signatures:
            sigs.append(
                AccountPromptSignature(
                    account=account,
                    key_id=s.key_id,
                    window_start=s.window_start,
                    window_end=s.window_end,
                    minhash=list(s.minhash),
                    template_hmac=s.template_hmac,
                    simhash64=s.simhash64 or "",
                    capability_tags=list(s.capability_tags),
                    language=s.language or "",
                    sample_size=s.sample_size,
                )
            )
            sig_bands.append(s.lsh_bands)
        for t in r.timing:
            timing.append(
                AccountTiming(
                    account=account,
                    window_start=t.window_start,
                    window_end=t.window_end,
                    request_count=t.request_count,
                    iat_histogram=list(t.iat_histogram),
                    hour_of_day_histogram=list(t.hour_of_day_histogram),
                    median_iat_ms=t.median_iat_ms,
                    iat_cv=t.iat_cv,
                    max_concurrency=t.max_concurrency,
                )
            )
    for model, rows in (
        (AccountIdentifier, ids),
        (AccountPayment, pays),
        (AccountIp, ips),
        (AccountApiKey, keys),
        (AccountClient, clients),
        (AccountTiming, timing),
    ):
        model.objects.bulk_create(rows, batch_size=500)
    for sig, bands in zip(
        AccountPromptSignature.objects.bulk_create(sigs, batch_size=500), sig_bands, strict=True
    ):
        AccountLshBand.objects.bulk_create(
            [AccountLshBand(signature=sig, account_id=sig.account_id, band_key=b) for b in bands]
        )
    return [a.pk for a in accounts]


def publish_indicators(objects: list[dict]):
    """Store and publish indicators (and SCOs) into a matching test collection; returns the versions."""
    from sharing.models import Collection
    from sharing.services import objects_publish

    collection = Collection.objects.filter(title="Matching tests").first() or Collection.objects.create(
        title="Matching tests"
    )
    stored, problems = objects_publish(collection=collection, objects=objects)
    assert not problems, problems
    return stored
