"""Parse a STIX 2.1 pattern into the frozen AST of `nodes`, via the stix2-patterns grammar."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

# stix2-patterns ships no type information; its parse tree is walked as Any.
from stix2patterns.exceptions import ParseException  # type: ignore[import-untyped]
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P  # type: ignore[import-untyped]
from stix2patterns.v21.grammars.STIXPatternVisitor import STIXPatternVisitor  # type: ignore[import-untyped]
from stix2patterns.v21.pattern import Pattern  # type: ignore[import-untyped]

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


class PatternError(ValueError):
    """The pattern is not valid STIX 2.1 patterning."""


def parse_pattern(pattern: str) -> ObsExpr:
    """Parse `pattern`; raise PatternError with a message when it is invalid."""
    try:
        tree = Pattern(pattern).visit(_TreeGetter())
    except ParseException as exc:
        raise PatternError(f"invalid STIX pattern: {exc}") from exc
    return _observations(tree.observationExpressions())


def parse_timestamp(text: str) -> datetime:
    """Parse a STIX timestamp (RFC 3339, UTC `Z`, optional fraction) to an aware datetime.

    Fractions beyond microseconds are truncated, as Python datetimes cannot hold them.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid STIX timestamp: {text!r}")
    fraction = (match.group("frac") or "").ljust(6, "0")[:6]
    stamp = datetime.strptime(match.group("base"), "%Y-%m-%dT%H:%M:%S")
    return stamp.replace(microsecond=int(fraction), tzinfo=UTC)


# STIX 2.1 "timestamp" type: RFC 3339 in UTC with upper-case T and Z.
_TIMESTAMP = re.compile(r"(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?Z")
_STRING_ESCAPE = re.compile(r"\\(['\\])")


class _TreeGetter(STIXPatternVisitor):  # type: ignore[misc]
    def visitPattern(self, ctx: Any) -> Any:
        return ctx


def _observations(ctx: Any) -> ObsExpr:
    if isinstance(ctx, P.ObservationExpressionsContext):
        if ctx.FOLLOWEDBY() is not None:
            return FollowedBy(
                _observations(ctx.observationExpressions(0)), _observations(ctx.observationExpressions(1))
            )
        return _observations(ctx.observationExpressionOr())
    if isinstance(ctx, P.ObservationExpressionOrContext):
        if ctx.OR() is not None:
            return ObsOr(_flatten(ObsOr, [_observations(c) for c in ctx.observationExpressionOr()]))
        return _observations(ctx.observationExpressionAnd())
    if isinstance(ctx, P.ObservationExpressionAndContext):
        if ctx.AND() is not None:
            return ObsAnd(_flatten(ObsAnd, [_observations(c) for c in ctx.observationExpressionAnd()]))
        return _observations(ctx.observationExpression())
    if isinstance(ctx, P.ObservationExpressionSimpleContext):
        return Bracket(_comparison(ctx.comparisonExpression()))
    if isinstance(ctx, P.ObservationExpressionCompoundContext):
        return _observations(ctx.observationExpressions())
    if isinstance(ctx, P.ObservationExpressionWithinContext):
        qualifier = ctx.withinQualifier()
        seconds = _literal(qualifier.IntPosLiteral() or qualifier.FloatPosLiteral())
        assert isinstance(seconds, int | float)
        if seconds <= 0:
            raise PatternError(f"WITHIN needs a positive number of seconds, got {seconds:g}")
        return Within(_observations(ctx.observationExpression()), float(seconds))
    if isinstance(ctx, P.ObservationExpressionRepeatedContext):
        times = _literal(ctx.repeatedQualifier().IntPosLiteral())
        if not isinstance(times, int) or times < 1:
            raise PatternError(f"REPEATS needs a count of at least 1, got {times!r}")
        return Repeats(_observations(ctx.observationExpression()), times)
    if isinstance(ctx, P.ObservationExpressionStartStopContext):
        qualifier = ctx.startStopQualifier()
        start, stop = _literal(qualifier.TimestampLiteral(0)), _literal(qualifier.TimestampLiteral(1))
        assert isinstance(start, datetime) and isinstance(stop, datetime)
        return StartStop(_observations(ctx.observationExpression()), start, stop)
    raise PatternError(f"unsupported observation expression: {ctx.getText()}")


def _flatten(kind: type[ObsAnd] | type[ObsOr], items: list[ObsExpr]) -> tuple[ObsExpr, ...]:
    # AND and OR are associative, so nested same-kind nodes are merged into one n-ary node.
    flat: list[ObsExpr] = []
    for item in items:
        flat.extend(item.operands if isinstance(item, kind) else (item,))
    return tuple(flat)


