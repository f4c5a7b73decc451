"""Federation subscriptions and their health; admins may "Poll now". The token is never shown.

Reviewers read, admins poll. "Poll now" does what the REST ``POST /api/v1/subscriptions/<id>/poll/``
does (sharing.api.subscriptions_api.SubscriptionPollApi): an audited ``subscription.poll`` event
and, once committed, ``sharing.tasks.poll_subscription.delay(pk, force=True)`` — which Celery runs
in-process when tasks are eager (no broker configured).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from sharing.federation import subscription_poll_request
from sharing.models import Subscription
from sharing.net import client_ip
from sharing.review import role_at_least
from sharing.web.permissions import ADMIN, REVIEWER, role_required


def _health(subscription: Subscription, now) -> tuple[str, str]:
    """(css state, label) summarising a subscription's health."""
    if not subscription.is_active:
        return "paused", "Paused"
    if subscription.lease_until is not None and subscription.lease_until > now:
        return "polling", "Polling now"
    if subscription.consecutive_failures:
        return "failure", "Failing"
    if subscription.last_success_at is None:
        return "pending", "Never polled"
    return "success", "Healthy"


@require_GET
@role_required(REVIEWER)
def subscription_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    # Only the columns the page shows: the token's ciphertext is never even loaded.
    subscriptions = (
        Subscription.objects.select_related("collection", "organisation")
        .defer("token_ciphertext")
        .order_by("name")
    )
    rows = []
    for subscription in subscriptions:
        state, label = _health(subscription, now)
        rows.append(
            {
                "s": subscription,
                "state": state,
                "label": label,
                "token_source": f"env:{subscription.token_env}" if subscription.token_env else "encrypted",
                "overdue": subscription.is_active
                and subscription.next_poll_at is not None
                and subscription.next_poll_at <= now,
            }
        )
    context = {
        "rows": rows,
        "can_poll": role_at_least(request.user, ADMIN),
        "eager": bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)),
        "failing": sum(r["state"] == "failure" for r in rows),
    }
    return render(request, "web/subscriptions.html", context)


@require_POST
@role_required(ADMIN)
def subscription_poll(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(Subscription.objects.only("pk", "name"), pk=pk)
    subscription_poll_request(subscription=subscription, user=request.user, ip_address=client_ip(request))
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        messages.success(request, f"Polled {subscription.name}: see its health below.")
    else:
        messages.success(request, f"Poll of {subscription.name} queued.")
    return redirect("web:subscriptions")
