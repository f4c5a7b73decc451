"""The dashboard: what waits for review, activity per day, top submitters, recent audit events."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from sharing.models import (
    ApiToken,
    AuditEvent,
    CollectionEntry,
    Membership,
    Organisation,
    Submission,
    SubmissionItem,
)
from sharing.review import pending_review_items, user_role
from sharing.web.charts import bar_chart

CHART_DAYS = 14


def per_day(queryset: QuerySet, field: str, *, days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """Counts per UTC day for the last ``days`` days, zero-filled, oldest first."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        queryset.filter(**{f"{field}__date__gte": start})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count("pk"))
    )
    counts = {row["day"]: row["n"] for row in rows}
    return [(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range(days)]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("organisation")
    context = {"memberships": memberships, "role": user_role(request.user)}
    if context["role"] is None:
        return render(request, "web/no_role.html", context)
    since = timezone.now() - timedelta(days=30)
    pending = pending_review_items()
    context.update(
        {
            "pending_count": pending.count(),
            "pending_submissions": pending.values("submission").distinct().count(),
            "published_count": CollectionEntry.objects.count(),
            "organisation_count": Organisation.objects.count(),
            "active_tokens": ApiToken.objects.filter(revoked_at=None).count(),
            "charts": [
                bar_chart(per_day(Submission.objects.all(), "created_at"), title="Submissions per day"),
                bar_chart(
                    per_day(CollectionEntry.objects.all(), "date_added"),
                    title="Publications per day",
                    colour="#0f766e",
                ),
                bar_chart(
                    per_day(AuditEvent.objects.filter(action="feed.pull"), "created_at"),
                    title="Feed pulls per day",
                    colour="#a16207",
                ),
            ],
            "top_submitters": Organisation.objects.annotate(
                submission_count=Count(
                    "submissions", filter=Q(submissions__created_at__gte=since), distinct=True
                ),
                pending_count=Count(
                    "submissions__items",
                    filter=Q(submissions__items__state=SubmissionItem.State.PENDING),
                ),
            )
            .filter(submission_count__gt=0)
            .order_by("-submission_count", "name")[:6],
            "recent_events": AuditEvent.objects.all()[:12],
        }
    )
    return render(request, "web/dashboard.html", context)
