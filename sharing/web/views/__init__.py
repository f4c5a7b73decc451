"""Web UI views, split by page area; ``home`` (the dashboard) and ``healthz`` are routed in config/urls."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sharing.health import check_broker, check_database
from sharing.web.views.dashboard import home

__all__ = ["healthz", "home"]


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
