"""run_matching [--full] [--async]: match active indicators against local accounts (DOMAIN §4.5)."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand

from indicators import matching_service as services
from indicators.models import IndicatorMatchState


class Command(BaseCommand):
    help = (
        "Match active indicators against local accounts. Without --full: pending indicator versions "
        "and accounts changed since the last run. With --full: every active indicator against every "
        "account (retro-hunt). Runs here with a progress bar on stderr, or --async to enqueue Celery tasks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="retro-hunt: all indicators × all accounts")
        parser.add_argument("--async", dest="run_async", action="store_true", help="enqueue, do not wait")

    def handle(self, *args, full: bool, run_async: bool, **options):
        if run_async:
            from indicators import tasks

            tasks.retro_hunt.delay(full)
            self.stdout.write(f"Enqueued a {'full' if full else 'incremental'} matching run.")
            return
        started = time.perf_counter()
        pending = (
            []
            if full
            else list(
                IndicatorMatchState.objects.filter(status=IndicatorMatchState.Status.PENDING).values_list(
                    "indicator_id", flat=True
                )
            )
        )
        job_pks = services.retro_hunt_plan(full=full, label="run_matching")
        total = len(pending) + len(job_pks)
        done = 0
        self._progress(done, total)
        for pk in pending:
            services.indicator_match_run(pk)
            done += 1
            self._progress(done, total)
        for pk in job_pks:
            services.match_job_run(pk)
            done += 1
            self._progress(done, total)
        if total:
            sys.stderr.write("\n")
        matches = sum(services.MatchJob.objects.filter(pk__in=job_pks).values_list("matched", flat=True))
        self.stdout.write(
            f"Ran {len(pending)} indicator(s) and {len(job_pks)} job(s): {matches} match(es) found "
            f"in {time.perf_counter() - started:.1f}s."
        )

    def _progress(self, done: int, total: int) -> None:
        if not total:
            return
        width = 30
        filled = width * done // total
        self.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        self.stderr.flush()
