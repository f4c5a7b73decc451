"""Local account import (DOMAIN.md §4.0): JSON Lines in, hashed attribute rows out.

:func:`accounts_import` streams the lines in batches (constant memory), validates every
field of every line, hashes raw identifiers with the node's key epochs (§3.3) and writes each
batch in one transaction: upsert the accounts, delete the old attribute rows of the accounts
that already existed, insert the new ones (PostgreSQL ``COPY``; a portable ``INSERT``
elsewhere). Parsing runs one batch ahead in a thread, overlapping the database round trips.

A line is parsed twice at most: first by a fast path (orjson, inlined checks) that handles
the usual shapes and gives up (:class:`_Slow`) on anything unusual, then by the careful
field-by-field validation that names the bad field. Both give the same rows for every line
the fast path accepts; every error message comes from the careful path.

Raw identifier values (e-mail, phone, PAN, PAR, API key, ...) are never stored and never
appear in an error message: messages name the field, never its value.
"""

from indicators.accounts.importer import accounts_import
from indicators.accounts.lines import AccountImportError, ImportResult

__all__ = ["AccountImportError", "ImportResult", "accounts_import"]
