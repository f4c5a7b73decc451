"""link_clusters [--now ISO] [--async]: link local accounts into hydra clusters (DOMAIN.md §4.3)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from indicators import cluster_service

REFRESH_SECONDS = 0.2  # redraw the progress line at most this often


class Command(BaseCommand):
    help = (
        "Link local accounts into hydra clusters over the rolling window (MDX_CLUSTER_WINDOW_DAYS) "
        "and mark the candidates for review. Runs here with progress on stderr, or --async to "
        "enqueue the Celery task. A run already in progress makes this one a no-op."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", help="end of the window, ISO 8601 with a time zone (default: now)", default=None
        )
        parser.add_argument("--async", dest="run_async", action="store_true", help="enqueue, do not wait")

    def handle(self, *args, now: str | None, run_async: bool, **options):
        if run_async:
            if now is not None:
                raise CommandError("--now cannot be combined with --async (the task links as of now)")
            from indicators import tasks

            tasks.link_clusters.delay()
            self.stdout.write("Enqueued a cluster-linking run.")
            return
        progress = _Progress(self.stderr)
        summary = cluster_service.clusters_link(_parse_now(now), progress=progress.show)
        progress.done()
        if summary.skipped:
            raise CommandError("another cluster-linking run is in progress; nothing was done")
        self.stdout.write(_summary(summary))


def _parse_now(raw: str | None):
    if raw is None:
        return None
    try:
        moment = parse_datetime(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"--now must be an ISO 8601 date-time with a time zone, got {raw!r}")
    return moment


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(summary: cluster_service.LinkSummary) -> str:
    stats = summary.stats
    return (
        f"Linked {_plural(summary.accounts, 'account')} into {_plural(summary.clusters, 'cluster')} "
        f"({_plural(summary.candidates, 'candidate')}; {summary.created} new, {summary.kept} kept, "
        f"{summary.dissolved} dissolved; {summary.members_changed} membership changes) "
        f"in {summary.seconds:.1f}s. Shared values linking: {stats.get('groups_linked', 0)}, "
        f"capped: {stats.get('values_capped', 0)}; weak edges: {stats.get('weak_edges', 0)}; "
        f"timing pairs compared: {stats.get('timing_pairs', 0)}."
    )


class _Progress:
    """One self-overwriting stderr line: ``signup networks: 120000 rows  48000 rows/s``."""

    def __init__(self, out):
        self.out = out
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.stage = ""

    def show(self, stage: str, count: int) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.shown_at < REFRESH_SECONDS:
            return
        if stage != self.stage:
            self.started = now
        unit = "clusters" if stage in ("features", "saving") else "rows"
        text = f"{stage}: {count} {unit}"
        if unit == "rows" and now > self.started:
            text += f"  {count / (now - self.started):.0f} rows/s"
        self.out.write(f"\r{text:<72}", ending="")
        self.out.flush()
        self.stage, self.shown_at = stage, now

    def done(self) -> None:
        if self.stage:
            self.out.write("")  # end the progress line
