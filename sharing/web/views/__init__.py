"""Web views: the signed-in home page and the /healthz endpoint."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sharing.health import check_broker, check_database
from sharing.models import Collection, Membership, Organisation


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("organisation")
    context = {
        "memberships": memberships,
        "organisation_count": Organisation.objects.count(),
        "collection_count": Collection.objects.count(),
    }
    return render(request, "web/home.html", context)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {}
    ok, detail = check_database()
    checks["database"] = {"ok": ok, "detail": detail}
    broker = check_broker()
    if broker is not None:
        checks["broker"] = {"ok": broker[0], "detail": broker[1]}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
