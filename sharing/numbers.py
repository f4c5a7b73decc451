"""Whole numbers from text that arrives from outside: query parameters, path segments, headers."""

from __future__ import annotations


def natural_number(raw: object) -> int | None:
    """``raw`` as a non-negative int when it is written in ASCII digits only, else None.

    ``str.isdigit`` alone is not enough: it accepts "²" and other digit characters that ``int``
    refuses, which turned such input into a 500 instead of a clear 4xx.
    """
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
