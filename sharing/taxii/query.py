"""TAXII 2.1 URL filtering (§3.4) and stateless keyset paging (§3.5) over collection entries."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from indicators.models import StixObject
from indicators.services import UNVERSIONED, parse_timestamp
from sharing.models import CollectionEntry
from sharing.numbers import natural_number
from sharing.taxii.errors import TaxiiError

_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]--[0-9a-fA-F-]{36}$")
_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
VERSION_KEYWORDS = frozenset({"first", "last", "all"})
SPEC_VERSIONS = frozenset({"2.0", "2.1"})


def taxii_timestamp(value: datetime) -> str:
    """RFC 3339 UTC with microseconds, the precision TAXII §3.4.2 asks of date_added."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stix_timestamp(value: datetime) -> str:
    """A version timestamp with milliseconds when that loses nothing, else microseconds."""
    if value.microsecond % 1000 == 0:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return taxii_timestamp(value)


def version_text(modified: datetime, date_added: datetime) -> str:
    # Objects without created/modified (SCOs) are versioned by when they were added.
    return taxii_timestamp(date_added) if modified == UNVERSIONED else stix_timestamp(modified)


def parse_query_timestamp(name: str, raw: str) -> datetime:
    if not _TIMESTAMP_RE.match(raw.strip()):
        raise TaxiiError(
            400, f"{name} must be an RFC 3339 UTC timestamp such as 2026-11-23T00:00:00.000Z, got {raw!r}"
        )
    try:
        return parse_timestamp(raw.strip())
    except ValueError:
        raise TaxiiError(400, f"{name} is not a valid timestamp: {raw!r}") from None