def _comparison(ctx: Any) -> CompExpr:
    if isinstance(ctx, P.ComparisonExpressionContext):
        if ctx.OR() is not None:
            return _comp_flat(CompOr, [_comparison(c) for c in ctx.comparisonExpression()])
        return _comparison(ctx.comparisonExpressionAnd())
    if isinstance(ctx, P.ComparisonExpressionAndContext):
        if ctx.AND() is not None:
            return _comp_flat(CompAnd, [_comparison(c) for c in ctx.comparisonExpressionAnd()])
        return _comparison(ctx.propTest())
    if isinstance(ctx, P.PropTestParenContext):
        return _comparison(ctx.comparisonExpression())
    return _prop_test(ctx)


def _comp_flat(kind: type[CompAnd] | type[CompOr], items: list[CompExpr]) -> CompExpr:
    flat: list[CompExpr] = []
    for item in items:
        flat.extend(item.operands if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


def _prop_test(ctx: Any) -> Comparison:
    path = _object_path(ctx.objectPath())
    negated = ctx.NOT() is not None
    if isinstance(ctx, P.PropTestEqualContext):
        op = Op.EQ if ctx.EQ() is not None else Op.NE
        return Comparison(path, op, negated, _literal(_terminal(ctx.primitiveLiteral())))
    if isinstance(ctx, P.PropTestOrderContext):
        op = Op.LT if ctx.LT() else Op.LE if ctx.LE() else Op.GT if ctx.GT() else Op.GE
        return Comparison(path, op, negated, _literal(_terminal(ctx.orderableLiteral())))
    if isinstance(ctx, P.PropTestSetContext):
        return Comparison(path, Op.IN, negated, _set_literal(ctx.setLiteral()))
    if isinstance(ctx, P.PropTestExistsContext):
        return Comparison(path, Op.EXISTS, negated, None)
    ops = {
        P.PropTestLikeContext: Op.LIKE,
        P.PropTestRegexContext: Op.MATCHES,
        P.PropTestIsSubsetContext: Op.ISSUBSET,
        P.PropTestIsSupersetContext: Op.ISSUPERSET,
    }
    op = ops[type(ctx)]
    text = _literal(ctx.StringLiteral())
    assert isinstance(text, str)
    if op is Op.MATCHES:
        try:
            re.compile(unicodedata.normalize("NFC", text))
        except re.error as exc:
            raise PatternError(f"invalid MATCHES regular expression {text!r}: {exc}") from exc
    return Comparison(path, op, negated, text)


def _set_literal(ctx: Any) -> tuple[Constant, ...]:
    values = tuple(_literal(_terminal(item)) for item in ctx.primitiveLiteral())
    kinds = {type(v) for v in values}
    # STIX 2.1 patterning, "Set Constants": the values of a set share one type;
    # ints and floats count as one numeric type.
    if len(kinds) > 1 and not kinds <= {int, float}:
        raise PatternError(f"set constant mixes types: {ctx.getText()}")
    return values


def _object_path(ctx: Any) -> ObjectPath:
    type_token = ctx.objectType().IdentifierWithoutHyphen() or ctx.objectType().IdentifierWithHyphen()
    first = ctx.firstPathComponent()
    steps: list[Step] = [_key(first)]
    component = ctx.objectPathComponent()
    if component is not None:
        steps.extend(_path_steps(component))
    return ObjectPath(type_token.getText(), tuple(steps))


def _path_steps(ctx: Any) -> list[Step]:
    if isinstance(ctx, P.PathStepContext):
        return [step for child in ctx.objectPathComponent() for step in _path_steps(child)]
    if isinstance(ctx, P.KeyPathStepContext):
        return [_key(ctx)]
    if ctx.ASTERISK() is not None:
        return [AnyIndex()]
    index = _literal(ctx.IntPosLiteral() or ctx.IntNegLiteral())
    assert isinstance(index, int)
    return [index]


def _key(ctx: Any) -> str:
    if ctx.IdentifierWithoutHyphen() is not None:
        return str(ctx.IdentifierWithoutHyphen().getText())
    key = _literal(ctx.StringLiteral())
    assert isinstance(key, str)
    return key


def _terminal(ctx: Any) -> Any:
    """The single literal token under a primitiveLiteral/orderableLiteral context."""
    while not hasattr(ctx, "getSymbol"):
        ctx = ctx.getChild(0)
    return ctx


def _literal(token: Any) -> Constant:
    kind, text = token.getSymbol().type, str(token.getText())
    try:
        if kind in (P.IntPosLiteral, P.IntNegLiteral):
            return int(text)
        if kind in (P.FloatPosLiteral, P.FloatNegLiteral):
            return float(text)
        if kind == P.StringLiteral:
            return _STRING_ESCAPE.sub(r"\1", text[1:-1])
        if kind == P.BoolLiteral:
            return text.lower() == "true"
        if kind == P.HexLiteral:
            return binascii.a2b_hex(text[2:-1])
        if kind == P.BinaryLiteral:
            return base64.b64decode(text[2:-1], validate=True)
        if kind == P.TimestampLiteral:
            return parse_timestamp(text[2:-1])
    except (ValueError, binascii.Error) as exc:
        raise PatternError(f"invalid literal {text}: {exc}") from exc
    raise PatternError(f"unsupported literal {text}")
