"""Celery tasks for local matching: thin wrappers (ids in, one service call, retries) plus enqueue helpers.

Every task is idempotent: it claims its work with a conditional UPDATE (IndicatorMatchState,
MatchJob, or the cluster-linking lease) and writes Match rows under a unique key, so acks_late
re-delivery is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError, transaction

from indicators import cluster_service
from indicators import matching_service as services

PUBLISHED_BATCH = 200  # new indicator versions per match_indicators task

_RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 5,
}


@shared_task(**_RETRY)
def match_indicator(stix_object_pk: int, low_pk: int | None = None, high_pk: int | None = None) -> int | bool:
    """A new indicator version against every account (claims its state), or one account pk range."""
    if low_pk is None and high_pk is None:
        return services.indicator_match_run(stix_object_pk)
    return services.indicator_match(stix_object_pk, (low_pk, high_pk))


@shared_task(**_RETRY)
def match_indicators(stix_object_pks: list[int]) -> int:
    """New indicator versions, one after another (each claims its own state, so re-delivery is safe)."""
    return sum(bool(services.indicator_match_run(pk)) for pk in stix_object_pks)


@shared_task(**_RETRY)
def match_job(job_pk: int) -> bool:
    """One retro-hunt chunk or changed-accounts batch (MatchJob); a lost one is re-queued by sweep()."""
    return services.match_job_run(job_pk)


@shared_task(**_RETRY)
def match_accounts(account_pks: list[int]) -> int:
    """Changed accounts against every active indicator (unclaimed: small, idempotent)."""
    return services.accounts_match(account_pks)


@shared_task(**_RETRY)
def retro_hunt(full: bool = True) -> int:
    """Fan out MatchJobs: active indicators × account pk ranges (full), or changed accounts (incremental)."""
    job_pks = services.retro_hunt_plan(full=full)
    jobs_enqueue(job_pks)
    return len(job_pks)


@shared_task(**_RETRY)
def sweep(stale_seconds: int | None = None) -> dict:
    """Re-queue lost work: pending states/jobs never picked up, running ones whose worker died."""
    stale = None if stale_seconds is None else timedelta(seconds=stale_seconds)
    result = services.matching_sweep(stale=stale)
    for pk in result.indicator_pks:
        match_indicator.delay(pk)
    jobs_enqueue(result.job_pks)
    return {
        "indicators": len(result.indicator_pks),
        "jobs": len(result.job_pks),
        "failed": len(result.failed_job_pks),
    }


@shared_task(**_RETRY)
def expire_indicators() -> int:
    """Withdraw alerts of indicators that passed valid_until (or were revoked)."""
    return len(services.indicators_expire())


@shared_task(**_RETRY)
def link_clusters() -> dict:
    """Hourly hydra-cluster linking (DOMAIN §4.3, §4.5 score_and_cluster). A run that finds the
    lease held by another returns ``skipped`` and does nothing, so overlapping runs never interleave."""
    return cluster_service.clusters_link().as_dict()


def jobs_enqueue(job_pks: Sequence[int]) -> None:
    services.jobs_mark_enqueued(job_pks)
    for pk in job_pks:
        match_job.delay(pk)


# --- For other apps: call inside their transaction; work is enqueued after commit. ------------------------


def indicators_published(stix_object_pks: list[int]) -> None:
    """New indicator versions were published: supersede older versions, match the new ones.

    A revoked version is matched too: matching an inactive version withdraws its alerts.
    """
    pks = services.indicator_versions_published(stix_object_pks)
    # One message per batch, not per indicator: a bulk POST of thousands stays one round trip
    # per batch to the broker. robust: a broker outage must not fail the request that published;
    # the versions' match states stay pending and the periodic sweep queues them again.
    for start in range(0, len(pks), PUBLISHED_BATCH):
        batch = pks[start : start + PUBLISHED_BATCH]
        transaction.on_commit(lambda batch=batch: match_indicators.delay(batch), robust=True)


def accounts_changed(account_pks: list[int]) -> None:
    """Accounts were (re-)imported: match them against every active indicator after commit."""
    if not account_pks:
        return
    job_pks = services.accounts_jobs(account_pks)
    transaction.on_commit(lambda: jobs_enqueue(job_pks), robust=True)  # pending jobs are swept again
