"""Writing a batch of parsed accounts: upsert, delete old attribute rows, insert new ones
(PostgreSQL ``COPY``; a portable ``INSERT`` elsewhere), in one transaction."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import orjson
from django.db import connection, models, transaction
from django.utils import timezone

from indicators.accounts.lines import _ACCOUNT_COLUMNS, ImportResult, _Parsed
from indicators.models import (
    Account,
    AccountApiKey,
    AccountClient,
    AccountIdentifier,
    AccountIp,
    AccountLshBand,
    AccountPayment,
    AccountPromptSignature,
    AccountTiming,
)

# --- Writing a batch ----------------------------------------------------------------------------

_IDENTIFIER_COLUMNS = ("identifier_type", "key_id", "value", "normalization", "first_seen", "last_seen")
_PAYMENT_COLUMNS = (
    "instrument_type", "basis", "key_id", "value", "card_iin", "card_network", "card_funding",
    "is_virtual", "issuer_country", "first_used", "last_used",
)  # fmt: skip
_IP_COLUMNS = (
    "ip", "ip_low", "ip_high", "asn", "proxy_type", "is_signup", "first_seen", "last_seen", "request_count",
)  # fmt: skip
_API_KEY_COLUMNS = ("key_sha256", "created_at", "last_used_at", "revoked_at")
_CLIENT_COLUMNS = (
    "user_agent", "sdk_name", "sdk_version", "http_library", "ja4", "ja4h", "header_order_sha256",
    "first_seen", "last_seen", "request_count",
)  # fmt: skip
_TIMING_COLUMNS = (
    "window_start", "window_end", "method", "request_count", "iat_histogram", "hour_of_day_histogram",
    "median_iat_ms", "iat_cv", "max_concurrency", "release_switch_latency_h",
)  # fmt: skip
# (model, columns after account_id, the _Parsed attribute holding the rows)
_ATTRIBUTE_TABLES: tuple[tuple[type[models.Model], tuple[str, ...], str], ...] = (
    (AccountIdentifier, _IDENTIFIER_COLUMNS, "identifiers"),
    (AccountPayment, _PAYMENT_COLUMNS, "payments"),
    (AccountIp, _IP_COLUMNS, "ips"),
    (AccountApiKey, _API_KEY_COLUMNS, "api_keys"),
    (AccountClient, _CLIENT_COLUMNS, "clients"),
    (AccountTiming, _TIMING_COLUMNS, "timing"),
)
# Children before parents, so each delete is a single fast query.
_DELETE_ORDER = (AccountLshBand, AccountPromptSignature, *(table[0] for table in _ATTRIBUTE_TABLES))
_ACCOUNT_UPDATE_FIELDS = [*_ACCOUNT_COLUMNS, "changed_at"]


def _quoted(model: type[models.Model], columns: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """The quoted table name and column list of ``columns`` (field names or attnames)."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    return quote(model._meta.db_table), names


class _Writer:
    """Batch writes through the ORM and ``executemany``: portable (SQLite, tests)."""

    def prepare(self, batch: list[_Parsed]) -> _Prepared | None:
        """Work on a batch that needs no database; runs in the read-ahead thread."""
        return None

    def upsert(
        self, batch: list[_Parsed], now: datetime, prepared: _Prepared | None = None
    ) -> tuple[list[int], list[int]]:
        """Insert or update the accounts by account_id: (their pks in batch order, the pks of
        those that existed before)."""
        ids = [p.account_id for p in batch]
        existing = Account.objects.filter(account_id__in=ids).values_list("pk", flat=True)
        accounts = [
            Account(
                account_id=p.account_id, changed_at=now, **dict(zip(_ACCOUNT_COLUMNS, p.columns, strict=True))
            )
            for p in batch
        ]
        existing = list(existing)  # before the upsert
        Account.objects.bulk_create(
            accounts,
            update_conflicts=True,
            unique_fields=["account_id"],
            update_fields=_ACCOUNT_UPDATE_FIELDS,
        )
        return [a.pk for a in accounts], existing

    def delete(self, account_pks: list[int]) -> None:
        """Delete every attribute row of these accounts."""
        for model in _DELETE_ORDER:
            model.objects.filter(account_id__in=account_pks).delete()

    def insert_attributes(
        self, pks: list[int], batch: list[_Parsed], prepared: _Prepared | None = None
    ) -> None:
        for model, columns, attribute in _ATTRIBUTE_TABLES:
            self.insert(
                model,
                ("account_id", *columns),
                [(pk, *row) for pk, p in zip(pks, batch, strict=True) for row in getattr(p, attribute)],
            )

    def insert(self, model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        table, names = _quoted(model, columns)
        prepare = [model._meta.get_field(c).get_db_prep_save for c in columns]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})",
                [tuple(p(v, connection) for p, v in zip(prepare, row, strict=True)) for row in rows],
            )


