"""Per-token rate limit for the REST API, counted in Django's cache (Redis when REDIS_URL is set)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """Counts requests per API token (its lookup prefix), not per client address.

    Clients behind one NAT or proxy do not share a budget, and one token cannot dodge its
    limit by spreading over many addresses. Unauthenticated requests are not counted here:
    they are refused with 401 before throttling runs.
    """

    scope = "token"

    def get_rate(self) -> str | None:
        # Read at request time, not at import (DRF's THROTTLE_RATES is frozen when the class
        # is defined), so a changed REST_FRAMEWORK setting takes effect.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"no DEFAULT_THROTTLE_RATES entry for scope {self.scope!r}") from None

    def get_cache_key(self, request, view) -> str | None:
        prefix = getattr(request.auth, "prefix", None)
        if not prefix:
            return None
        return self.cache_format % {"scope": self.scope, "ident": prefix}
