"""Celery tasks for federation: poll one subscription, and the beat entry that polls the due ones.

Thin wrappers: ids in, one service call. A poll never raises (failures are recorded on the
subscription) and claims its subscription with a conditional UPDATE, so acks_late
re-delivery or a duplicate enqueue never makes two workers poll the same subscription.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def poll_subscription(subscription_id: int, force: bool = False) -> dict:
    """Poll one subscription if it is due (or ``force``) and nobody else is polling it."""
    from sharing import federation
    from sharing.models import Subscription

    subscription = Subscription.objects.filter(pk=subscription_id).only("pk", "name").first()
    if subscription is None:
        return {"subscription_id": subscription_id, "ok": False, "error": "no such subscription"}
    return federation.subscription_poll(subscription, force=force).as_dict()


@shared_task(acks_late=True, ignore_result=True)
def poll_due_subscriptions() -> int:
    """Enqueue a poll of every active subscription whose next_poll_at has passed."""
    from sharing import federation

    due = federation.subscriptions_due()
    for pk in due:
        poll_subscription.delay(pk)
    return len(due)


@shared_task(acks_late=True, ignore_result=True)
def relay_feedback(stix_ids: list[str] | None = None) -> dict:
    """Bring the hub's relayed summary sightings up to date (all of them when ``stix_ids`` is None)."""
    from sharing.feedback_relay import feedback_relay

    return feedback_relay(stix_ids).as_dict()
