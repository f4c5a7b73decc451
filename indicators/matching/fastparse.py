"""A hand-written lexer and recursive-descent parser for STIX 2.1 patterns.

`parse_pattern_fast` builds exactly the AST of `parser.parse_pattern` (the frozen nodes of
`nodes`) and accepts exactly the patterns that stix2-patterns 2.1.2 accepts
(`stix2patterns.validator.run_validator(p, stix_version="2.1")` returns no errors), at a
small fraction of the cost of the pure-Python ANTLR runtime.

What "accepts" covers, besides the grammar (STIXPattern.g4 of stix2-patterns 2.1.2):

* the validator's `brackets_check`: after any leading `(` and white space the pattern must
  start with `[` (so a comment before the first bracket is refused);
* its duplicate-qualifier check: one qualifier type may not be applied twice to the same
  bracketed observation expression (it may be when the operand is a parenthesised group);
* its hash check: a comparison on a `hashes` path whose last key names a known hash
  algorithm must compare against a constant of that algorithm's shape.

Deliberate differences, all toward being stricter (each is listed in
tests/matching/test_fastparse.py with the STIX 2.1 rule behind it):

* the semantic checks of `parser.parse_pattern`, which stix2-patterns lacks: WITHIN needs a
  positive number of seconds, REPEATS at least 1, timestamps must be real instants, set
  constants must not mix types, MATCHES needs a regular expression Python can compile;
* START must be earlier than STOP;
* patterns that make stix2-patterns raise instead of answering (a negative list index,
  or an integer index as the last step of a `hashes` path) are refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from datetime import UTC, datetime

from .nodes import (
    AnyIndex,
    Bracket,
    CompAnd,
    Comparison,
    CompExpr,
    CompOr,
    Constant,
    FollowedBy,
    ObjectPath,
    ObsAnd,
    ObsExpr,
    ObsOr,
    Op,
    Repeats,
    StartStop,
    Step,
    Within,
)
from .parser import PatternError

__all__ = ["PatternError", "parse_pattern_fast"]

# --- lexing -----------------------------------------------------------------------------
#
# The lexer is one `findall`: each match is optional skipped material (white space of the
# grammar's WS rule, /* */ and // comments) followed by one token, or by the end of the text.
# The token alternatives are ordered so that Python's first-match alternation picks what
# ANTLR's longest-match lexer picks: a complete t''/h''/b'' literal beats the one-letter
# identifier, a float beats its integer prefix, two-character operators beat one-character
# ones. The last alternative takes any other single character (a stray quote, `+`, `#`, a
# `/` that opens no comment, ...); no parser rule accepts those, so they fail where used.
# The token texts themselves are the token kinds the parser tests: keywords and punctuation
# compare by text, literals and identifiers are recognised by their first characters.

# The grammar's WS rule: these characters only (not all of str.isspace()).
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

_TOKEN = re.compile(
    rf"""
    (?:[{_WS}]+|/\*.*?\*/|//[^\r\n]*)*
    (
      '(?:[^'\\]|\\['\\])*'
    | t'[0-9]{{4}}-(?:0[1-9]|1[012])-(?:0[1-9]|[12][0-9]|3[01])
        T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?Z'
    | h'(?:[0-9A-Fa-f]{{2}})*'
    | b'(?:[A-Za-z0-9+/]{{4}})*(?:[A-Za-z0-9+/]{{4}}|[A-Za-z0-9+/]{{3}}=|[A-Za-z0-9+/]{{2}}==)'
    | [A-Za-z_][A-Za-z0-9_-]*
    | [+-]?[0-9]*\.[0-9]+
    | [+-]?(?:0|[1-9][0-9]*)
    | <=|>=|<>|!=|==
    | .
    | \Z
    )
    """,
    re.VERBOSE | re.DOTALL,
)
_FIND_TOKENS = _TOKEN.findall

# Words the grammar lexes as keywords (or booleans), so never as identifiers.
_KEYWORDS = frozenset(
    {
        "AND", "OR", "NOT", "FOLLOWEDBY", "LIKE", "MATCHES", "ISSUPERSET", "ISSUBSET", "EXISTS", "LAST",
        "IN", "START", "STOP", "SECONDS", "true", "false", "WITHIN", "REPEATS", "TIMES",
    }
)  # fmt: skip
_ID_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NUMBER_START = frozenset("0123456789+-.")
_DIGITS = frozenset("0123456789")
_PUNCTUATION = frozenset("[]():.,*=<>")
_OPS = {
    "=": Op.EQ,
    "==": Op.EQ,
    "!=": Op.NE,
    "<>": Op.NE,
    "<": Op.LT,
    "<=": Op.LE,
    ">": Op.GT,
    ">=": Op.GE,
    "IN": Op.IN,
    "LIKE": Op.LIKE,
    "MATCHES": Op.MATCHES,
    "ISSUBSET": Op.ISSUBSET,
    "ISSUPERSET": Op.ISSUPERSET,
}
_ORDER_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
_STRING_OPS = frozenset({Op.LIKE, Op.MATCHES, Op.ISSUBSET, Op.ISSUPERSET})

_STRING_ESCAPE = re.compile(r"\\(['\\])")

# stix2-patterns' object_validator.HASHES_REGEX, kept byte for byte (including the MD6
# expression's missing group and the line continuation that puts spaces into it), because
# acceptance must match its verdicts exactly.
_HASHES_REGEX = {
    "MD5": r"^[a-fA-F0-9]{32}$",
    "MD6": r"^[a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{56}|\
    [a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128}$",
    "RIPEMD160": r"^[a-fA-F0-9]{40}$",
    "SHA1": r"^[a-fA-F0-9]{40}$",
    "SHA224": r"^[a-fA-F0-9]{56}$",
    "SHA256": r"^[a-fA-F0-9]{64}$",
    "SHA384": r"^[a-fA-F0-9]{96}$",
    "SHA512": r"^[a-fA-F0-9]{128}$",
    "SHA3224": r"^[a-fA-F0-9]{56}$",
    "SHA3256": r"^[a-fA-F0-9]{64}$",
    "SHA3384": r"^[a-fA-F0-9]{96}$",
    "SHA3512": r"^[a-fA-F0-9]{128}$",
    "SSDEEP": r"^[a-zA-Z0-9/+:.]{1,128}$",
    "WHIRLPOOL": r"^[a-fA-F0-9]{128}$",
}
_HASHES = {name: re.compile(expr) for name, expr in _HASHES_REGEX.items()}

_WITHIN_Q, _REPEATS_Q, _STARTSTOP_Q = 1, 2, 4


def parse_pattern_fast(pattern: str) -> ObsExpr:
    """Parse `pattern` like `parser.parse_pattern`; raise PatternError when it is invalid."""
    tokens = _FIND_TOKENS(pattern)
    if not tokens or tokens[-1] != "":  # pragma: no cover - \Z always ends the list
        tokens.append("")
    parser = _Parser(pattern, tokens)
    tree = parser.observations()
    if tokens[parser.i] != "":
        raise parser.fail("expected an observation operator or the end of the pattern")
    _brackets_check(pattern)
    return tree


def _brackets_check(pattern: str) -> None:
    # stix2patterns.helpers.brackets_check, as run_validator applies it to the raw text.
    if pattern[:1] == "[":
        return
    for char in pattern:
        if char != "(" and not char.isspace():
            if char == "[":
                return
            break
    raise PatternError("invalid STIX pattern: position 0: input is missing square brackets")


def _unquote(text: str) -> str:
    body = text[1:-1]
    return _STRING_ESCAPE.sub(r"\1", body) if "\\" in body else body


def _is_string(token: str) -> bool:
    return len(token) > 1 and token[0] == "'"


def _is_identifier(token: str) -> bool:
    """IdentifierWithoutHyphen: a property name or an object type."""
    return token[:1] in _ID_START and token[-1] != "'" and "-" not in token and token not in _KEYWORDS


def _is_object_type(token: str) -> bool:
    """IdentifierWithoutHyphen or IdentifierWithHyphen."""
    return token[:1] in _ID_START and token[-1] != "'" and token not in _KEYWORDS


def _is_positive_int(token: str) -> bool:
    return (
        token[:1] in _DIGITS and "." not in token or token[:1] == "+" and len(token) > 1 and "." not in token
    )


def _is_positive_float(token: str) -> bool:
    return "." in token and len(token) > 1 and token[0] != "-" and token[0] in _NUMBER_START


class _Parser:
    __slots__ = ("pattern_text", "tokens", "i")

    def __init__(self, pattern_text: str, tokens: list[str]) -> None:
        self.pattern_text = pattern_text
        self.tokens = tokens
        self.i = 0

    # --- helpers

    def position(self, index: int) -> int:
        """The offset in the text of token `index` (only computed for error messages)."""
        for n, match in enumerate(_TOKEN.finditer(self.pattern_text)):
            if n == index:
                return match.start(1)
        return len(self.pattern_text)

    def fail(self, problem: str, index: int | None = None) -> PatternError:
        at = self.i if index is None else index
        token = self.tokens[at] if at < len(self.tokens) else ""
        position = self.position(at)
        if len(token) == 1 and token not in _PUNCTUATION and token not in _ID_START and token not in _DIGITS:
            # A character no token of the grammar starts with (or an unterminated string).
            return PatternError(f"invalid STIX pattern: position {position}: unexpected character {token!r}")
        seen = repr(token) if token else "the end of the pattern"
        return PatternError(f"invalid STIX pattern: position {position}: {problem}, found {seen}")

    def expect(self, token: str, what: str) -> None:
        if self.tokens[self.i] != token:
            raise self.fail(f"expected {what}")
        self.i += 1

    def timestamp(self, index: int) -> datetime:
        # A t'YYYY-MM-DDTHH:MM:SS[.fff]Z' token, already in the grammar's shape.
        text = self.tokens[index]
        try:
            fraction = text[22:-2] if text[21] == "." else ""
            return datetime(
                int(text[2:6]),
                int(text[7:9]),
                int(text[10:12]),
                int(text[13:15]),
                int(text[16:18]),
                int(text[19:21]),
                int(fraction[:6].ljust(6, "0")),
                tzinfo=UTC,
            )
        except ValueError as exc:
            raise self.fail(f"invalid timestamp {text}: {exc}", index) from exc

    # --- observation level

    def observations(self) -> ObsExpr:
        expr = self.obs_or()
        while self.tokens[self.i] == "FOLLOWEDBY":
            self.i += 1
            expr = FollowedBy(expr, self.obs_or())
        return expr

    def obs_or(self) -> ObsExpr:
        first = self.obs_and()
        tokens = self.tokens
        if tokens[self.i] != "OR":
            return first
        items: list[ObsExpr] = []
        items.extend(first.operands if isinstance(first, ObsOr) else (first,))
        while tokens[self.i] == "OR":
            self.i += 1
            item = self.obs_and()
            items.extend(item.operands if isinstance(item, ObsOr) else (item,))
        return ObsOr(tuple(items))

    def obs_and(self) -> ObsExpr:
        first = self.obs_qualified()
        tokens = self.tokens
        if tokens[self.i] != "AND":
            return first
        items: list[ObsExpr] = []
        items.extend(first.operands if isinstance(first, ObsAnd) else (first,))
        while tokens[self.i] == "AND":
            self.i += 1
            item = self.obs_qualified()
            items.extend(item.operands if isinstance(item, ObsAnd) else (item,))
        return ObsAnd(tuple(items))

    def obs_qualified(self) -> ObsExpr:
        tokens = self.tokens
        token = tokens[self.i]
        expr: ObsExpr
        if token == "[":
            self.i += 1
            expr = Bracket(self.comparisons())
            self.expect("]", "']' or a boolean operator")
            # stix2-patterns' ValidationListener: each qualifier type at most once directly
            # on a bracketed expression; no limit on a parenthesised group.
            seen: int | None = 0
        elif token == "(":
            self.i += 1
            expr = self.observations()
            self.expect(")", "')' or an observation operator")
            seen = None
        else:
            raise self.fail("expected '[' or '('")
        while True:
            token = tokens[self.i]
            start = self.i
            if token == "WITHIN":
                qualifier = _WITHIN_Q
                number = tokens[start + 1]
                if _is_positive_int(number):
                    try:
                        seconds = float(int(number))
                    except OverflowError as exc:  # parse_pattern crashes here; refuse cleanly
                        raise self.fail("WITHIN number of seconds is too large", start + 1) from exc
                elif _is_positive_float(number):
                    seconds = float(number)
                else:
                    raise self.fail("expected a positive number of seconds after WITHIN", start + 1)
                self.i = start + 2
                self.expect("SECONDS", "SECONDS")
                if seconds <= 0:
                    raise self.fail(f"WITHIN needs a positive number of seconds, got {seconds:g}", start + 1)
                expr = Within(expr, seconds)
            elif token == "REPEATS":
                qualifier = _REPEATS_Q
                number = tokens[start + 1]
                if not _is_positive_int(number):
                    raise self.fail("expected a positive integer after REPEATS", start + 1)
                self.i = start + 2
                self.expect("TIMES", "TIMES")
                times = int(number)
                if times < 1:
                    raise self.fail(f"REPEATS needs a count of at least 1, got {times}", start + 1)
                expr = Repeats(expr, times)
            elif token == "START":
                qualifier = _STARTSTOP_Q
                if tokens[start + 1][:2] != "t'":
                    raise self.fail("expected a t'' timestamp after START", start + 1)
                if tokens[start + 2] != "STOP":
                    raise self.fail("expected STOP", start + 2)
                if tokens[start + 3][:2] != "t'":
                    raise self.fail("expected a t'' timestamp after STOP", start + 3)
                self.i = start + 4
                begin, stop = self.timestamp(start + 1), self.timestamp(start + 3)
                if stop <= begin:
                    raise self.fail("the STOP timestamp must be later than the START timestamp", start + 3)
                expr = StartStop(expr, begin, stop)
            else:
                return expr
            if seen is not None:
                if seen & qualifier:
                    raise self.fail("duplicate qualifier type on one observation expression", start)
                seen |= qualifier

    # --- comparison level

    def comparisons(self) -> CompExpr:
        first = self.comp_and()
        tokens = self.tokens
        if tokens[self.i] != "OR":
            return first
        items: list[CompExpr] = []
        items.extend(first.operands if isinstance(first, CompOr) else (first,))
        while tokens[self.i] == "OR":
            self.i += 1
            item = self.comp_and()
            items.extend(item.operands if isinstance(item, CompOr) else (item,))
        return CompOr(tuple(items))

    def comp_and(self) -> CompExpr:
        first = self.prop_test()
        tokens = self.tokens
        if tokens[self.i] != "AND":
            return first
        items: list[CompExpr] = []
        items.extend(first.operands if isinstance(first, CompAnd) else (first,))
        while tokens[self.i] == "AND":
            self.i += 1
            item = self.prop_test()
            items.extend(item.operands if isinstance(item, CompAnd) else (item,))
        return CompAnd(tuple(items))

    def prop_test(self) -> CompExpr:
        tokens = self.tokens
        token = tokens[self.i]
        if token == "(":
            self.i += 1
            expr = self.comparisons()
            self.expect(")", "')' or a boolean operator")
            return expr
        if token == "NOT" and tokens[self.i + 1] == "EXISTS":
            self.i += 2
            path, _ = self.object_path()
            return Comparison(path, Op.EXISTS, True, None)
        if token == "EXISTS":
            self.i += 1
            path, _ = self.object_path()
            return Comparison(path, Op.EXISTS, False, None)
        path, hash_key = self.object_path()
        negated = tokens[self.i] == "NOT"
        if negated:
            self.i += 1
        op_index = self.i
        op = _OPS.get(tokens[op_index])
        if op is None:
            raise self.fail("expected a comparison operator")
        self.i = op_index + 1
        value: Constant | tuple[Constant, ...]
        raw = tokens[self.i]
        if op is Op.EQ or op is Op.NE:
            value = self.literal(True)
        elif op in _ORDER_OPS:
            value = self.literal(False)
        elif op is Op.IN:
            raw, value = self.set_literal()
        else:
            if not _is_string(raw):
                raise self.fail("expected a string")
            self.i += 1
            value = _unquote(raw)
            if op is Op.MATCHES:
                try:
                    re.compile(unicodedata.normalize("NFC", value))
                except re.error as exc:
                    raise self.fail(f"invalid MATCHES regular expression: {exc}", self.i - 1) from exc
        if hash_key is not None:
            self.check_hash(path, hash_key, raw, op_index)
        return Comparison(path, op, negated, value)

    def check_hash(self, path: ObjectPath, hash_key: str, raw: str, index: int) -> None:
        # stix2-patterns' object_validator.verify_object, for one comparison whose path
        # contains a `hashes` key.
        last = path.steps[-1]
        if isinstance(last, AnyIndex):
            return
        if isinstance(last, int):
            # stix2-patterns raises AttributeError here instead of answering.
            raise self.fail("a hashes path must not end in a list index", index)
        expr = _HASHES.get(hash_key)
        if expr is not None and expr.match(raw.replace("'", "")) is None:
            raise self.fail(f"not a valid {last} hash", index + 1)

    def object_path(self) -> tuple[ObjectPath, str | None]:
        """The path, and the normalised last key when the path goes through `hashes`."""
        tokens = self.tokens
        i = self.i
        object_type = tokens[i]
        if not _is_object_type(object_type):
            raise self.fail("expected an object type")
        if tokens[i + 1] != ":":
            raise self.fail("expected ':' after the object type", i + 1)
        token = tokens[i + 2]
        if _is_identifier(token):
            first = token
        elif _is_string(token):
            first = _unquote(token)
        else:
            raise self.fail("expected a property name", i + 2)
        i += 3
        steps: list[Step] = [first]
        last_raw = token
        while True:
            token = tokens[i]
            if token == ".":
                token = tokens[i + 1]
                if _is_identifier(token):
                    steps.append(token)
                elif _is_string(token):
                    steps.append(_unquote(token))
                else:
                    raise self.fail("expected a property name after '.'", i + 1)
                last_raw = token
                i += 2
            elif token == "[":
                token = tokens[i + 1]
                if token == "*":
                    steps.append(AnyIndex())
                elif _is_positive_int(token):
                    steps.append(int(token))
                elif token[:1] == "-" and len(token) > 1 and "." not in token:
                    # The grammar allows it, but stix2-patterns' inspector raises on it.
                    raise self.fail("a list index must not be negative", i + 1)
                else:
                    raise self.fail("expected a list index or '*'", i + 1)
                if tokens[i + 2] != "]":
                    raise self.fail("expected ']' after the list index", i + 2)
                i += 3
            else:
                break
        self.i = i
        path = ObjectPath(object_type, tuple(steps))
        if "hashes" not in steps:
            return path, None
        key = last_raw
        if key[0] == "'":
            # stix2-patterns' own unescaping of a quoted key.
            key = key[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        return path, key.upper().replace("-", "").replace("'", "")

    def literal(self, allow_bool: bool) -> Constant:
        i = self.i
        token = self.tokens[i]
        first = token[:1]
        if first == "'":
            if len(token) > 1:
                self.i = i + 1
                return _unquote(token)
        elif first in _NUMBER_START:
            if first in _DIGITS or len(token) > 1:
                self.i = i + 1
                return float(token) if "." in token else int(token)
        elif token[1:2] == "'":
            if first == "t":
                self.i = i + 1
                return self.timestamp(i)
            if first == "h":
                self.i = i + 1
                return bytes.fromhex(token[2:-1])
            if first == "b":
                self.i = i + 1
                try:
                    return base64.b64decode(token[2:-1], validate=True)
                except (ValueError, binascii.Error) as exc:  # pragma: no cover - the lexer ensures the shape
                    raise self.fail(f"invalid literal: {exc}", i) from exc
        elif allow_bool and (token == "true" or token == "false"):
            self.i = i + 1
            return token == "true"
        raise self.fail("expected a constant" if allow_bool else "expected an orderable constant")

    def set_literal(self) -> tuple[str, tuple[Constant, ...]]:
        start = self.i
        tokens = self.tokens
        self.expect("(", "'(' to open a set")
        values: list[Constant] = []
        if tokens[self.i] != ")":
            values.append(self.literal(True))
            while tokens[self.i] == ",":
                self.i += 1
                values.append(self.literal(True))
        self.expect(")", "',' or ')' in the set")
        kinds = {type(v) for v in values}
        # STIX 2.1 patterning, "Set Constants": the values of a set share one type;
        # ints and floats count as one numeric type.
        if len(kinds) > 1 and not kinds <= {int, float}:
            raise self.fail("set constant mixes types", start)
        # The set as ANTLR's getText() spells it (tokens without white space), for the hash check.
        return "".join(tokens[start : self.i]), tuple(values)
