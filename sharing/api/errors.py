"""REST error bodies: every 4xx is JSON with a readable ``detail`` (and per-field ``errors`` when useful)."""

from __future__ import annotations

import math

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from sharing.services import ServiceError


class ApiError(exceptions.APIException):
    """Raise with an HTTP status and a message that is safe to show to the caller."""

    def __init__(self, status_code: int, message: str):
        self.status_code = status_code
        super().__init__(detail=message)


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [
            f"{key}: {message}" if key != "non_field_errors" else message
            for key, value in detail.items()
            for message in _flatten(value)
        ]
    if isinstance(detail, list):
        return [message for item in detail for message in _flatten(item)]
    return [str(detail)]


def api_exception_handler(exc, context) -> Response | None:
    """DRF's handler (auth headers, Retry-After) with one body shape: {"detail": str[, "errors": {...}]}."""
    if isinstance(exc, ServiceError):
        exc = exceptions.ValidationError(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("the requested resource does not exist or is not visible to you")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real server bug: let Django log it
    body: dict = {"detail": "; ".join(_flatten(exc.detail))}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["errors"] = exc.detail
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        # DRF floors the wait, which can announce "Retry-After: 0" while still throttled.
        response["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    response.data = body
    return response
