"""Comparison semantics of STIX 2.1 patterning on JSON values, with stix2-matcher's type coercions."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from .nodes import Constant, Op
from .parser import parse_timestamp

Predicate = Callable[[Any], bool]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Type pairs that can be compared at all (STIX 2.1 patterning, "Comparison Operators":
# mismatched types compare unequal).  Mirrors stix2-matcher: int/float mix, binary
# against a string whose code points all fit in a byte, exact types otherwise
# (a JSON boolean never equals a number).  Booleans have no order.
_EQ_TYPES = {
    frozenset({int}),
    frozenset({float}),
    frozenset({int, float}),
    frozenset({str}),
    frozenset({bytes}),
    frozenset({bytes, str}),
    frozenset({bool}),
    frozenset({datetime}),
}
_ORDER_TYPES = _EQ_TYPES - {frozenset({bool})}


class _Incomparable(Exception):
    """A string with code points above 255 met a binary value."""


def compile_predicate(op: Op, negated: bool, constant: Constant | tuple[Constant, ...] | None) -> Predicate:
    """A test of one selected value for a comparison (EXISTS is handled by the evaluator)."""
    if op in (Op.EQ, Op.NE):
        assert constant is not None and not isinstance(constant, tuple)
        flip = (op is Op.NE) != negated
        return _equality(constant, flip)
    if op in (Op.LT, Op.LE, Op.GT, Op.GE):
        assert constant is not None and not isinstance(constant, tuple)
        return _order(op, constant, negated)
    if op is Op.IN:
        assert isinstance(constant, tuple)
        return _negate(_membership(constant), negated)
    assert isinstance(constant, str)
    if op is Op.LIKE:
        return _negate(_like(constant), negated)
    if op is Op.MATCHES:
        return _negate(_matches(constant), negated)
    if op is Op.ISSUBSET:
        return _negate(_subset(constant, superset=False), negated)
    if op is Op.ISSUPERSET:
        return _negate(_subset(constant, superset=True), negated)
    raise ValueError(f"no value predicate for {op}")


# The same attribute timestamps recur across many patterns and accounts.
_timestamp = lru_cache(maxsize=65536)(parse_timestamp)


@lru_cache(maxsize=65536)
def parse_network(text: str) -> IPNetwork | None:
    """An IP address or CIDR block as a network (an address is a /32 or /128); None if neither."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _negate(predicate: Predicate, negated: bool) -> Predicate:
    if not negated:
        return predicate
    return lambda value: not predicate(value)


def _coerce(value: Any, constant: Constant) -> Any:
    # A timestamp constant compares with a JSON string as an instant (STIX JSON has
    # no timestamp type); a string that is no timestamp stays a string and so
    # compares unequal.
    if isinstance(constant, datetime) and type(value) is str:
        try:
            return _timestamp(value)
        except ValueError:
            return value
    return value


def _as_bytes(text: str) -> bytes:
    # STIX 2.1 patterning, binary constants: a string compares with binary data only
    # when every code point is below 256, taken as one byte each.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise _Incomparable() from None


def _pair(value: Any, constant: Constant) -> tuple[Any, Any]:
    if type(value) is bytes and type(constant) is str:
        return value, _as_bytes(constant)
    if type(value) is str and type(constant) is bytes:
        return _as_bytes(value), constant
    return value, constant


def _equality(constant: Constant, flip: bool) -> Predicate:
    def test(value: Any) -> bool:
        value = _coerce(value, constant)
        equal = False
        if frozenset({type(value), type(constant)}) in _EQ_TYPES:
            try:
                left, right = _pair(value, constant)
                equal = bool(left == right)
            except _Incomparable:
                equal = False
        return equal != flip

    return test


def _order(op: Op, constant: Constant, negated: bool) -> Predicate:
    def test(value: Any) -> bool:
        value = _coerce(value, constant)
        # Values of types without an order fail the test, NOT or not (as stix2-matcher).
        if frozenset({type(value), type(constant)}) not in _ORDER_TYPES:
            return False
        try:
            left, right = _pair(value, constant)
        except _Incomparable:
            return negated
        if op is Op.LT:
            result = left < right
        elif op is Op.LE:
            result = left <= right
        elif op is Op.GT:
            result = left > right
        else:
            result = left >= right
        return bool(result) != negated

    return test


def _membership(values: tuple[Constant, ...]) -> Predicate:
    members = frozenset(values)
    has_timestamps = any(isinstance(v, datetime) for v in values)

    def test(value: Any) -> bool:
        if has_timestamps and type(value) is str:
            try:
                value = _timestamp(value)
            except ValueError:
                return False
        try:
            return value in members
        except TypeError:  # lists and dicts are never set members
            return False

    return test


def like_to_regex(like: str) -> re.Pattern[str]:
    """SQL LIKE as a regex: `%` any run of characters, `_` one character, the rest literal."""
    parts = [
        ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in unicodedata.normalize("NFC", like)
    ]
    return re.compile("".join(parts), re.DOTALL)


def _text(value: Any) -> str | None:
    if type(value) is str:
        return unicodedata.normalize("NFC", value)
    if type(value) is bytes:
        try:
            return unicodedata.normalize("NFC", value.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return None


def _like(like: str) -> Predicate:
    regex = like_to_regex(like)

    def test(value: Any) -> bool:
        text = _text(value)
        return text is not None and regex.fullmatch(text) is not None

    return test


def _matches(pattern: str) -> Predicate:
    # STIX 2.1 patterning, MATCHES: PCRE semantics, unanchored; Python's `re` covers the
    # common PCRE subset.  Binary values are matched bytewise when the regex fits in bytes.
    pattern = unicodedata.normalize("NFC", pattern)
    regex = re.compile(pattern)
    try:
        binary: re.Pattern[bytes] | None = re.compile(pattern.encode("latin-1"))
    except (UnicodeEncodeError, re.error):
        binary = None

    def test(value: Any) -> bool:
        if type(value) is str:
            return regex.search(unicodedata.normalize("NFC", value)) is not None
        if type(value) is bytes and binary is not None:
            return binary.search(value) is not None
        return False

    return test


def _subset(text: str, superset: bool) -> Predicate:
    constant = parse_network(text)

    def test(value: Any) -> bool:
        if constant is None or type(value) is not str:
            return False
        network = parse_network(value)
        if network is None or network.version != constant.version:
            return False
        if superset:
            return constant.subnet_of(network)  # type: ignore[arg-type]  # same family, checked above
        return network.subnet_of(constant)  # type: ignore[arg-type]  # same family, checked above

    return test