# COPY text format: \N is NULL; backslash, tab, newline and carriage return are escaped.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_N = "\\N"


def _copy_text(value: str) -> str:
    """Free text for COPY (hashes, key ids, choices and canonical IPs never need escaping)."""
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


@lru_cache(maxsize=4096)  # an account's times repeat (created = first seen, a common last seen)
def _copy_time(value: datetime | None) -> str:
    # isoformat() of an aware datetime costs ~0.8 µs. (Equal instants in other offsets share
    # an entry: they are the same timestamptz.)
    return _N if value is None else value.isoformat()


@lru_cache(maxsize=16384)  # addresses repeat across accounts
def _copy_ip(ip: str, low: bytes, high: bytes) -> str:
    """The ip, ip_low, ip_high columns (bytea in hex format, its backslash escaped for COPY)."""
    return f"{ip}\t\\\\x{low.hex()}\t\\\\x{high.hex()}"


def _copy_tails(table: str, batch: list[_Parsed]) -> list[tuple[int, str]] | None:
    """COPY text lines of one attribute table without their account_id column, each with the
    index of its account in ``batch``; None if the table has no fast formatter.

    Written out per table (one f-string per row): formatting is a good part of the client's
    work per account, and psycopg's generic write_row costs about twice as much. It runs in the
    read-ahead thread (the account pks are not known yet): the writing thread only prefixes
    each line with its account's pk."""
    if table == "identifiers":
        return [
            (
                i,
                f"{t}\t{k}\t{v}\t{n}\t"
                f"{_N if fs is None else _copy_time(fs)}\t{_N if ls is None else _copy_time(ls)}\n",
            )
            for i, p in enumerate(batch)
            for t, k, v, n, fs, ls in p.identifiers
        ]
    if table == "payments":
        return [
            (
                i,
                f"{it}\t{b}\t{k}\t{v}\t{iin}\t{_copy_text(net)}\t{fund}\t"
                f"{_N if virt is None else 't' if virt else 'f'}\t{country}\t"
                f"{_N if fu is None else _copy_time(fu)}\t{_N if lu is None else _copy_time(lu)}\n",
            )
            for i, p in enumerate(batch)
            for it, b, k, v, iin, net, fund, virt, country, fu, lu in p.payments
        ]
    if table == "ips":
        return [
            (
                i,
                f"{_copy_ip(ip, low, high)}\t{_N if asn is None else asn}\t{proxy}\t"
                f"{'t' if signup else 'f'}\t"
                f"{_N if fs is None else _copy_time(fs)}\t{_N if ls is None else _copy_time(ls)}\t"
                f"{_N if count is None else count}\n",
            )
            for i, p in enumerate(batch)
            for ip, low, high, asn, proxy, signup, fs, ls, count in p.ips
        ]
    if table == "api_keys":
        return [
            (i, f"{sha}\t" + "\t".join(_copy_time(t) for t in times) + "\n")
            for i, p in enumerate(batch)
            for sha, *times in p.api_keys
        ]
    if table == "clients":
        return [
            (
                i,
                f"{_copy_text(ua)}\t{_copy_text(name)}\t{_copy_text(version)}\t{_copy_text(library)}\t"
                f"{_copy_text(ja4)}\t{_copy_text(ja4h)}\t{order}\t"
                f"{_N if fs is None else _copy_time(fs)}\t{_N if ls is None else _copy_time(ls)}\t"
                f"{_N if count is None else count}\n",
            )
            for i, p in enumerate(batch)
            for ua, name, version, library, ja4, ja4h, order, fs, ls, count in p.clients
        ]
    return None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch's PostgreSQL payloads, made in the read-ahead thread (no database access)."""

    accounts: str  # JSON array of [account_id, *_ACCOUNT_COLUMNS]
    tails: dict[str, list[tuple[int, str]] | None]  # _copy_tails per _Parsed attribute


