"""Alerts on this node's accounts: the list (filters, score bars, charts), account detail with the
evidence of every match, and the reviewer's decision (Confirm / False positive / Dismiss).

Decisions go through ``sharing.review.alert_review`` — the same service the REST
``POST /api/v1/alerts/<id>/decision/`` uses — which records and audits them as ``alert.decide``.
Everything here is node-private (DOMAIN §4.4): viewers may read, reviewers and admins decide.
"""

from __future__ import annotations

import json
import math
from html import escape

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from indicators.matching_service import DecisionError, quarantine_threshold
from indicators.models import Account, AccountClusterMember, Alert, IndicatorMatchState, Match
from sharing.feedback_outbound import indicator_source
from sharing.net import client_ip
from sharing.review import alert_review, role_at_least
from sharing.web.permissions import REVIEWER, VIEWER, role_required

PAGE = 50
QUARANTINED = IndicatorMatchState.Status.QUARANTINED
NO_TIER = "-"  # the filter value for accounts without a tier

# The web buttons and the alert status each records. "Dismiss" closes the alert without a
# verdict: the nearest status alert_decide accepts is "triaged" (looked at, no verdict). Not
# "withdrawn": the matcher uses that for alerts that lost their evidence and reopens a
# withdrawn alert as "new" at the next rescore, which would silently undo the dismissal.
DECISION_STATUS = {
    "confirm": Alert.Status.CONFIRMED,
    "false-positive": Alert.Status.FALSE_POSITIVE,
    "dismiss": Alert.Status.TRIAGED,
}
# A decided alert can be reported to the hub an indicator came from, as this review state.
REPORTABLE = {
    Alert.Status.CONFIRMED: "confirmed",
    Alert.Status.FALSE_POSITIVE: "false-positive",
    Alert.Status.TRIAGED: "inconclusive",
}
DECISION_LABELS = {"confirm": "Confirm", "false-positive": "False positive", "dismiss": "Dismiss"}

STATUS_COLOURS = {
    Alert.Status.NEW: "#b3261e",
    Alert.Status.TRIAGED: "#a16207",
    Alert.Status.CONFIRMED: "#7f1d1d",
    Alert.Status.FALSE_POSITIVE: "#1b7f4c",
    Alert.Status.WITHDRAWN: "#5b6475",
}


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(required=False)
    min_score = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Min score",
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "0 … 1"}),
    )  # fmt: skip
    tier = forms.ChoiceField(required=False, label="Account tier")
    indicator = forms.CharField(
        required=False, max_length=300, label="Indicator",
        widget=forms.TextInput(attrs={"placeholder": "name or STIX id"}),
    )  # fmt: skip

    def __init__(self, *args, tiers: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), ("open", "Open (new or triaged)")] + list(
            Alert.Status.choices
        )
        self.fields["tier"].choices = [("", "All tiers")] + [(t or NO_TIER, t or "(none)") for t in tiers]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=list(DECISION_LABELS.items()))
    note = forms.CharField(required=False, max_length=5000, strip=True)


def _alerts():
    top = Match.objects.filter(account_id=OuterRef("account_id")).order_by("-weight", "-matched_at", "pk")
    return Alert.objects.select_related("account", "reviewer").annotate(
        match_count=Count("account__matches", distinct=True),
        top_indicator_pk=Subquery(top.values("indicator_id")[:1]),
        top_indicator_name=Subquery(top.values("indicator__name")[:1]),
        top_indicator_stix_id=Subquery(top.values("indicator__stix_id")[:1]),
        has_quarantined=Exists(
            Match.objects.filter(
                account_id=OuterRef("account_id"), indicator__match_state__status=QUARANTINED
            )
        ),
    )


def _filtered(form: AlertFilterForm, alerts):
    if not form.is_valid():
        return alerts
    data = form.cleaned_data
    if data.get("status") == "open":
        alerts = alerts.filter(status__in=Alert.OPEN)
    elif data.get("status"):
        alerts = alerts.filter(status=data["status"])
    if data.get("min_score") is not None:
        alerts = alerts.filter(score__gte=data["min_score"])
    if data.get("tier"):
        alerts = alerts.filter(account__tier="" if data["tier"] == NO_TIER else data["tier"])
    indicator = (data.get("indicator") or "").strip()
    if indicator:
        alerts = alerts.filter(
            Exists(
                Match.objects.filter(account_id=OuterRef("account_id")).filter(
                    Q(indicator__stix_id=indicator) | Q(indicator__name__icontains=indicator)
                )
            )
        )
    return alerts


