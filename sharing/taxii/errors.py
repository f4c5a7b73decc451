"""TAXII error resources (§3.6.1) for every failure, including DRF's own exceptions."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from sharing.taxii.media import TAXII_MEDIA_TYPE

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}


class TaxiiError(exceptions.APIException):
    """Raise with an HTTP status and a human-readable description."""

    def __init__(self, status_code: int, description: str):
        self.status_code = status_code
        super().__init__(detail=description)


def error_body(status_code: int, description: str) -> dict:
    return {
        "title": TITLES.get(status_code, "Error"),
        "description": description,
        "http_status": str(status_code),
    }


def taxii_exception_handler(exc, context) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("the requested resource does not exist or is not visible to you")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real server bug: let Django log it
    code = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else "; ".join(_flatten(exc.detail))
    headers = {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = status.HTTP_401_UNAUTHORIZED
        view = context.get("view")
        request = context.get("request")
        if view is not None and request is not None:
            headers["WWW-Authenticate"] = view.get_authenticate_header(request) or 'Bearer realm="MDX Hub"'
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    return Response(error_body(code, str(detail)), status=code, headers=headers)


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [f"{k}: {m}" for k, v in detail.items() for m in _flatten(v)]
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item)]
    return [str(detail)]


def taxii_error_response(status_code: int, description: str) -> HttpResponse:
    """A TAXII error outside DRF's view machinery (unknown URLs under /taxii2/)."""
    import json

    return HttpResponse(
        json.dumps(error_body(status_code, description)), status=status_code, content_type=TAXII_MEDIA_TYPE
    )