class _PostgresWriter(_Writer):
    """The same writes in few round trips: the accounts in one INSERT ... ON CONFLICT fed one
    JSON parameter, old attribute rows in one DELETE statement, new ones by COPY. The ORM's
    per-value work and psycopg's conversion of Python lists dominate an import otherwise."""

    def __init__(self) -> None:
        quote = connection.ops.quote_name
        table, names = _quoted(Account, ["account_id", *_ACCOUNT_UPDATE_FIELDS])
        values = ", ".join(
            f"(r->>{i})::timestamptz" if column == "created_at" else f"r->>{i}"
            for i, column in enumerate(["account_id", *_ACCOUNT_COLUMNS])
        )
        updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in _ACCOUNT_UPDATE_FIELDS)
        # xmax = 0 on the returned row version: inserted by this statement, not updated.
        self.upsert_sql = (
            f"INSERT INTO {table} ({names}) SELECT {values}, %s FROM jsonb_array_elements(%s::jsonb) AS r "
            f"ON CONFLICT (account_id) DO UPDATE SET {updates} RETURNING account_id, id, xmax = 0"
        )
        tables = [_quoted(model, [])[0] for model in _DELETE_ORDER]
        self.delete_sql = (
            "WITH "
            + ", ".join(
                f"d{i} AS (DELETE FROM {table} WHERE account_id = ANY(%s::bigint[]))"
                for i, table in enumerate(tables)
            )
            + " SELECT 1"
        )
        self.delete_params = len(tables)

    def prepare(self, batch: list[_Parsed]) -> _Prepared:
        return _Prepared(
            orjson.dumps([(p.account_id, *p.columns) for p in batch]).decode(),
            {attribute: _copy_tails(attribute, batch) for _, _, attribute in _ATTRIBUTE_TABLES},
        )

    def upsert(
        self, batch: list[_Parsed], now: datetime, prepared: _Prepared | None = None
    ) -> tuple[list[int], list[int]]:
        prepared = prepared or self.prepare(batch)
        with connection.cursor() as cursor:
            # Do not wait at COMMIT for the WAL flush (PostgreSQL "asynchronous commit"): the
            # import is idempotent, so a server crash that loses the last few hundred
            # milliseconds of batches is repaired by importing the file again, and a batch
            # never half-applies. Waiting cost ~30% of an import's wall-clock time.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(self.upsert_sql, [now, prepared.accounts])
            returned = {account_id: (pk, created) for account_id, pk, created in cursor.fetchall()}
        pks = [returned[p.account_id][0] for p in batch]
        return pks, [pk for pk, created in returned.values() if not created]

    def delete(self, account_pks: list[int]) -> None:
        # One statement; no foreign key constraints between these tables, so any order works.
        # Without fresh statistics (autovacuum off, or a table that just grew) the planner
        # takes `account_id = ANY(<2,000 values>)` for most of the table and scans all of it,
        # once per batch: the account_id indexes are forced for this statement.
        array = "{" + ",".join(map(str, account_pks)) + "}"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)"
            )
            (seqscan, _) = cursor.fetchone()
            cursor.execute(self.delete_sql, [array] * self.delete_params)
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [seqscan])

    def insert_attributes(
        self, pks: list[int], batch: list[_Parsed], prepared: _Prepared | None = None
    ) -> None:
        prepared = prepared or self.prepare(batch)
        for model, columns, attribute in _ATTRIBUTE_TABLES:
            tails = prepared.tails[attribute]
            if tails is None:
                self.insert(
                    model,
                    ("account_id", *columns),
                    [(pk, *row) for pk, p in zip(pks, batch, strict=True) for row in getattr(p, attribute)],
                )
            elif tails:
                table, names = _quoted(model, ("account_id", *columns))
                data = "".join([f"{pks[i]}\t{tail}" for i, tail in tails])
                with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    copy.write(data)

    def insert(self, model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        table, names = _quoted(model, columns)
        json_columns = [
            i for i, c in enumerate(columns) if isinstance(model._meta.get_field(c), models.JSONField)
        ]
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                if json_columns:
                    row = list(row)
                    for i in json_columns:
                        row[i] = json.dumps(row[i])
                copy.write_row(row)


def _write_batch(
    writer: _Writer, batch: list[_Parsed], result: ImportResult, prepared: _Prepared | None = None
) -> list[int]:
    """Upsert the accounts and replace their attribute rows, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        pks, existed = writer.upsert(batch, now, prepared)
        if existed:
            writer.delete(existed)
        writer.insert_attributes(pks, batch, prepared)
        _write_signatures(writer, pks, batch)
    result.imported += len(pks)
    result.updated += len(existed)
    result.created += len(pks) - len(existed)
    result.changed_account_pks.extend(pks)
    return pks


def _write_signatures(writer: _Writer, pks: list[int], batch: list[_Parsed]) -> None:
    signatures, bands = [], []
    for pk, parsed in zip(pks, batch, strict=True):
        for columns, keys in parsed.signatures:
            signatures.append(AccountPromptSignature(account_id=pk, **columns))
            bands.append(keys)
    if not signatures:
        return
    AccountPromptSignature.objects.bulk_create(signatures)  # few rows, and their pks are needed
    writer.insert(
        AccountLshBand,
        ("signature_id", "account_id", "band_key"),
        [(s.pk, s.account_id, key) for s, keys in zip(signatures, bands, strict=True) for key in keys],
    )


def _notify_changed(pks: list[int]) -> None:
    """Tell the matching engine (DOMAIN §4.5 match_incremental), if it is installed."""
    try:
        from indicators.tasks import accounts_changed
    except (ImportError, AttributeError):
        return
    accounts_changed(pks)
