"""The client address of a request, honouring X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not remote or not forwarded or not settings.TRUSTED_PROXIES:
        return remote
    try:
        hops = [ipaddress.ip_address(remote)]
        hops += [ipaddress.ip_address(h.strip()) for h in reversed(forwarded.split(","))]
    except ValueError:
        return remote
    # Walk back from the nearest hop; the first address not owned by a trusted proxy is the client.
    for hop in hops:
        if not any(hop in net for net in settings.TRUSTED_PROXIES):
            return str(hop)
    return str(hops[-1])
