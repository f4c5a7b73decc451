"""Hydra clusters of this node's accounts (DOMAIN §4.3): the list (filters, charts), one cluster
with its members and link-type breakdown, the reviewer's decision (Confirm / Dismiss / Reopen)
and, once confirmed, the reports to the triggering indicator's hub (§4.3.6).

Decisions go through ``indicators.cluster_service.cluster_review`` and are audited as
``cluster.review`` in the same transaction. Everything here is node-private (§4.4): viewers
may read, reviewers and admins decide — the same roles as the alerts pages.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from indicators import clustering
from indicators.cluster_service import last_linked, members_changed_since_review, min_size
from indicators.models import AccountCluster, AccountClusterMember
from sharing.cluster_report import cluster_report_prepare, triggers
from sharing.feedback_outbound import FeedbackError
from sharing.net import client_ip
from sharing.review import cluster_decision_review, role_at_least
from sharing.web.permissions import REVIEWER, VIEWER, role_required
from sharing.web.views.alerts import category_chart

PAGE = 50
MEMBER_PAGE = 100
Status = AccountCluster.Status

DECISION_STATUS = {"confirm": Status.CONFIRMED, "dismiss": Status.DISMISSED, "reopen": Status.NEW}
DECISION_LABELS = {"confirm": "Confirm", "dismiss": "Dismiss", "reopen": "Reopen"}
# Per link type (DOMAIN §4.3.2–4.3.3): label, chart label (nine bars share 370 px), kind, meaning.
LINK_TYPES = {
    clustering.PAYMENT: ("card", "card", "strong", "same payment HMAC (PAN or PAR basis)"),
    clustering.EMAIL: ("email", "email", "strong", "same canonical e-mail HMAC"),
    clustering.PHONE: ("phone", "phone", "strong", "same phone HMAC"),
    clustering.API_KEY: ("api key", "key", "strong", "same API-key SHA-256"),
    clustering.DEVICE: ("device", "device", "strong", "same device id"),
    clustering.SIGNUP_NET: ("signup net", "net", "weak", "sign-ups from one /24 or /48 within 24 h"),
    clustering.CLIENT: ("client", "client", "weak", "same rare client fingerprint (ja4/ja4h)"),
    clustering.TEMPLATE: ("template", "prompt", "weak", "same template among the accounts' top templates"),
    clustering.TIMING: ("timing", "timing", "weak", "request timing within JS distance 0.1, same window"),
}
SIZE_BINS = [(2, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None)]


class ClusterFilterForm(forms.Form):
    candidate = forms.BooleanField(required=False, label="Candidates only")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    min_size = forms.IntegerField(
        required=False,
        min_value=2,
        label="Min accounts",
        widget=forms.NumberInput(attrs={"placeholder": "2"}),
    )


class ClusterDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=list(DECISION_LABELS.items()))
    note = forms.CharField(required=False, max_length=5000, strip=True)


def _filtered(form: ClusterFilterForm, clusters):
    if not form.is_valid():
        return clusters
    data = form.cleaned_data
    if data.get("candidate"):
        clusters = clusters.filter(is_candidate=True)
    if data.get("status"):
        clusters = clusters.filter(status=data["status"])
    if data.get("min_size") is not None:
        clusters = clusters.filter(size__gte=data["min_size"])
    return clusters


def _size_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}–{high}"


def _charts(clusters) -> list[SafeString]:
    counts = clusters.aggregate(
        **{
            _size_label(low, high): Count(
                "pk", filter=Q(size__gte=low) & (Q() if high is None else Q(size__lte=high))
            )
            for low, high in SIZE_BINS
        }
    )
    candidate_size = min_size()  # red from there on: big enough to be a candidate
    size_bars = [
        (label, counts[label], "#b3261e" if low >= candidate_size else "#5b6475")
        for label, low in ((_size_label(low, high), low) for low, high in SIZE_BINS)
    ]
    with_type = dict.fromkeys(LINK_TYPES, 0)
    for link_counts in clusters.values_list("link_counts", flat=True).iterator(chunk_size=2000):
        for link_type in link_counts or {}:
            if link_type in with_type:
                with_type[link_type] += 1
    type_bars = [
        (LINK_TYPES[t][1], n, "#2753c9" if LINK_TYPES[t][2] == "strong" else "#0f766e")
        for t, n in with_type.items()
    ]
    return [
        mark_safe(
            category_chart(size_bars, title="Clusters by size", x_label="accounts", y_label="clusters")
        ),
        mark_safe(
            category_chart(
                type_bars,
                title="Link types (strong blue, weak green)",
                x_label="link type",
                y_label="clusters",
            )
        ),
    ]


def _link_rows(cluster: AccountCluster) -> list[dict]:
    rows = []
    for link_type, (label, _, strength, meaning) in LINK_TYPES.items():
        count = (cluster.link_counts or {}).get(link_type, 0)
        if count:
            rows.append(
                {
                    "type": link_type,
                    "label": label,
                    "strength": strength,
                    "meaning": meaning,
                    "accounts": count,
                }
            )
    return rows


@require_GET
@role_required(VIEWER)
def cluster_list(request: HttpRequest) -> HttpResponse:
    form = ClusterFilterForm(request.GET or None)
    clusters = _filtered(form, AccountCluster.objects.select_related("reviewer"))
    page = Paginator(clusters.order_by("-is_candidate", "-size", "pk"), PAGE).get_page(
        request.GET.get("page")
    )
    for cluster in page:
        cluster.link_rows = _link_rows(cluster)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "total": page.paginator.count,
        "charts": _charts(_filtered(form, AccountCluster.objects.all())),
        "query": query.urlencode(),
        "last_linked": last_linked(),
    }
    return render(request, "web/clusters.html", context)


@require_GET
@role_required(VIEWER)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(AccountCluster.objects.select_related("reviewer"), pk=pk)
    members = (
        AccountClusterMember.objects.filter(cluster=cluster)
        .select_related("account", "account__alert")
        .annotate(match_count=Count("account__matches", distinct=True))
        .order_by(F("account__alert__score").desc(nulls_last=True), "account_id")
    )
    page = Paginator(members, MEMBER_PAGE).get_page(request.GET.get("page"))
    link_rows = _link_rows(cluster)
    bars = [
        (row["label"], row["accounts"], "#2753c9" if row["strength"] == "strong" else "#0f766e")
        for row in link_rows
    ]
    context = {
        "cluster": cluster,
        "page": page,
        "link_rows": link_rows,
        "link_chart": mark_safe(
            category_chart(
                bars, title="Members tied by each link type", x_label="link type", y_label="accounts"
            )
        ),
        "can_decide": role_at_least(request.user, REVIEWER),
        "query": "",
        "reports": cluster.reports.select_related("subscription").order_by("-created_at", "-pk")[:20],
    }
    if cluster.status == Status.CONFIRMED:
        context["changed_since_review"] = members_changed_since_review(cluster)
        context["triggers"] = [] if context["changed_since_review"] else triggers(cluster)
    return render(request, "web/clusters_detail.html", context)


@require_POST
@role_required(REVIEWER)
def cluster_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(AccountCluster, pk=pk)
    back = reverse("web:cluster", args=[cluster.pk])
    form = ClusterDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    decision = form.cleaned_data["decision"]
    cluster_decision_review(
        cluster=cluster,
        status=DECISION_STATUS[decision],
        note=form.cleaned_data["note"],
        user=request.user,
        ip_address=client_ip(request),
        details={"decision": decision},
    )
    status = cluster.get_status_display().lower()
    messages.success(request, f"{DECISION_LABELS[decision]}: cluster #{cluster.pk} is now {status}.")
    return redirect(back)


@require_POST
@role_required(REVIEWER)
def cluster_report_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Prepare the §4.3.6 reports of a confirmed cluster; the reviewer checks and sends each."""
    cluster = get_object_or_404(AccountCluster, pk=pk)
    try:
        to_collection, _ = cluster_report_prepare(
            cluster=cluster, indicator=request.POST.get("indicator", "")[:300], user=request.user
        )
    except FeedbackError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("web:cluster", args=[cluster.pk]) + "#report")
    messages.success(
        request,
        "Two reports prepared: the new objects for the hub's collection (this page) and the "
        "sighting for its inbox. Check exactly what will leave this node, then send each.",
    )
    return redirect("web:feedback-report", pk=to_collection.pk)
