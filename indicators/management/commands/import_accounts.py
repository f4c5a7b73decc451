"""import_accounts FILE.jsonl|- : load local accounts (DOMAIN.md §4.0 JSON Lines) into this node."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from typing import BinaryIO

from django.conf import settings
from django.core.management.base import CommandError

from indicators.accounts import AccountImportError, ImportResult, accounts_import
from indicators.management.base import MdxCommand

BAR_WIDTH = 30


class _CountingReader:
    """Yields the lines of a binary stream and counts the bytes handed out, for the percentage."""

    def __init__(self, stream: BinaryIO, source: str):
        self.stream = stream
        self.source = source
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for line in self.stream:
                self.bytes_read += len(line)
                yield line
        except OSError as exc:
            raise CommandError(f"cannot read {self.source}: {exc.strerror or exc}") from None


class Command(MdxCommand):
    help = (
        "Import local accounts from a JSON Lines file (or - for stdin). Raw identifiers are hashed "
        "with this node's keyring and never stored; bad lines are reported and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .jsonl file, or - to read standard input")
        parser.add_argument("--batch-size", type=int, default=2000, help="accounts per transaction")

    def handle(self, *args, file: str, batch_size: int, **options):
        # Not MdxCommand.handle: that runs everything in one transaction, while an import
        # commits batch by batch (a large file must not be one huge transaction).
        keyring = settings.MDX_KEYRING
        if keyring is None:
            raise CommandError("this node has no keyring: set MDX_KEYRING or MDX_KEYRING_FILE")
        if file == "-":
            self._import(sys.stdin.buffer, "standard input", batch_size)
            return
        try:
            stream = open(file, "rb")  # noqa: SIM115 (closed below; errors must stay one line)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None
        with stream:
            self._import(stream, file, batch_size)

    def _import(self, stream: BinaryIO, source: str, batch_size: int) -> None:
        reader = _CountingReader(stream, source)
        progress = _Progress(self.stderr, _size_of(stream))
        try:
            result = accounts_import(
                reader,
                keyring=settings.MDX_KEYRING,
                progress=lambda lines: progress.show(lines, reader.bytes_read),
                batch_size=batch_size,
            )
        except AccountImportError as exc:
            raise CommandError(str(exc)) from None
        progress.done()
        for line, message in result.errors:
            self.stderr.write(f"line {line}: {message}")
        self.stdout.write(_summary(result))
        if result.errors and not result.imported:
            raise CommandError(f"every line failed ({result.skipped} bad lines); nothing was imported")


def _size_of(stream: BinaryIO) -> int | None:
    """The byte size of a regular file (including stdin redirected from one), else None."""
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return status.st_size if status.st_size and stat.S_ISREG(status.st_mode) else None


def _summary(result: ImportResult) -> str:
    return (
        f"Imported {result.imported} accounts ({result.created} created, {result.updated} updated); "
        f"skipped {result.skipped} bad lines."
    )


class _Progress:
    """One self-overwriting stderr line: ``[#####-----]  50%  12000 lines  9500 lines/s``."""

    def __init__(self, out, total_bytes: int | None):
        self.out = out
        self.total = total_bytes
        self.started = time.monotonic()
        self.shown = False

    def show(self, lines: int, bytes_read: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = f"{lines} lines  {lines / elapsed:.0f} lines/s"
        if self.total:
            share = min(bytes_read / self.total, 1.0)
            filled = round(share * BAR_WIDTH)
            text = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:4.0%}  {text}"
        self.out.write(f"\r{text}", ending="")
        self.out.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.out.write("")  # end the progress line
