"""Parsing STIX 2.1 patterns into the AST, and rejecting invalid ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from indicators.matching import PatternError, parse_pattern
from indicators.matching.nodes import (
    AnyIndex,
    Bracket,
    CompAnd,
    Comparison,
    CompOr,
    FollowedBy,
    ObjectPath,
    ObsAnd,
    ObsOr,
    Op,
    Repeats,
    StartStop,
    Within,
)

EXT = "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03"


def only_comparison(pattern: str) -> Comparison:
    tree = parse_pattern(pattern)
    assert isinstance(tree, Bracket) and isinstance(tree.expr, Comparison)
    return tree.expr


@pytest.mark.parametrize(
    ("text", "op", "negated"),
    [
        ("=", Op.EQ, False),
        ("!=", Op.NE, False),
        ("<", Op.LT, False),
        ("<=", Op.LE, False),
        (">", Op.GT, False),
        (">=", Op.GE, False),
        ("NOT =", Op.EQ, True),
        ("NOT !=", Op.NE, True),
        ("NOT <", Op.LT, True),
        ("NOT <=", Op.LE, True),
        ("NOT >", Op.GT, True),
        ("NOT >=", Op.GE, True),
    ],
)
def test_value_operators(text: str, op: Op, negated: bool) -> None:
    assert only_comparison(f"[x-a:b {text} 5]") == Comparison(ObjectPath("x-a", ("b",)), op, negated, 5)


def test_other_operators() -> None:
    assert only_comparison("[x-a:b NOT IN ('p', 'q')]").value == ("p", "q")
    assert only_comparison("[x-a:b IN (1, 2.5)]").op is Op.IN
    assert only_comparison("[x-a:b NOT LIKE 'a%']") == Comparison(
        ObjectPath("x-a", ("b",)), Op.LIKE, True, "a%"
    )
    assert only_comparison("[x-a:b MATCHES '^a.$']").op is Op.MATCHES
    assert only_comparison("[x-a:b NOT ISSUBSET '10.0.0.0/8']").op is Op.ISSUBSET
    assert only_comparison("[x-a:b ISSUPERSET '10.0.0.1']").op is Op.ISSUPERSET
    assert only_comparison("[NOT EXISTS x-a:b]") == Comparison(
        ObjectPath("x-a", ("b",)), Op.EXISTS, True, None
    )


def test_constants() -> None:
    assert only_comparison(r"[x-a:b = 'it\'s a \\ backslash']").value == "it's a \\ backslash"
    assert only_comparison("[x-a:b = -7]").value == -7
    assert only_comparison("[x-a:b = -0.25]").value == -0.25
    assert only_comparison("[x-a:b = true]").value is True
    assert only_comparison("[x-a:b = false]").value is False
    assert only_comparison("[x-a:b = h'0aFF']").value == b"\n\xff"
    assert only_comparison("[x-a:b = b'AQID']").value == b"\x01\x02\x03"
    assert only_comparison("[x-a:b = t'2026-09-14T10:02:00.123456789Z']").value == datetime(
        2026, 9, 14, 10, 2, 0, 123456, tzinfo=UTC
    )


def test_object_paths() -> None:
    assert only_comparison(
        f"[mdx-ai-account:signup_ip_ref.extensions.'{EXT}'.proxy_type = 'vpn']"
    ).path == ObjectPath("mdx-ai-account", ("signup_ip_ref", "extensions", EXT, "proxy_type"))
    assert only_comparison("[mdx-ai-account:payment_refs[*].card_funding = 'prepaid']").path.steps == (
        "payment_refs",
        AnyIndex(),
        "card_funding",
    )
    assert only_comparison("[mdx-prompt-signature:minhash[3] = 1]").path.steps == ("minhash", 3)


def test_boolean_precedence_inside_a_bracket() -> None:
    tree = parse_pattern("[x-a:b = 1 OR x-a:c = 2 AND x-a:d = 3 OR (x-a:e = 4 OR x-a:f = 5)]")
    assert isinstance(tree, Bracket) and isinstance(tree.expr, CompOr)
    first, second, third, fourth = tree.expr.operands
    assert isinstance(second, CompAnd) and len(second.operands) == 2
    assert isinstance(first, Comparison) and isinstance(third, Comparison) and isinstance(fourth, Comparison)


def test_observation_operators_and_qualifiers() -> None:
    tree = parse_pattern(
        "[x-a:b = 1] OR [x-a:b = 2] AND [x-a:b = 3] FOLLOWEDBY ([x-a:b = 4] WITHIN 1.5 SECONDS) "
        "REPEATS 2 TIMES START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'"
    )
    assert isinstance(tree, FollowedBy)
    assert isinstance(tree.left, ObsOr) and isinstance(tree.left.operands[1], ObsAnd)
    assert isinstance(tree.right, StartStop) and isinstance(tree.right.expr, Repeats)
    assert tree.right.expr.times == 2
    within = tree.right.expr.expr
    assert isinstance(within, Within) and within.seconds == 1.5
    # FOLLOWEDBY is left-associative.
    chain = parse_pattern("[x-a:b = 1] FOLLOWEDBY [x-a:b = 2] FOLLOWEDBY [x-a:b = 3]")
    assert isinstance(chain, FollowedBy) and isinstance(chain.left, FollowedBy)


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "x-a:b = 1",
        "[x-a:b = ]",
        "[x-a:b = 'open]",
        "[x-a = 1]",
        "[x-a:b = 1] AND",
        "[x-a:b = 1] WITHIN 0 SECONDS",
        "[x-a:b = 1] REPEATS 0 TIMES",
        "[x-a:b MATCHES '(']",
        "[x-a:b IN (1, 'one')]",
        "[x-a:b IN (true, 1)]",
        "[x-a:b = t'2026-13-01T00:00:00Z']",
        "[x-a:b = t'2026-01-01 00:00:00']",
        "[x-a:b = h'abc']",
        "[x-a:b = b'!!']",
        "[x-a:b EXISTS]",
    ],
)
def test_invalid_patterns_raise_pattern_error(pattern: str) -> None:
    with pytest.raises(PatternError) as info:
        parse_pattern(pattern)
    assert isinstance(info.value, ValueError) and str(info.value)
