"""Feedback pages: reports this node sends to source hubs, and what members tell this hub.

Member side (node-private): from a decided alert a reviewer prepares a count-only report on
the indicator (sharing.feedback_outbound), sees exactly the JSON that will leave the node, and
sends it. Hub side: the aggregates of members' sightings and opinions (sharing.feedback_inbox),
disputed indicators first. Partners who originated indicators see the aggregates on theirs.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from indicators.models import StixObject
from sharing.feedback_inbox import FeedbackAggregate, all_feedback, originator_feedback
from sharing.feedback_outbound import (
    DEFAULT_OPINION,
    OPINIONS,
    REVIEW_STATES,
    FeedbackError,
    feedback_basis,
    feedback_prepare,
    feedback_send,
)
from sharing.models import FeedbackReport, Membership
from sharing.net import client_ip
from sharing.review import role_at_least, user_role
from sharing.web.permissions import REVIEWER, VIEWER, role_required
from sharing.web.views.alerts import category_chart

CHART_BARS = 12


class FeedbackForm(forms.Form):
    review_state = forms.ChoiceField(
        choices=[(s, s) for s in REVIEW_STATES], label="Review state",
        help_text="which decided alerts this report counts",
    )  # fmt: skip
    opinion = forms.ChoiceField(
        choices=[("", "no opinion")] + [(o, o) for o in OPINIONS], required=False, label="Opinion"
    )
    explanation = forms.CharField(
        required=False, max_length=2000, label="Explanation",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "No account data: no ids, e-mails, numbers"}),
    )  # fmt: skip


def _names(stix_ids) -> dict[str, str]:
    names: dict[str, str] = {}
    for stix_id, name in (
        StixObject.objects.filter(stix_id__in=list(stix_ids))
        .order_by("modified")
        .values_list("stix_id", "name")
    ):
        names[stix_id] = name or names.get(stix_id, "")
    return names


def _aggregate_rows(aggregates: list[FeedbackAggregate]) -> list[dict]:
    names = _names(a.indicator_stix_id for a in aggregates)
    return [{"a": a, "name": names.get(a.indicator_stix_id, "")} for a in aggregates]


def _sightings_chart(aggregates: list[FeedbackAggregate]) -> str:
    top = sorted(aggregates, key=lambda a: (-a.members, -a.total_count))[:CHART_BARS]
    bars = [(f"#{i + 1}", a.members, "#b3261e" if a.disputed else "#1f5fa8") for i, a in enumerate(top)]
    return mark_safe(
        category_chart(
            bars, title="Members sighting each indicator (red: disputed)", x_label="indicator (rank)",
            y_label="members",
        )
    )  # fmt: skip


@require_GET
@role_required(VIEWER)
def feedback_overview(request: HttpRequest) -> HttpResponse:
    aggregates = all_feedback()
    reports = FeedbackReport.objects.select_related("subscription", "created_by")[:200]
    rows = _aggregate_rows(aggregates)
    return render(
        request,
        "web/feedback.html",
        {
            "reports": reports,
            "rows": rows,
            "chart": _sightings_chart(aggregates) if aggregates else "",
            "disputed": sum(a.disputed for a in aggregates),
            "scope": "operator",
        },
    )


@require_GET
def feedback_originated(request: HttpRequest) -> HttpResponse:
    """A partner's own view: aggregates on the indicators its organisation originated."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if user_role(request.user) is not None:
        return redirect("web:feedback")
    organisations = [
        m.organisation for m in Membership.objects.select_related("organisation").filter(user=request.user)
    ]
    if not organisations:
        raise PermissionDenied("you are not a member of any organisation")
    sections = []
    for organisation in organisations:
        aggregates = originator_feedback(organisation)
        sections.append({"organisation": organisation, "rows": _aggregate_rows(aggregates)})
    return render(request, "web/feedback_originated.html", {"sections": sections})


@require_http_methods(["GET", "POST"])
@role_required(REVIEWER)
def feedback_new(request: HttpRequest) -> HttpResponse:
    stix_id = (request.POST.get("indicator") or request.GET.get("indicator") or "").strip()[:300]
    if not stix_id.startswith("indicator--"):
        messages.error(request, "choose an indicator to report on")
        return redirect("web:alerts")
    basis = feedback_basis(stix_id)
    state = request.GET.get("state", "confirmed")
    initial = {"review_state": state if state in REVIEW_STATES else "confirmed"}
    initial["opinion"] = DEFAULT_OPINION[initial["review_state"]]
    form = FeedbackForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            report = feedback_prepare(
                stix_id=stix_id,
                review_state=form.cleaned_data["review_state"],
                opinion=form.cleaned_data["opinion"],
                explanation=form.cleaned_data["explanation"],
                user=request.user,
            )
        except FeedbackError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, "Report prepared. Check exactly what will leave this node, then send it."
            )
            return redirect("web:feedback-report", pk=report.pk)
    names = _names([stix_id])
    return render(
        request,
        "web/feedback_new.html",
        {"form": form, "basis": basis, "stix_id": stix_id, "name": names.get(stix_id, "")},
    )


@require_GET
@role_required(VIEWER)
def feedback_report(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(FeedbackReport.objects.select_related("subscription", "created_by"), pk=pk)
    return render(
        request,
        "web/feedback_report.html",
        {"report": report, "can_send": role_at_least(request.user, REVIEWER) and report.status != "sent"},
    )


@require_POST
@role_required(REVIEWER)
def feedback_report_send(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(FeedbackReport.objects.select_related("subscription"), pk=pk)
    try:
        report = feedback_send(report=report, user=request.user, ip_address=client_ip(request))
    except FeedbackError as exc:
        messages.error(request, str(exc))
    else:
        if report.status == FeedbackReport.Status.SENT:
            where = "collection" if report.destination == FeedbackReport.Destination.COLLECTION else "inbox"
            messages.success(
                request, f"Sent to {report.subscription.name}'s {where} (status {report.remote_status})."
            )
        else:
            messages.error(request, f"Not sent: {report.error}")
    return redirect("web:feedback-report", pk=pk)


@require_POST
@role_required(REVIEWER)
def feedback_report_discard(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(FeedbackReport, pk=pk)
    if report.status == FeedbackReport.Status.SENT:
        messages.error(request, "a sent report stays on record")
        return redirect("web:feedback-report", pk=pk)
    report.delete()
    messages.success(request, "Draft discarded; nothing was sent.")
    return redirect("web:feedback")
