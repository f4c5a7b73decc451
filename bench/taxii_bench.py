#!/usr/bin/env python
"""TAXII 2.1 benchmark: ingest by POST, full paginated pull, single-object GET latency.

Runs against a real deployment shape: PostgreSQL, gunicorn with 2 workers, taxii2-client.
Creates (and drops) its own database. Targets (issue #3) are printed next to the results.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/taxii_bench.py
        [--objects 100000] [--ingest 20000] [--batch 1000] [--clients 2] [--gets 500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_BROKER = "redis://127.0.0.1:6379/12"
TARGETS = {"pull": 50_000, "ingest": 2_500, "get_p95_ms": 15.0}
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"


def indicator(i: int) -> dict:
    stamp = "2026-11-23T00:00:00.000Z"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "name": f"Reseller proxy egress {i}",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}']",
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2026-11-01T00:00:00Z",
        "valid_until": "2027-11-01T00:00:00Z",
        "confidence": 60,
        "object_marking_refs": [AMBER],
    }


def progress(label: str, done: int, total: int) -> None:
    print(f"\r  {label}: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)


def database_urls(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    name = f"mdx_bench_{os.getpid()}"
    return name, urlunsplit(parts._replace(path=f"/{name}"))


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
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(collection_title: str, n: int) -> tuple[str, str, str]:
    """An org with a read-write token and a collection with n published indicators."""
    from indicators import tasks
    from sharing.services import (
        GrantSpec,
        collection_create,
        objects_publish,
        organisation_create,
        token_issue,
    )

    # Seeding is set-up, not a measurement: skip queueing local matching for 100,000 indicators.
    tasks.indicators_published = lambda pks: None
    org = organisation_create(name="Bench Lab", kind="lab", trusted=True)
    _, token = token_issue(organisation=org, scopes="read,write")
    collection = collection_create(title=collection_title, grants=[GrantSpec(org, True, True)])
    empty = collection_create(title=collection_title + "-ingest", grants=[GrantSpec(org, True, True)])
    for start in range(0, n, 5000):
        objects_publish(
            collection=collection,
            objects=[indicator(i) for i in range(start, min(n, start + 5000))],
            submitted_by=org,
        )
        progress("seeding", min(n, start + 5000), n)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does after a bulk load in production
    return token, str(collection.pk), str(empty.pk)


def start_gunicorn(db_url: str, port: int) -> subprocess.Popen:
    # Production shape: the web tier only enqueues matching on a Redis broker (no worker runs
    # here, so nothing competes with it); the queue is flushed afterwards.
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS="127.0.0.1",
        CELERY_BROKER_URL=BENCH_BROKER,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def bench_ingest(base: str, token: str, collection_id: str, n: int, batch: int, clients: int) -> float:
    from taxii2client.v21 import Collection

    url = f"{base}/taxii2/api/collections/{collection_id}/"
    envelopes = [{"objects": [indicator(i) for i in range(s, min(n, s + batch))]} for s in range(0, n, batch)]
    done = 0

    def post(envelope: dict) -> int:
        status = Collection(url, user="bench", password=token).add_objects(json.dumps(envelope))
        assert status.status == "complete" and status.success_count == len(envelope["objects"]), status
        return status.success_count

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for count in pool.map(post, envelopes):
            done += count
            progress("ingest", done, n)
    return n / (time.perf_counter() - started)


def bench_pull(base: str, token: str, collection_id: str, expected: int) -> float:
    from taxii2client.v21 import Collection, as_pages

    collection = Collection(f"{base}/taxii2/api/collections/{collection_id}/", user="bench", password=token)
    seen: set[str] = set()
    started = time.perf_counter()
    for page in as_pages(collection.get_objects, per_request=1000):
        for obj in page.get("objects", []):
            seen.add(obj["id"])
        progress("pull", len(seen), expected)
    elapsed = time.perf_counter() - started
    assert len(seen) == expected, f"pulled {len(seen)} distinct objects, expected {expected}"
    return expected / elapsed


def bench_get(base: str, token: str, collection_id: str, gets: int) -> tuple[float, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stix_id FROM sharing_collectionentry WHERE collection_id = %s", [uuid.UUID(collection_id)]
        )
        ids = [row[0] for row in cursor.fetchall()]
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"}
    )
    latencies = []
    for stix_id in random.sample(ids, min(gets, len(ids))):
        started = time.perf_counter()
        response = session.get(f"{base}/taxii2/api/collections/{collection_id}/objects/{stix_id}/")
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100_000, help="indicators stored before pulling")
    parser.add_argument("--ingest", type=int, default=20_000, help="indicators POSTed in the ingest run")
    parser.add_argument("--batch", type=int, default=1000, help="objects per POSTed envelope")
    parser.add_argument("--clients", type=int, default=2, help="concurrent POSTing clients")
    parser.add_argument("--gets", type=int, default=500, help="single-object GETs for latency")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name, db_url = database_urls(base_url)
    psql(base_url, f'CREATE DATABASE "{name}"')
    server = None
    try:
        setup_django(db_url)
        token, collection_id, ingest_id = seed("bench", args.objects)
        server = start_gunicorn(db_url, args.port)
        base = f"http://127.0.0.1:{args.port}"
        ingest = bench_ingest(base, token, ingest_id, args.ingest, args.batch, args.clients)
        pull = bench_pull(base, token, collection_id, args.objects)
        p50, p95 = bench_get(base, token, collection_id, args.gets)
        print(f"\nTAXII bench: {args.objects:,} stored indicators, PostgreSQL, gunicorn 2 workers")
        print(
            f"  full pull (taxii2-client, 1,000/page): {pull:10,.0f} objects/s   "
            f"target >= {TARGETS['pull']:,}"
        )
        print(
            f"  ingest by POST ({args.clients} clients, {args.batch}/envelope): {ingest:6,.0f} objects/s   "
            f"target >= {TARGETS['ingest']:,}"
        )
        print(
            f"  single-object GET: p50 {p50:.1f} ms, p95 {p95:.1f} ms   "
            f"target p95 <= {TARGETS['get_p95_ms']} ms"
        )
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        import redis
        from django.db import connections

        redis.Redis.from_url(BENCH_BROKER).flushdb()
        connections.close_all()
        psql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
