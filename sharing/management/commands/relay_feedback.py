"""relay_feedback [--indicator ID ...]: update the hub's relayed summary sightings now."""

from django.core.management.base import BaseCommand, CommandError

from sharing.feedback_relay import feedback_relay
from sharing.services import ServiceError


class Command(BaseCommand):
    help = (
        "Relay the members' feedback as summary sightings ('sighted by at least N members', under "
        "the hub's identity) into the collections of each indicator, and revoke relays that no "
        "longer hold. Runs on its own after every inbox post and every 15 minutes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--indicator", action="append", metavar="ID", help="only this indicator id (repeatable)"
        )

    def handle(self, *args, indicator=None, **options):
        bad = [i for i in indicator or () if not i.startswith("indicator--")]
        if bad:
            raise CommandError(f"not an indicator id: {bad[0]!r}")
        try:
            result = feedback_relay(indicator)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Relayed feedback: {result.issued} sighting(s) issued, {result.revoked} revoked, "
            f"{result.unchanged} unchanged"
        )
