#!/usr/bin/env python
"""Local matching benchmark: account import, one new indicator, a 10,000-indicator retro-hunt, oracle check.

PostgreSQL, one worker (the jobs run one after another in this process, as a `-P solo` worker
would run them). Creates (and drops) its own database. Targets are printed next to the results.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/match_bench.py
        [--accounts 1000000] [--indicators 10000] [--single 20] [--oracle-indicators 100]
        [--oracle-accounts 300] [--account-chunk 250000] [--keep] [--only-import]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"import": 10_000, "single_ms": 50.0, "retro_s": 60.0}
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def progress(label: str, done: int, total: int) -> None:
    print(f"\r  {label}: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)


def psql(base_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql)


def setup_django(db_url: str) -> None:
    os.environ.update(
        DATABASE_URL=db_url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only"),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.pop("CELERY_BROKER_URL", None)  # one worker: this process
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does after a bulk load


def indicator(pattern: str, kind: str) -> dict:
    stamp = "2026-11-23T00:00:00.000Z"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "name": "bench",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2026-11-01T00:00:00Z",
        "valid_until": "2027-11-01T00:00:00Z",
        "confidence": 70,
        "object_marking_refs": [AMBER],
        "mdx_indicator_kind": kind,
    }


def import_accounts(n: int, extra: Sequence[str] = ()) -> dict:
    """Import ``n`` demo accounts, then the ``extra`` JSON lines (bench/cluster_bench.py's)."""
    from indicators.accounts import accounts_import
    from indicators.demo_accounts import demo_accounts_generate
    from indicators.hashing import Keyring

    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=True) as handle:
        started = time.perf_counter()
        total = n + len(extra)
        for number, line in enumerate(chain(demo_accounts_generate(n, seed=11), extra), start=1):
            handle.write(line + "\n")
            if number % 50_000 == 0:
                progress("generating JSON lines", number, total)
        handle.flush()
        generated = time.perf_counter() - started
        handle.seek(0)
        started, cpu = time.perf_counter(), time.process_time()
        result = accounts_import(
            handle, keyring=Keyring.development(), progress=lambda done: progress("importing", done, total)
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert not result.errors, result.errors[:3]
    return {"generate_s": generated, "import_s": seconds, "client_cpu_s": cpu, "imported": result.imported}


def sample_values(rng: random.Random, count: int) -> tuple[list[str], list[str], list[str]]:
    """Identifier hashes, payment hashes and signup IPv6 addresses of random existing accounts.

    The demo data draws IPv4 addresses from two shared /24 pools (every /24 there holds half of
    all accounts: no sane indicator), so IP indicators use the near-unique IPv6 signup addresses
    and the planted cluster's 198.51.100.0/24."""
    from django.db.models import Max

    from indicators.models import AccountIdentifier, AccountIp, AccountPayment

    def pick(qs, column: str) -> list:
        top = qs.model.objects.aggregate(m=Max("pk"))["m"] or 0
        wanted = sorted({rng.randint(1, top) for _ in range(count * 3)})
        return list(qs.filter(pk__in=wanted).values_list(column, flat=True)[:count])

    return (
        pick(AccountIdentifier.objects.filter(identifier_type__in=["email-canonical", "phone"]), "value"),
        pick(AccountPayment.objects.exclude(card_iin="411111"), "value"),
        pick(AccountIp.objects.filter(ip__contains=":"), "ip"),
    )


def make_patterns(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """A retro-hunt mix: 60 % identifier hashes, 15 % payment hashes, 25 % IPv6 addresses or /64s
    (and the cluster's /24 now and then). About half hit an account; the rest are unseen values."""
    ids, payments, ips = sample_values(rng, min(count, 20_000))
    out: list[tuple[str, str]] = []
    for i in range(count):
        roll = rng.random()
        miss = rng.random() < 0.5
        if roll < 0.60:
            value = rng.randbytes(32).hex() if miss or not ids else rng.choice(ids)
            out.append((f"[mdx-hashed-identifier:value = '{value}']", "exact-identifier"))
        elif roll < 0.75:
            value = rng.randbytes(32).hex() if miss or not payments else rng.choice(payments)
            out.append((f"[mdx-payment-fingerprint:value = '{value}']", "payment"))
        elif roll < 0.751:
            out.append(("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "network-range"))
        else:
            ip = rng.choice(ips) if ips and not miss else f"2001:db8:ffff:{i % 65536:x}::1"
            if rng.random() < 0.5:
                out.append((f"[ipv6-addr:value = '{ip}']", "network-range"))
            else:
                net = ipaddress.ip_network(f"{ip}/64", strict=False)
                out.append((f"[ipv6-addr:value ISSUBSET '{net}']", "network-range"))
    return out


def publish(pairs: list[tuple[str, str]]):
    """Publish indicators WITHOUT the on-publish matching hook: the bench times matching itself."""
    from sharing import services
    from sharing.models import Collection

    collection = Collection.objects.filter(title="bench").first() or Collection.objects.create(title="bench")
    stored = []
    hook = services.matching_tasks
    services.matching_tasks = SimpleNamespace(indicators_published=lambda pks: None)
    try:
        for start in range(0, len(pairs), 2000):
            objects = [indicator(p, k) for p, k in pairs[start : start + 2000]]
            got, problems = services.objects_publish(collection=collection, objects=objects)
            assert not problems, problems[:3]
            stored.extend(got)
    finally:
        services.matching_tasks = hook
    return stored


def single_indicator(rng: random.Random, runs: int) -> dict:
    """A new hash or CIDR indicator against every account: the service a worker runs on publish."""
    from indicators import matching_service as ms

    ids, _, ips = sample_values(rng, runs * 2)
    timings = {"hash": [], "cidr": []}
    hits = {"hash": 0, "cidr": 0}
    for i in range(runs):
        for kind, pattern in (
            ("hash", f"[mdx-hashed-identifier:value = '{ids[i % len(ids)]}']"),
            ("cidr", "[ipv4-addr:value ISSUBSET '198.51.100.0/24']" if i % 2 else
             f"[ipv6-addr:value ISSUBSET '{ipaddress.ip_network(ips[i % len(ips)] + '/64', strict=False)}']"),
        ):  # fmt: skip
            [obj] = publish([(pattern, "exact-identifier" if kind == "hash" else "network-range")])
            started = time.perf_counter()
            hits[kind] += ms.indicator_match(obj.pk)
            timings[kind].append((time.perf_counter() - started) * 1000)
    return {
        kind: {
            "median_ms": statistics.median(values),
            "p95_ms": sorted(values)[max(0, int(len(values) * 0.95) - 1)],
            "matches": hits[kind],
        }
        for kind, values in timings.items()
    }


def retro_hunt(rng: random.Random, count: int, account_chunk: int) -> dict:
    from django.conf import settings

    from indicators import matching_service as ms
    from indicators.models import Match

    pairs = make_patterns(rng, count)
    started = time.perf_counter()
    stored = publish(pairs)
    publish_s = time.perf_counter() - started
    settings.MDX_MATCH_ACCOUNT_CHUNK = account_chunk
    before = Match.objects.count()
    started = time.perf_counter()
    job_pks = ms.retro_hunt_plan(full=True, label="bench")
    for done, pk in enumerate(job_pks, start=1):
        ms.match_job_run(pk)
        if done % 10 == 0 or done == len(job_pks):
            progress("retro-hunt jobs", done, len(job_pks))
    seconds = time.perf_counter() - started
    return {
        "indicators": len(stored),
        "jobs": len(job_pks),
        "publish_s": publish_s,
        "retro_s": seconds,
        "matches": Match.objects.count() - before,
        "stored": stored,
    }


def oracle_check(rng: random.Random, stored: list, n_indicators: int, n_accounts: int) -> dict:
    """stix2-matcher 3.0.0 on a sample: sampled indicators × (their matched accounts + random accounts)."""
    from stix2matcher.matcher import MatchListener
    from stix2matcher.matcher import Pattern as OraclePattern

    from indicators import matching_service as ms
    from indicators.matching import account_observations, observations_as_bundles
    from indicators.models import Account, Match

    sample = rng.sample(stored, min(n_indicators, len(stored)))
    ours = {
        obj.pk: set(Match.objects.filter(indicator=obj).values_list("account_id", flat=True))
        for obj in sample
    }
    top = Account.objects.order_by("-pk").values_list("pk", flat=True).first()
    accounts = {rng.randint(1, top) for _ in range(n_accounts)} | set().union(*ours.values())
    records = ms.account_records(sorted(accounts))
    patterns = [(obj.pk, OraclePattern(obj.data["pattern"], "2.1")) for obj in sample]
    oracle: dict[int, set[int]] = {pk: set() for pk, _ in patterns}
    failed: set[int] = set()  # stix2-matcher 3.0.0 raises on IPv6 ISSUBSET ("Invalid IPv4 address")
    for number, (account_pk, record) in enumerate(records.items(), start=1):
        listener = MatchListener(observations_as_bundles(account_observations(record)), stix_version="2.1")
        for pk, pattern in patterns:
            if pk in failed:
                continue
            listener._MatchListener__compute_stack = []  # one listener, many patterns (as the tests do)
            try:
                pattern.walk(listener)
            except Exception:
                failed.add(pk)
                continue
            if next(listener.matched(), None) is not None:
                oracle[pk].add(account_pk)
        if number % 100 == 0 or number == len(records):
            progress("oracle", number, len(records))
    compared = [pk for pk in oracle if pk not in failed]
    mismatches = [pk for pk in compared if oracle[pk] != (ours[pk] & set(records))]
    return {
        "oracle_errors": len(failed),
        "indicators": len(compared),
        "accounts": len(records),
        "pairs": len(compared) * len(records),
        "matches": sum(len(v) for v in oracle.values()),
        "mismatches": len(mismatches),
    }


def report_import(n: int, imported: dict) -> int:
    rate = imported["imported"] / imported["import_s"]
    target = f"≥ {TARGETS['import']:,}/s"
    print(f"\nAccount import, N = {n:,} accounts, PostgreSQL\n")
    print(f"{'measure':<48} {'target':>14} {'result':>22}")
    print(f"{'import accounts (accounts_import)':<48} {target:>14} {f'{rate:,.0f}/s':>22}")
    print(
        f"\nimport took {imported['import_s']:.1f} s (this process's CPU: {imported['client_cpu_s']:.1f} s); "
        f"generating JSON lines took {imported['generate_s']:.1f} s (not counted)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--indicators", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=20, help="new-indicator runs per kind")
    parser.add_argument("--oracle-indicators", type=int, default=100)
    parser.add_argument("--oracle-accounts", type=int, default=300)
    parser.add_argument("--account-chunk", type=int, default=250_000, help="account pks per retro-hunt job")
    parser.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    parser.add_argument(
        "--only-import", action="store_true", help="time the account import alone (no matching)"
    )
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print(
            "set DATABASE_URL to a PostgreSQL server (any database; the bench makes its own)", file=sys.stderr
        )
        return 2
    name = f"mdx_match_bench_{os.getpid()}"
    parts = urlsplit(base)
    db_url = urlunsplit(parts._replace(path=f"/{name}"))
    psql(base, f'CREATE DATABASE "{name}"')
    try:
        setup_django(db_url)
        rng = random.Random(20261123)
        say(f"Importing {args.accounts:,} accounts (indicators.accounts.accounts_import, demo generator)…")
        imported = import_accounts(args.accounts)
        if args.only_import:
            return report_import(args.accounts, imported)
        analyze()
        say("One new indicator against every account…")
        single = single_indicator(rng, args.single)
        say(f"Retro-hunt: {args.indicators:,} indicators…")
        hunt = retro_hunt(rng, args.indicators, args.account_chunk)
        say("Oracle check on a sample…")
        oracle = oracle_check(rng, hunt.pop("stored"), args.oracle_indicators, args.oracle_accounts)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    rate = imported["imported"] / imported["import_s"]
    print(f"\nMatching benchmark, N = {args.accounts:,} accounts, PostgreSQL, one worker\n")
    print(f"{'measure':<48} {'target':>14} {'result':>22}")
    rows = [
        ("import accounts (accounts_import)", f"≥ {TARGETS['import']:,}/s", f"{rate:,.0f}/s"),
        (
            "new hash indicator vs all accounts",
            f"≤ {TARGETS['single_ms']:.0f} ms",
            f"{single['hash']['median_ms']:.1f} ms (p95 {single['hash']['p95_ms']:.1f})",
        ),
        (
            "new CIDR /24 indicator vs all accounts",
            f"≤ {TARGETS['single_ms']:.0f} ms",
            f"{single['cidr']['median_ms']:.1f} ms (p95 {single['cidr']['p95_ms']:.1f})",
        ),
        (
            f"retro-hunt {hunt['indicators']:,} indicators ({hunt['jobs']} jobs)",
            f"≤ {TARGETS['retro_s']:.0f} s",
            f"{hunt['retro_s']:.1f} s",
        ),
        (
            "oracle (stix2-matcher) on a sample",
            "0 mismatches",
            f"{oracle['mismatches']} / {oracle['pairs']:,} pairs",
        ),
    ]
    for measure, target, result in rows:
        print(f"{measure:<48} {target:>14} {result:>22}")
    print(
        f"\nretro-hunt matches: {hunt['matches']:,}; publishing the indicators took "
        f"{hunt['publish_s']:.1f} s "
        f"(not counted); generating JSON lines took {imported['generate_s']:.1f} s (not counted); "
        f"oracle sample: {oracle['indicators']} indicators × {oracle['accounts']} accounts, "
        f"{oracle['matches']} matches ({oracle['oracle_errors']} sampled indicators skipped: the oracle "
        "raised on them)"
    )
    return 0 if oracle["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
