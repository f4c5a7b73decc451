#!/usr/bin/env python
"""Hydra-cluster linking benchmark (DOMAIN.md §4.3): import N demo accounts, time `clusters_link`.

Target: 1,000,000 accounts linked in ≤ 120 s (one process, PostgreSQL), i.e. about 8,300 accounts/s.

PostgreSQL only. Creates (and drops) its own database, imports N accounts from the demo
generator (one planted 40-account cluster among ordinary accounts, as bench/match_bench.py
does), then links them in a fresh child process so that its peak RSS is linking's alone:
a first run (creates the clusters) and a re-run over unchanged data (writes nothing).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/cluster_bench.py
        [--accounts 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.match_bench import analyze, import_accounts, psql, say, setup_django  # noqa: E402

TARGET_ACCOUNTS = 1_000_000
TARGET_SECONDS = 120.0
# The demo accounts are dated 2026-09-01 … 2026-11-20: a window ending here covers all of them.
LINK_AS_OF = datetime(2026, 11, 23, tzinfo=UTC)


def link_in_child(db_url: str) -> dict:
    """Run the two linking passes in a fresh interpreter; its JSON report is its last stdout line."""
    done = subprocess.run(
        [sys.executable, __file__, "--link-only", db_url], capture_output=True, text=True, check=False
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


def link_only(db_url: str) -> int:
    """Child process: link twice and print a JSON report (times, summaries, peak RSS)."""
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
    print(
        json.dumps({"accounts": accounts, "runs": runs, "largest": largest, "peak_rss_mib": peak_kib / 1024})
    )
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
    print(
        f"\nclusters: {first['clusters']} ({first['candidates']} candidates, largest {linked['largest']} "
        f"accounts, {first['accounts']} accounts clustered); stats {first['stats']}; the re-run made "
        f"{linked['runs'][1]['members_changed']} membership changes. Importing took "
        f"{imported['import_s']:.1f} s and generating the JSON lines {imported['generate_s']:.1f} s "
        "(not counted)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=TARGET_ACCOUNTS)
    parser.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    parser.add_argument("--link-only", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.link_only:
        return link_only(args.link_only)
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
        imported = import_accounts(args.accounts)
        analyze()
        from django.db import connections

        connections.close_all()
        linked = link_in_child(db_url)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(args.accounts, imported, linked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
