"""Base of the REST endpoints over node-private data (matches, alerts, quarantine, clusters).

That data describes this node's own customer accounts, which never leave the provider
(DOMAIN.md §4.4): only an admin-scoped token of the node's operator organisation reaches it.
Lists are keyset pages behind an opaque ``cursor``.
"""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from rest_framework.utils.urls import replace_query_param

from sharing.api.errors import ApiError
from sharing.api.views import RestApiView
from sharing.numbers import natural_number

DEFAULT_PAGE_SIZE = 100


class NodePrivateApi(RestApiView):
    """Every method needs an admin-scoped token of the node operator."""

    private_data = "node-private data"  # named in the 403

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.require_operator_admin(self.private_data)

    def page_size(self) -> int:
        raw = self.request.query_params.get("page_size")
        limit = settings.TAXII_MAX_PAGE_SIZE
        if raw in (None, ""):
            return min(DEFAULT_PAGE_SIZE, limit)
        size = natural_number(raw)
        if size is None or not 1 <= size <= limit:
            raise ApiError(400, f"page_size must be an integer from 1 to {limit}, got {raw!r}")
        return size

    def cursor(self) -> list[str] | None:
        """The parts ``next_link`` wrote into the previous page's ``next``."""
        raw = self.request.query_params.get("cursor")
        if not raw:
            return None
        try:
            return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split("|")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ApiError(400, "invalid cursor: pass the 'next' link unchanged") from None

    def cursor_numbers(self, count: int) -> list[int] | None:
        """A cursor of ``count`` whole numbers; anything else is a 400."""
        parts = self.cursor()
        if parts is None:
            return None
        numbers = [natural_number(part) for part in parts]
        if len(numbers) != count or None in numbers:
            raise ApiError(400, "invalid cursor: pass the 'next' link unchanged")
        return numbers

    def next_link(self, *parts: object) -> str:
        token = base64.urlsafe_b64encode("|".join(map(str, parts)).encode()).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), "cursor", token)
