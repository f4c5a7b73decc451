"""The object browser and object detail: versions, publication state, relationships, neighbourhood."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from indicators.matching_service import ReleaseError, quarantine_threshold
from indicators.models import IndicatorMatchState, StixObject
from sharing.models import CollectionEntry, SubmissionItem
from sharing.net import client_ip
from sharing.review import quarantine_release_review, role_at_least
from sharing.web.charts import neighbourhood_graph
from sharing.web.forms import ObjectFilterForm
from sharing.web.permissions import REVIEWER, VIEWER, role_required
from sharing.web.presenters import attach_decay, graph_nodes, object_view, relationships

PAGE = 50


def _with_state(queryset):
    return queryset.annotate(
        is_published=Exists(CollectionEntry.objects.filter(stix_object=OuterRef("pk"))),
        is_pending=Exists(
            SubmissionItem.objects.filter(stix_object=OuterRef("pk"), state=SubmissionItem.State.PENDING)
        ),
        is_rejected=Exists(
            SubmissionItem.objects.filter(stix_object=OuterRef("pk"), state=SubmissionItem.State.FAILURE)
        ),
    )


@require_GET
@role_required(VIEWER)
def object_list(request: HttpRequest) -> HttpResponse:
    types = list(StixObject.objects.order_by("type").values_list("type", flat=True).distinct())
    form = ObjectFilterForm(request.GET or None, types=types)
    objects = StixObject.objects.defer("json_text", "data").order_by("-stored_at", "-pk")
    if form.is_valid():
        data = form.cleaned_data
        if data.get("q"):
            objects = objects.filter(Q(name__icontains=data["q"]) | Q(stix_id__icontains=data["q"]))
        if data.get("type"):
            objects = objects.filter(type=data["type"])
        if data.get("tlp"):
            objects = objects.filter(tlp=data["tlp"])
    page = Paginator(_with_state(objects), PAGE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    attach_decay(page.object_list)
    params = request.GET.copy()
    params.pop("page", None)
    context = {"form": form, "page": page, "query": params.urlencode()}
    template = "web/_object_results.html" if request.htmx and not request.htmx.boosted else "web/objects.html"
    return render(request, template, context)


@require_GET
@role_required(VIEWER)
def object_detail(request: HttpRequest, pk: int) -> HttpResponse:
    obj = get_object_or_404(StixObject, pk=pk)
    versions = list(_with_state(StixObject.objects.filter(stix_id=obj.stix_id)).order_by("-modified"))
    entries = CollectionEntry.objects.filter(stix_object__stix_id=obj.stix_id).select_related("collection")
    published_in: dict[int, list] = {}
    for entry in entries:
        published_in.setdefault(entry.stix_object_id, []).append(entry)
    decisions = SubmissionItem.objects.filter(stix_object__stix_id=obj.stix_id).select_related(
        "submission__organisation", "decided_by"
    )
    edges = relationships(obj)
    centre, neighbours = graph_nodes(obj, edges)
    context = {
        "obj": obj,
        "match_state": IndicatorMatchState.objects.filter(indicator=obj).first(),
        "can_release": role_at_least(request.user, REVIEWER),
        "threshold": quarantine_threshold(),
        "view": object_view(obj),
        "versions": [(v, published_in.get(v.pk, [])) for v in versions],
        "decisions": decisions.order_by("-submission__created_at"),
        "edges": edges,
        "graph": neighbourhood_graph(centre, neighbours),
    }
    return render(request, "web/object.html", context)


@require_POST
@role_required(REVIEWER)
def quarantine_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept an over-matching indicator version: its matches raise alerts again."""
    obj = get_object_or_404(StixObject, pk=pk)
    try:
        accounts = quarantine_release_review(indicator=obj, user=request.user, ip_address=client_ip(request))
    except ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Released: the alerts of {accounts} matched account(s) were rescored.")
    return redirect("web:object-detail", pk=pk)
