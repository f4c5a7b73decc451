"""The review queue, submission detail pages and the Approve / Reject actions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from sharing.models import Submission, SubmissionItem
from sharing.net import client_ip
from sharing.numbers import natural_number
from sharing.review import (
    ReviewError,
    four_eyes_blocks,
    pending_review_items,
    role_at_least,
    submission_approve_all,
    submission_item_approve,
    submission_item_reject,
    submission_items_decide,
    submission_reject_all,
)
from sharing.web.forms import BulkDecisionForm, QueueFilterForm, ReasonForm
from sharing.web.permissions import REVIEWER, VIEWER, role_required
from sharing.web.presenters import object_view

QUEUE_PAGE = 100


def _pending_items():
    return pending_review_items().select_related(
        "submission__organisation", "submission__collection", "stix_object"
    )


def _queue_filtered(form: QueueFilterForm):
    items = _pending_items()
    if not form.is_valid():
        return items
    data = form.cleaned_data
    if data.get("organisation"):
        items = items.filter(submission__organisation=data["organisation"])
    if data.get("type"):
        items = items.filter(stix_object__type=data["type"])
    if data.get("tlp"):
        items = items.filter(stix_object__tlp=data["tlp"])
    now = timezone.now()
    age = data.get("age")
    if age == "1d":
        items = items.filter(submission__created_at__gte=now - timedelta(days=1))
    elif age == "7d":
        items = items.filter(
            submission__created_at__lt=now - timedelta(days=1),
            submission__created_at__gte=now - timedelta(days=7),
        )
    elif age == "old":
        items = items.filter(submission__created_at__lt=now - timedelta(days=7))
    return items


def _queue_types() -> list[str]:
    return sorted(set(_pending_items().values_list("stix_object__type", flat=True)))


@require_GET
@role_required(VIEWER)
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None, types=_queue_types())
    items = _queue_filtered(form).order_by("submission__created_at", "submission_id", "position")
    page = Paginator(items, QUEUE_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "total": page.paginator.count,
        "can_review": role_at_least(request.user, REVIEWER),
        "query": request.GET.urlencode(),
    }
    template = "web/_queue_results.html" if request.htmx and not request.htmx.boosted else "web/queue.html"
    return render(request, template, context)


@require_POST
@role_required(REVIEWER)
def queue_bulk(request: HttpRequest) -> HttpResponse:
    ids = [pk for pk in map(natural_number, request.POST.getlist("items")) if pk is not None]
    form = BulkDecisionForm(request.POST, item_ids=ids)
    back = reverse("web:queue") + (f"?{request.POST['query']}" if request.POST.get("query") else "")
    if not ids:
        messages.error(request, "Select at least one object first.")
        return redirect(back)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    items = list(_pending_items().filter(pk__in=form.cleaned_data["items"]))
    approve = form.cleaned_data["action"] == "approve"
    try:
        decided = submission_items_decide(
            items=items,
            user=request.user,
            approve=approve,
            reason=form.cleaned_data.get("reason", ""),
            ip_address=client_ip(request),
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        verb = "Approved and published" if approve else "Rejected"
        messages.success(request, f"{verb} {len(decided)} object{'s' if len(decided) != 1 else ''}.")
    return redirect(back)


def _submission_context(request: HttpRequest, submission: Submission) -> dict:
    items = list(submission.items.select_related("stix_object", "decided_by").order_by("position"))
    counts = {state: sum(i.state == state for i in items) for state in SubmissionItem.State.values}
    return {
        "submission": submission,
        "counts": counts,
        "can_review": role_at_least(request.user, REVIEWER),
        "four_eyes_blocked": four_eyes_blocks(user=request.user, submission=submission),
        "items": [(item, object_view(item.stix_object) if item.stix_object else None) for item in items],
    }


@require_GET
@role_required(VIEWER)
def submission_detail(request: HttpRequest, submission_id) -> HttpResponse:
    submission = get_object_or_404(
        Submission.objects.select_related("organisation", "collection", "token"), pk=submission_id
    )
    return render(request, "web/submission.html", _submission_context(request, submission))


def _item_response(request: HttpRequest, item: SubmissionItem, error: str = "") -> HttpResponse:
    """htmx: the item card again (plus the summary, out of band); otherwise back to the page."""
    if request.htmx:
        submission = Submission.objects.select_related("organisation", "collection").get(
            pk=item.submission_id
        )
        context = _submission_context(request, submission)
        item = next(i for i in context["items"] if i[0].pk == item.pk)
        context.update({"item": item[0], "view": item[1], "item_error": error, "oob": True})
        return render(request, "web/_item.html", context, status=200)
    if error:
        messages.error(request, error)
    return redirect(reverse("web:submission", args=[item.submission_id]) + f"#item-{item.pk}")


@require_POST
@role_required(REVIEWER)
def item_approve(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(
        SubmissionItem.objects.select_related("submission__organisation", "stix_object"), pk=item_id
    )
    error = ""
    try:
        submission_item_approve(item=item, user=request.user, ip_address=client_ip(request))
        if not request.htmx:
            messages.success(request, f"Approved and published {item.stix_id}.")
    except ReviewError as exc:
        error = str(exc)
    return _item_response(request, item, error)


@require_POST
@role_required(REVIEWER)
def item_reject(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(
        SubmissionItem.objects.select_related("submission__organisation", "stix_object"), pk=item_id
    )
    form = ReasonForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "A reason is required to reject."
    else:
        try:
            submission_item_reject(
                item=item,
                user=request.user,
                reason=form.cleaned_data["reason"],
                ip_address=client_ip(request),
            )
            if not request.htmx:
                messages.success(request, f"Rejected {item.stix_id}.")
        except ReviewError as exc:
            error = str(exc)
    return _item_response(request, item, error)


@require_POST
@role_required(REVIEWER)
def submission_approve(request: HttpRequest, submission_id) -> HttpResponse:
    submission = get_object_or_404(
        Submission.objects.select_related("organisation", "collection"), pk=submission_id
    )
    try:
        decided = submission_approve_all(
            submission=submission, user=request.user, ip_address=client_ip(request)
        )
        messages.success(request, f"Approved and published {len(decided)} object{'s' * (len(decided) != 1)}.")
    except ReviewError as exc:
        messages.error(request, str(exc))
    return redirect("web:submission", submission.pk)


@require_POST
@role_required(REVIEWER)
def submission_reject(request: HttpRequest, submission_id) -> HttpResponse:
    submission = get_object_or_404(
        Submission.objects.select_related("organisation", "collection"), pk=submission_id
    )
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A reason is required to reject.")
        return redirect("web:submission", submission.pk)
    try:
        decided = submission_reject_all(
            submission=submission,
            user=request.user,
            reason=form.cleaned_data["reason"],
            ip_address=client_ip(request),
        )
        messages.success(request, f"Rejected {len(decided)} object{'s' * (len(decided) != 1)}.")
    except ReviewError as exc:
        messages.error(request, str(exc))
    return redirect("web:submission", submission.pk)
