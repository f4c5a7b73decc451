"""poll_subscriptions [--name NAME]: poll every active subscription (or the named one) once, now."""

from django.core.management.base import BaseCommand, CommandError

from sharing.federation import subscription_poll
from sharing.models import Subscription


class Command(BaseCommand):
    help = (
        "Poll every active subscription (or the named one, active or not) once, synchronously, and "
        "print how many objects arrived. Exits non-zero if a poll failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="poll only this subscription")

    # Not MdxCommand: each page commits on its own, and no network call may run inside a transaction.
    def handle(self, *args, name=None, **options):
        if name is not None:
            subscriptions = list(Subscription.objects.filter(name__iexact=" ".join(name.split())))
            if not subscriptions:
                raise CommandError(f"no subscription named {name!r}")
        else:
            subscriptions = list(Subscription.objects.filter(is_active=True).order_by("name"))
            if not subscriptions:
                self.stdout.write("No active subscriptions.")
                return
        failed = []
        for subscription in subscriptions:
            result = subscription_poll(subscription, force=True)
            if result.ok:
                self.stdout.write(
                    f"{result.name}: {result.objects} object(s) arrived in {result.pages} page(s) "
                    f"({result.published} published, {result.pending} pending review, "
                    f"{result.rejected} rejected)"
                    + (" — more remain, polling again soon" if result.truncated else "")
                )
            else:
                failed.append(result.name)
                label = "skipped" if result.skipped else "failed"
                self.stdout.write(f"{result.name}: {label}: {result.error}")
        if failed:
            raise CommandError(f"{len(failed)} subscription poll(s) did not succeed: {', '.join(failed)}")
