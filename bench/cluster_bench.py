#!/usr/bin/env python
"""Hydra-cluster linking benchmark (DOMAIN.md §4.3): import N accounts, time `clusters_link`.

Target: 1,000,000 accounts linked in ≤ 120 s (one process, PostgreSQL), i.e. about 8,300 accounts/s.

PostgreSQL only. Creates (and drops) its own database and imports N accounts: ordinary ones from
the demo generator (with its one planted 40-account cluster, as bench/match_bench.py imports
them) plus ``--planted`` further clusters, a third each linked by one shared card (20–50
accounts), by a chain of shared e-mail addresses (each member shares one with the next; 20–200
accounts), and by two weak types only (their own signup /24 within 24 h and their own client
fingerprint; 20–50 accounts). Then it
links them in a fresh child process, so that its peak RSS is linking's alone: a first run
(creates the clusters) and a re-run over unchanged data (writes nothing). The first run's
clusters must be exactly the planted ones.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/cluster_bench.py
        [--accounts 1000000] [--planted 2000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.match_bench import analyze, import_accounts, psql, say, setup_django  # noqa: E402

TARGET_ACCOUNTS = 1_000_000
TARGET_SECONDS = 120.0
# The demo accounts are dated 2026-09-01 … 2026-11-20: a window ending here covers all of them.
LINK_AS_OF = datetime(2026, 11, 23, tzinfo=UTC)
PLANTED_FROM = datetime(2026, 9, 10, tzinfo=UTC)
DEMO_CLUSTER_PREFIX = "acct-h"  # indicators.demo_accounts names its planted cluster's accounts so


def planted_clusters(count: int, seed: int = 5) -> tuple[list[str], list[set[str]]]:
    """``count`` clusters as JSON lines, and the account ids each one must come out as.

    Every planted account also has what ordinary accounts have (its own e-mail address and card,
    a common client, a signup address in a shared pool), so only the planted link joins it.
    At most 16,384 clusters: the weak ones' signup /24s are 100.64.0.0/10's.
    """
    rng = random.Random(seed)
    lines: list[str] = []
    expected: list[set[str]] = []
    for number in range(count):
        mode = number % 3
        # A value held by more than the degree cap (50) links nobody (§4.3.4): the clusters that
        # hang on one value stay within it; chains of pairwise-shared values may grow larger.
        size = rng.randint(20, 200) if mode == 1 else rng.randint(20, 50)
        signup_day = PLANTED_FROM + timedelta(days=rng.randrange(60))
        members = {f"acct-c{number:05d}-{i:03d}" for i in range(size)}
        for i in range(size):
            created = signup_day + timedelta(minutes=rng.randrange(24 * 60))  # one day: §4.3.3
            account = {
                "account_id": f"acct-c{number:05d}-{i:03d}",
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": "active",
                "tier": "self-serve-paid",
                "identifiers": [{"type": "email", "value": f"c{number}x{i}@planted.example"}],
                "payments": [{"basis": "par", "par": f"V002{number:012d}{i:013d}"}],
                "ips": [{"ip": f"192.0.2.{rng.randrange(1, 255)}", "signup": True}],
                "clients": [
                    {"user_agent": "python-httpx/0.27.0", "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1"}
                ],
            }
            if mode == 0:  # strong: one card for all
                account["payments"].append({"basis": "par", "par": f"V003{number:025d}"})
            elif mode == 1:  # strong, a chain: member i shares an address with member i + 1
                account["identifiers"].append(
                    {"type": "email", "value": f"c{number}x{i + 1}@planted.example"}
                )
            else:  # two weak types: the cluster's own signup /24 (within 24 h) and client
                account["ips"] = [{"ip": f"100.{64 + number // 256}.{number % 256}.{i + 1}", "signup": True}]
                account["clients"] = [
                    {"user_agent": "harness/1.0", "ja4": f"t13d9999h2_planted_{number:012x}"}
                ]
            lines.append(json.dumps(account))
        expected.append(members)
    return lines, expected


def link_in_child(db_url: str, planted: int) -> dict:
    """Run the two linking passes in a fresh interpreter; its JSON report is its last stdout line."""
    done = subprocess.run(
        [sys.executable, __file__, "--link-only", db_url, "--planted", str(planted)],
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"linking failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


_shown = [0.0]


def _progress(stage: str, count: int) -> None:
    if time.monotonic() - _shown[0] >= 0.5:  # printing every group would cost measurable time
        _shown[0] = time.monotonic()
        print(f"\r  {stage}: {count:,}".ljust(60), end="", file=sys.stderr, flush=True)


def clusters_found() -> list[set[str]]:
    from indicators.models import AccountClusterMember

    found: dict[int, set[str]] = {}
    rows = AccountClusterMember.objects.values_list("cluster_id", "account__account_id")
    for cluster_pk, account_id in rows.iterator(chunk_size=20_000):
        found.setdefault(cluster_pk, set()).add(account_id)
    return list(found.values())


def link_only(db_url: str, planted: int) -> int:
    """Child process: link twice, compare with the planted clusters, print a JSON report."""
    os.environ.update(DATABASE_URL=db_url, SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.db.models import Max

    from indicators.cluster_service import clusters_link
    from indicators.models import Account, AccountCluster

    accounts = Account.objects.count()
    runs = []
    for label in ("first run", "re-run, nothing changed"):
        say(f"Linking {accounts:,} accounts ({label})…")
        started = time.perf_counter()
        summary = clusters_link(LINK_AS_OF, progress=_progress)
        print(file=sys.stderr)
        runs.append({**summary.as_dict(), "label": label, "seconds": time.perf_counter() - started})
    largest = AccountCluster.objects.aggregate(m=Max("size"))["m"] or 0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    _, expected = planted_clusters(planted)
    wanted = {frozenset(members) for members in expected}
    found = {frozenset(members) for members in clusters_found()}
    demo = {c for c in found - wanted if all(a.startswith(DEMO_CLUSTER_PREFIX) for a in c)}
    check = {
        "planted": len(wanted),
        "found_exactly": len(wanted & found),
        "missed_or_split": len(wanted - found),
        "unexpected": len(found - wanted - demo),
        "demo_cluster": sorted(len(c) for c in demo),
    }
    report = {"accounts": accounts, "runs": runs, "largest": largest, "peak_rss_mib": peak_kib / 1024}
    print(json.dumps({**report, "check": check}))
    return 0


def report(n: int, imported: dict, linked: dict) -> None:
    target_rate = TARGET_ACCOUNTS / TARGET_SECONDS
    rows = []
    for run in linked["runs"]:
        rate = linked["accounts"] / run["seconds"]
        rows.append(
            (
                f"clusters_link, {run['label']}",
                f"≥ {target_rate:,.0f} accounts/s",
                f"{rate:,.0f}/s ({run['seconds']:.1f} s)",
            )
        )
    first = linked["runs"][0]
    projected = TARGET_ACCOUNTS * first["seconds"] / linked["accounts"]
    rows.append(
        ("projected for 1,000,000 accounts (linear)", f"≤ {TARGET_SECONDS:.0f} s", f"{projected:.0f} s")
    )
    rows.append(("peak RSS of the linking process", "", f"{linked['peak_rss_mib']:,.0f} MiB"))
    print(f"\nCluster linking benchmark, N = {n:,} accounts, PostgreSQL, one process\n")
    print(f"{'measure':<46} {'target':>22} {'result':>22}")
    for measure, target, result in rows:
        print(f"{measure:<46} {target:>22} {result:>22}")
    check = linked["check"]
    print(
        f"\nplanted clusters found exactly: {check['found_exactly']:,} of {check['planted']:,} "
        f"(missed or split: {check['missed_or_split']}, unexpected clusters: {check['unexpected']}, "
        f"the demo generator's own cluster: {check['demo_cluster']})"
    )
    print(
        f"clusters: {first['clusters']} ({first['candidates']} candidates, largest {linked['largest']} "
        f"accounts, {first['accounts']} accounts clustered); stats {first['stats']}; the re-run made "
        f"{linked['runs'][1]['members_changed']} membership changes. Importing took "
        f"{imported['import_s']:.1f} s and generating the JSON lines {imported['generate_s']:.1f} s "
        "(not counted)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=TARGET_ACCOUNTS, help="in all, planted ones included")
    parser.add_argument("--planted", type=int, default=2000, help="clusters planted besides the demo's one")
    parser.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    parser.add_argument("--link-only", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 <= args.planted <= 16_384:
        parser.error("--planted must be from 0 to 16384")
    if args.link_only:
        return link_only(args.link_only, args.planted)
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print(
            "set DATABASE_URL to a PostgreSQL server (any database; the bench makes its own)", file=sys.stderr
        )
        return 2
    name = f"mdx_cluster_bench_{os.getpid()}"
    db_url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    psql(base, f'CREATE DATABASE "{name}"')
    try:
        setup_django(db_url)
        say(f"Importing {args.accounts:,} accounts (indicators.accounts.accounts_import, demo generator)…")
        extra, _ = planted_clusters(args.planted)
        if len(extra) >= args.accounts:
            parser.error(f"--accounts must exceed the {len(extra):,} planted accounts")
        imported = import_accounts(args.accounts - len(extra), extra)
        analyze()
        from django.db import connections

        connections.close_all()
        linked = link_in_child(db_url, args.planted)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(args.accounts, imported, linked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
