"""The import service: stream lines in batches, parse one batch ahead, write each in a transaction."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from queue import Full, Queue

import orjson
from django.db import connection

from indicators.accounts.fastpath import _parse_fast, _Slow
from indicators.accounts.lines import (
    AccountImportError,
    ImportResult,
    _BadLine,
    _Keys,
    _parse_careful,
    _Parsed,
)
from indicators.accounts.writers import _notify_changed, _PostgresWriter, _Prepared, _write_batch, _Writer
from indicators.hashing import Keyring


def _parse_line(raw: str | bytes, keyring: Keyring, keys: _Keys | None = None) -> _Parsed | None:
    """Parse one line; None for a blank line. Raises _BadLine."""
    if keys is not None:
        try:
            return _parse_fast(orjson.loads(raw), keys)
        except (orjson.JSONDecodeError, _Slow):
            pass  # the careful path below says what is wrong, or accepts it after all
    return _parse_careful(raw, keyring)


# --- The service --------------------------------------------------------------------------------


@dataclass
class _Chunk:
    """Parsed lines: a batch of distinct accounts, the bad lines among them, lines read so far."""

    batch: list[_Parsed]
    errors: list[tuple[int, str]]
    lines_read: int
    prepared: _Prepared | None = None


def _chunks(
    lines: Iterable[str | bytes],
    keyring: Keyring,
    batch_size: int,
    prepare: Callable[[list[_Parsed]], _Prepared | None] = lambda batch: None,
) -> Iterator[_Chunk]:
    batch: dict[str, _Parsed] = {}
    errors: list[tuple[int, str]] = []
    line_number = 0
    keys = _Keys.of(keyring)

    def chunk(lines_read: int) -> _Chunk:
        parsed = list(batch.values())
        return _Chunk(parsed, errors, lines_read, prepare(parsed) if parsed else None)

    for line_number, raw in enumerate(lines, start=1):
        try:
            parsed = _parse_line(raw, keyring, keys)
        except _BadLine as exc:
            errors.append((line_number, str(exc)))
            continue
        if parsed is None:
            continue
        if parsed.account_id in batch:
            # A later line for the same account replaces the earlier one: write them in order.
            yield chunk(line_number - 1)
            batch, errors = {}, []
        batch[parsed.account_id] = parsed
        if len(batch) >= batch_size:
            yield chunk(line_number)
            batch, errors = {}, []
    yield chunk(line_number)


def _read_ahead(items: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """Produce ``items`` one step ahead in a thread, so parsing the next batch (pure Python)
    overlaps the database round trips of this one (the drivers release the GIL while they
    wait). The queue holds one chunk: memory stays constant. Exceptions reach the caller."""
    queue: Queue = Queue(maxsize=1)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((None, None))
        except BaseException as exc:  # re-raised in the consumer
            put((None, exc))

    thread = threading.Thread(target=produce, name="accounts-import-parse", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = queue.get()
            if exc is not None:
                raise exc
            if item is None:
                return
            yield item
    finally:
        stop.set()
        # Bounded: a producer blocked reading its input (an idle stdin) is a daemon thread
        # and must not hang a caller that is leaving on an exception.
        thread.join(timeout=1.0)


def accounts_import(
    lines: Iterable[str | bytes],
    *,
    keyring: Keyring | None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
) -> ImportResult:
    """Import §4.0 JSON Lines. Bad lines are reported as (line number, message) and skipped;
    the others are committed ``batch_size`` accounts at a time. A re-imported account keeps
    its pk, gets its attributes replaced and its ``changed_at`` bumped.

    ``progress`` is called with the number of lines read after each batch.
    """
    if keyring is None:
        raise AccountImportError(
            "this node has no keyring: set MDX_KEYRING or MDX_KEYRING_FILE to import accounts"
        )
    if batch_size < 1:
        raise AccountImportError("batch_size must be at least 1")
    result = ImportResult()
    writer = _PostgresWriter() if connection.vendor == "postgresql" else _Writer()
    with _cyclic_gc_paused(), _quick_thread_switches():
        for chunk in _read_ahead(_chunks(lines, keyring, batch_size, writer.prepare)):
            result.errors.extend(chunk.errors)
            if chunk.batch:
                _notify_changed(_write_batch(writer, chunk.batch, result, chunk.prepared))
            if progress is not None:
                progress(chunk.lines_read)
    return result


SWITCH_INTERVAL = 0.0002  # seconds; Python's default is 0.005


@contextmanager
def _quick_thread_switches() -> Iterator[None]:
    """Hand the GIL over sooner while importing.

    The writer thread waits on PostgreSQL (GIL released) while the parser thread computes.
    When the database answers, the writer needs the GIL back to send the next statement; at
    the default 5 ms switch interval it waits for the parser's time slice to end, once per
    statement, and the database sits idle meanwhile."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything).

    An import keeps two batches of parsed rows alive: tens of thousands of young objects that
    make the collector run, and scan the whole heap, every few hundred accounts (~10% of the
    client's CPU per account). The importer creates no reference cycles, so there is nothing
    for it to find; it is switched back on (if it was on) when the import ends."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
