"""export_matches --format jsonl: every local match, one JSON object per line, to stdout (node-private)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from indicators.models import Match


class Command(BaseCommand):
    help = (
        "Write every match as JSON Lines to stdout: indicator_id, indicator_modified, account_id, kind, "
        "weight, matched_at. Local data: it must not leave this node (DOMAIN §4.4)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["jsonl"], default="jsonl")

    def handle(self, *args, **options):
        rows = (
            Match.objects.order_by("pk")
            .values_list(
                "indicator__stix_id",
                "indicator__modified",
                "account__account_id",
                "kind",
                "weight",
                "matched_at",
            )
            .iterator(chunk_size=2000)
        )
        for stix_id, modified, account_id, kind, weight, matched_at in rows:
            record = {
                "indicator_id": stix_id,
                "indicator_modified": _iso(modified),
                "account_id": account_id,
                "kind": kind,
                "weight": weight,
                "matched_at": _iso(matched_at),
            }
            self.stdout.write(json.dumps(record, separators=(",", ":")))


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")