@dataclass(frozen=True)
class Cursor:
    """Position after the last entry of a page: (sort key, entry id)."""

    key: datetime
    entry_id: int

    def encode(self) -> str:
        # Integer microseconds: a float would lose the last digit of a 2026 timestamp.
        micros = (self.key - _EPOCH) // _MICROSECOND
        return base64.urlsafe_b64encode(f"{micros}:{self.entry_id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            micros, _, entry = raw.partition(":")
            return cls(_EPOCH + int(micros) * _MICROSECOND, int(entry))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise TaxiiError(400, "next is not a value this server issued") from None


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class TaxiiQuery:
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    spec_versions: tuple[str, ...] = ()
    version_keywords: frozenset[str] = frozenset({"last"})
    version_times: tuple[datetime, ...] = ()
    added_after: datetime | None = None
    limit: int = 1000
    cursor: Cursor | None = None
    by_version: bool = False  # versions endpoint: order by version instead of date_added

    @classmethod
    def from_params(
        cls, params, *, allowed: set[str], default_version: str = "last", by_version: bool = False
    ) -> TaxiiQuery:
        """Parse and validate the query string; any malformed value is a 400 (§3.4)."""
        known = {
            "match[id]",
            "match[type]",
            "match[version]",
            "match[spec_version]",
            "added_after",
            "limit",
            "next",
        }
        for name in params:
            if name.startswith("match[") and name not in known:
                raise TaxiiError(
                    400,
                    f"unsupported filter {name}; this server supports "
                    f"{', '.join(sorted(n for n in known if n.startswith('match[')))}",
                )
            if name in known and name not in allowed:
                raise TaxiiError(400, f"{name} is not supported on this endpoint")
            if name in known and len(params.getlist(name)) > 1:
                raise TaxiiError(400, f"{name} is given more than once; use a comma-separated list")
        ids = tuple(_split(params.get("match[id]", "")))
        for stix_id in ids:
            if not _ID_RE.match(stix_id):
                raise TaxiiError(400, f"match[id]: {stix_id!r} is not a STIX identifier")
        types = tuple(_split(params.get("match[type]", "")))
        for stix_type in types:
            if not _TYPE_RE.match(stix_type):
                raise TaxiiError(400, f"match[type]: {stix_type!r} is not a STIX type name")
        spec_versions = tuple(_split(params.get("match[spec_version]", "")))
        for spec in spec_versions:
            if spec not in SPEC_VERSIONS:
                raise TaxiiError(400, f"match[spec_version]: {spec!r} is not 2.0 or 2.1")
        keywords, times = set(), []
        raw_versions = params.get("match[version]")
        for item in _split(raw_versions if raw_versions is not None else default_version):
            if item in VERSION_KEYWORDS:
                keywords.add(item)
            else:
                times.append(parse_query_timestamp("match[version]", item))
        if raw_versions is not None and not keywords and not times:
            raise TaxiiError(400, "match[version] is empty")
        added_after = None
        if params.get("added_after") is not None:
            added_after = parse_query_timestamp("added_after", params["added_after"])
        maximum = settings.TAXII_MAX_PAGE_SIZE
        limit = maximum
        if params.get("limit") is not None:
            wanted = natural_number(params["limit"].strip())
            if wanted is None or wanted < 1:
                raise TaxiiError(400, f"limit must be a positive integer, got {params['limit']!r}")
            limit = min(wanted, maximum)
        cursor = Cursor.decode(params["next"].strip()) if params.get("next") is not None else None
        return cls(
            ids=ids,
            types=types,
            spec_versions=spec_versions,
            version_keywords=frozenset(keywords),
            version_times=tuple(times),
            added_after=added_after,
            limit=limit,
            cursor=cursor,
            by_version=by_version,
        )

    def filter(self, entries: QuerySet, *, ceiling_rank: int) -> QuerySet:
        """Apply every match[...] filter and added_after; ordering and paging come in page().

        ``first`` and ``last`` are judged among the versions the caller can see: a version
        above the caller's TLP ceiling is treated as absent (§3.4.2 with our grant model).
        """
        if self.ids:
            entries = entries.filter(stix_id__in=self.ids)
        if self.types:
            entries = entries.filter(type__in=self.types)
        if self.spec_versions:
            entries = entries.filter(spec_version__in=self.spec_versions)
        if self.added_after is not None:
            entries = entries.filter(date_added__gt=self.added_after)
        if "all" not in self.version_keywords:
            wanted = Q(pk__in=[])
            if "last" in self.version_keywords:
                # is_latest covers nearly every row; the subquery only runs for older versions,
                # which are "last" for this caller when every newer one is above the ceiling.
                wanted |= Q(is_latest=True) | (
                    Q(is_latest=False)
                    & ~Exists(self._visible_versions(ceiling_rank).filter(modified__gt=OuterRef("modified")))
                )
            if "first" in self.version_keywords:
                wanted |= ~Exists(
                    self._visible_versions(ceiling_rank).filter(modified__lt=OuterRef("modified"))
                )
            if self.version_times:
                wanted |= Q(modified__in=self.version_times) & ~Q(modified=UNVERSIONED)
                wanted |= Q(modified=UNVERSIONED, date_added__in=self.version_times)
            entries = entries.filter(wanted)
        return entries

    @staticmethod
    def _visible_versions(ceiling_rank: int) -> QuerySet:
        return CollectionEntry.objects.filter(
            collection_id=OuterRef("collection_id"), stix_id=OuterRef("stix_id"), tlp_rank__lte=ceiling_rank
        )

    def page(self, entries: QuerySet, *fields: str) -> tuple[list[tuple], bool]:
        """One keyset page of ``fields`` (the first two are always the sort key and id)."""
        key = "modified" if self.by_version else "date_added"
        rows = list(self._ordered(entries).values_list(key, "id", *fields)[: self.limit + 1])
        more = len(rows) > self.limit
        return rows[: self.limit], more

    def page_with_json(self, entries: QuerySet) -> tuple[list[tuple], bool]:
        """One keyset page as (date_added, entry id, stored JSON text) rows.

        The page is cut from the entry index alone inside a CTE and only its rows join the
        object store, so the plan stays a bounded index scan whatever the table statistics.
        """
        page = self._ordered(entries).values("date_added", "id", "stix_object_id")[: self.limit + 1]
        sql, params = page.query.sql_with_params()
        store = StixObject._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH page AS ({sql}) SELECT page.date_added, page.id, o.json_text FROM page "
                f"JOIN {store} o ON o.id = page.stix_object_id ORDER BY page.date_added, page.id",
                params,
            )
            rows = cursor.fetchall()
        if connection.vendor == "sqlite":  # SQLite hands back text; PostgreSQL aware datetimes
            rows = [(parse_timestamp(str(added).replace(" ", "T")), pk, text) for added, pk, text in rows]
        more = len(rows) > self.limit
        return rows[: self.limit], more

    def _ordered(self, entries: QuerySet) -> QuerySet:
        key = "modified" if self.by_version else "date_added"
        entries = entries.order_by(key, "id")
        if self.cursor is not None:
            # (key, id) > (X, Y), written so the first term bounds an index range scan: a bare
            # OR would make PostgreSQL walk the collection from its start on every deep page.
            entries = entries.filter(**{f"{key}__gte": self.cursor.key}).filter(
                Q(**{f"{key}__gt": self.cursor.key}) | Q(id__gt=self.cursor.entry_id)
            )
        return entries

    def next_cursor(self, rows: list[tuple]) -> str:
        return Cursor(rows[-1][0], rows[-1][1]).encode()
