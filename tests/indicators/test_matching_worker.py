"""A real Celery worker on Redis and PostgreSQL: publish, then a retro-hunt that survives a SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import transaction

from indicators import matching_service as ms
from indicators import tasks
from indicators.matching import PatternError, account_observations, compile_pattern
from indicators.models import IndicatorMatchState, Match, MatchJob
from tests.indicators.matching_helpers import oracle_harness, publish_indicators, records_store
from tests.stix_builders import make_indicator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.requires_redis, pytest.mark.requires_postgres, pytest.mark.slow]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"]


@pytest.fixture
def queue(monkeypatch):
    """A private queue on the real broker; this process sends to it instead of running tasks eagerly."""
    from config.celery import app

    name = f"mdx-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app.conf, "broker_url", _broker_url())
    monkeypatch.setattr(app.conf, "task_default_queue", name)
    # No force_close_all() afterwards: kombu keeps one pool per broker URL for the whole process,
    # and a force-closed pool refuses every later test's enqueue ("Acquire on closed pool").
    return name


class Worker:
    def __init__(self, queue: str, log: Path):
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        env.update(
            DATABASE_URL=_database_url(),
            CELERY_BROKER_URL=_broker_url(),
            SECRET_KEY=env.get("SECRET_KEY", "t"),
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "-c",
                "1",
                "-Q",
                queue,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{queue}-{uuid.uuid4().hex[:4]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n--- worker log ---\n{tail}")


def wait_idle(progress, total: int, timeout: float, log: Path, quiet: float = 2.0) -> None:
    """Wait until `progress()` reaches `total` or stops moving for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = progress(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = progress()
        if now >= total:
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > quiet and last > 0:
            return
    pytest.fail(
        f"no progress within {timeout}s\n--- worker log ---\n{log.read_text(errors='replace')[-3000:]}"
    )


def test_worker_matches_published_indicators_and_a_killed_retro_hunt_completes(
    transactional_db, queue, tmp_path, settings
):
    harness = oracle_harness()
    rng = random.Random(harness.SEED)
    records = [harness.make_account(rng, i) for i in range(400)]
    pks = records_store(records)
    observations = [account_observations(r) for r in records]
    log = tmp_path / "worker.log"

    def expected(pattern: str) -> set[int]:
        compiled = compile_pattern(pattern)
        return {pk for pk, obs in zip(pks, observations, strict=True) if compiled.matches(obs)}

    worker = Worker(queue, log)
    try:
        # 1. Publishing enqueues matching after commit; the worker matches the new version.
        pattern = f"[mdx-payment-fingerprint:value = '{harness.CLUSTER_A_PAYMENT}']"
        with transaction.atomic():  # collection_publish queues matching after commit
            [obj] = publish_indicators([make_indicator(pattern=pattern, confidence=90)])
        wait_for(
            lambda: IndicatorMatchState.objects.filter(indicator=obj, status="done").exists(),
            60,
            "match",
            log,
        )
        assert set(Match.objects.filter(indicator=obj).values_list("account_id", flat=True)) == expected(
            pattern
        )

        # 2. A retro-hunt of many chunks; the worker is SIGKILLed midway and another one finishes.
        values = harness.collect_values([[o[0]] for o in observations])
        maker = harness.PatternMaker(random.Random(harness.SEED + 3), values)
        patterns = []
        while len(patterns) < 30:
            candidate = maker.pattern() if len(patterns) % 3 else f"[{maker.comparison()}]"
            try:
                compile_pattern(candidate)
            except PatternError:
                continue
            patterns.append(candidate)
        objects = publish_indicators(
            [make_indicator(pattern=p, mdx_indicator_kind="composite", confidence=50) for p in patterns]
        )
        settings.MDX_MATCH_ACCOUNT_CHUNK = 20
        settings.MDX_MATCH_INDICATOR_BATCH = 8
        job_pks = ms.retro_hunt_plan(full=True)
        assert len(job_pks) >= 60
        tasks.jobs_enqueue(job_pks)
        wait_for(lambda: MatchJob.objects.filter(status="done").count() >= 15, 60, "first jobs", log)
        worker.kill()
        done_at_kill = MatchJob.objects.filter(status="done").count()
        assert done_at_kill < len(job_pks), "the worker finished before it could be killed"

        worker = Worker(queue, log)
        wait_idle(lambda: MatchJob.objects.filter(status="done").count(), len(job_pks), 120, log)
        # The killed worker's unacknowledged messages come back only after the broker's visibility
        # timeout; the periodic sweep re-queues their jobs (stale_seconds=0 here: no wait).
        tasks.sweep(stale_seconds=0)
        wait_for(
            lambda: MatchJob.objects.filter(status="done").count() == len(job_pks), 120, "all jobs done", log
        )
    finally:
        worker.stop()

    got = list(Match.objects.values_list("indicator_id", "account_id"))
    assert len(got) == len(set(got)), "duplicate matches"
    for obj, pattern in zip(objects, patterns, strict=True):
        found = {account for indicator, account in got if indicator == obj.pk}
        assert found == expected(pattern), pattern