def category_chart(
    bars: list[tuple[str, int, str]], *, title: str, x_label: str, y_label: str = "alerts"
) -> str:
    """A small bar chart of labelled categories: (label, count, colour). Labels are escaped."""
    width, height = 420, 190
    left, right, top, bottom = 40, 10, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((n for _, n, _ in bars), default=0)
    peak = 4 if peak <= 4 else int(math.ceil(peak / 4) * 4)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(5):
        value = peak * i // 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value}</text>')
    slot = plot_w / max(len(bars), 1)
    bar = max(slot * 0.7, 1)
    for index, (label, n, colour) in enumerate(bars):
        x = left + index * slot + (slot - bar) / 2
        h = plot_h * n / peak if peak else 0
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{escape(colour)}" '
            f'rx="1.5"><title>{escape(label)}: {n}</title></rect>'
            f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" class="tick" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="axis"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 4}" class="axis-label" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="11" y="{top + plot_h / 2}" class="axis-label" text-anchor="middle" '
        f'transform="rotate(-90 11 {top + plot_h / 2})">{escape(y_label)}</text>'
        "</svg>"
    )
    return "".join(parts)


def _charts(alerts) -> list[SafeString]:
    by_status = dict(alerts.order_by().values_list("status").annotate(n=Count("pk")))
    status_bars = [
        (label, by_status.get(value, 0), STATUS_COLOURS[value]) for value, label in Alert.Status.choices
    ]
    bins = [0] * 10
    for score in alerts.order_by().values_list("score", flat=True):
        bins[min(int(score * 10), 9)] += 1
    score_bars = [
        (f"{i / 10:.1f}", n, "#b3261e" if i >= 8 else "#a16207" if i >= 5 else "#5b6475")
        for i, n in enumerate(bins)
    ]
    return [
        mark_safe(category_chart(status_bars, title="Alerts by status", x_label="status")),
        mark_safe(category_chart(score_bars, title="Score histogram", x_label="score (bin start)")),
    ]


def _tiers() -> list[str]:
    return sorted(set(Account.objects.filter(alert__isnull=False).values_list("tier", flat=True)))


@require_GET
@role_required(VIEWER)
def alert_list(request: HttpRequest) -> HttpResponse:
    form = AlertFilterForm(request.GET or None, tiers=_tiers())
    alerts = _filtered(form, _alerts())
    page = Paginator(alerts.order_by("-score", "pk"), PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "total": page.paginator.count,
        "charts": _charts(_filtered(form, Alert.objects.all())),  # no joins: one row per alert
        "query": query.urlencode(),
        "threshold": quarantine_threshold(),
    }
    return render(request, "web/alerts.html", context)


def _account_context(request: HttpRequest, account: Account, alert: Alert | None) -> dict:
    matches = list(
        Match.objects.filter(account=account)
        .select_related("indicator", "indicator__match_state")
        .order_by("-weight", "-matched_at", "pk")
    )
    sources = {m.indicator.stix_id: indicator_source(m.indicator.stix_id) for m in matches}
    reportable = alert is not None and alert.status in REPORTABLE
    rows = []
    for match in matches:
        state = getattr(match.indicator, "match_state", None)
        rows.append(
            {
                "match": match,
                "indicator": match.indicator,
                "state": state,
                "quarantined": state is not None and state.status == QUARANTINED,
                "evidence": json.dumps(match.evidence, indent=2, sort_keys=True, ensure_ascii=False),
                "source": sources[match.indicator.stix_id],
                "report_state": REPORTABLE.get(alert.status) if reportable else None,
            }
        )
    membership = AccountClusterMember.objects.select_related("cluster").filter(account=account).first()
    return {
        "account": account,
        "alert": alert,
        "cluster": membership.cluster if membership else None,
        "rows": rows,
        "quarantined_count": sum(r["quarantined"] for r in rows),
        "threshold": quarantine_threshold(),
        "can_decide": alert is not None and role_at_least(request.user, REVIEWER),
        "decisions": list(DECISION_LABELS.items()),
        "decision_status": {k: v.value for k, v in DECISION_STATUS.items()},
    }


@require_GET
@role_required(VIEWER)
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("account", "reviewer"), pk=pk)
    return render(request, "web/account_detail.html", _account_context(request, alert.account, alert))


@require_GET
@role_required(VIEWER)
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=pk)
    alert = Alert.objects.select_related("reviewer").filter(account=account).first()
    return render(request, "web/account_detail.html", _account_context(request, account, alert))


@require_POST
@role_required(REVIEWER)
def alert_decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("account"), pk=pk)
    form = DecisionForm(request.POST)
    back = reverse("web:alert", args=[alert.pk])
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    decision = form.cleaned_data["decision"]
    try:
        alert_review(
            alert=alert,
            status=DECISION_STATUS[decision],
            note=form.cleaned_data["note"],
            user=request.user,
            ip_address=client_ip(request),
            details={"decision": decision},
        )
    except DecisionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{DECISION_LABELS[decision]}: alert on account {alert.account.account_id} is now "
            f"{alert.get_status_display().lower()}.",
        )
    return redirect(back)
