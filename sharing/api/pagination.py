"""Keyset paging over collection entries by (date_added, entry id): no row is skipped or repeated."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from sharing.api.errors import ApiError
from sharing.numbers import natural_number

DEFAULT_PAGE_SIZE = 100


def encode_cursor(date_added: datetime, entry_id: int) -> str:
    raw = f"{date_added.isoformat()}|{entry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, int]:
    """(date_added, entry id) of the last row of the previous page; ApiError 400 if malformed."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        stamp, _, entry = text.partition("|")
        date_added = datetime.fromisoformat(stamp)
        entry_id = int(entry)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid cursor: pass the 'next' link of the previous page unchanged") from None
    if timezone.is_naive(date_added) or entry_id < 0:
        raise ApiError(400, "invalid cursor: pass the 'next' link of the previous page unchanged")
    return date_added, entry_id


class KeysetPagination:
    """``?page_size=`` (1 … TAXII_MAX_PAGE_SIZE) and an opaque ``?cursor=``; answers {"next", "results"}."""

    page_size_param = "page_size"
    cursor_param = "cursor"

    def __init__(self, request: Request):
        self.request = request
        self.max_page_size = settings.TAXII_MAX_PAGE_SIZE
        raw_size = request.query_params.get(self.page_size_param)
        if raw_size is None or raw_size == "":
            self.page_size = min(DEFAULT_PAGE_SIZE, self.max_page_size)
        else:
            size = natural_number(raw_size)
            if size is None or not 1 <= size <= self.max_page_size:
                raise ApiError(
                    400, f"page_size must be an integer from 1 to {self.max_page_size}, got {raw_size!r}"
                )
            self.page_size = size
        raw_cursor = request.query_params.get(self.cursor_param)
        self.after = decode_cursor(raw_cursor) if raw_cursor else None
        self.next_link: str | None = None

    def paginate(self, entries: QuerySet) -> list:
        """One page of entries (ordered by date_added, id); remembers the next link."""
        if self.after is not None:
            date_added, entry_id = self.after
            entries = entries.filter(Q(date_added__gt=date_added) | Q(date_added=date_added, pk__gt=entry_id))
        rows = list(entries.order_by("date_added", "pk")[: self.page_size + 1])
        if len(rows) > self.page_size:
            rows = rows[: self.page_size]
            last = rows[-1]
            self.next_link = replace_query_param(
                self.request.build_absolute_uri(), self.cursor_param, encode_cursor(last.date_added, last.pk)
            )
        return rows

    def response(self, results: list) -> Response:
        return Response({"next": self.next_link, "results": results})
