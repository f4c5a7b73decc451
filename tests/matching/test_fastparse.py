"""The hand-written parser against both references.

* AST: `parse_pattern_fast(p) == parse_pattern(p)` on every valid pattern we have (the design
  document, the data bundles, the 300 generated differential patterns, a hand-written list).
* Acceptance: `parse_pattern_fast` accepts a pattern exactly when stix2-patterns 2.1.2's
  `run_validator(p, stix_version="2.1")` returns no errors, on a seeded corpus of mutants of
  the valid patterns. A pattern on which run_validator raises counts as refused by it.

The only allowed differences are stricter verdicts, each listed in DIVERGENCES below.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from oracle_harness import SEED, collect_values, make_account, make_patterns
from stix2patterns.validator import run_validator

from indicators.matching import account_observations
from indicators.matching.fastparse import parse_pattern_fast
from indicators.matching.nodes import Bracket, ObsExpr, StartStop
from indicators.matching.parser import PatternError, parse_pattern

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Path("/work/shared/DOMAIN.md")
MUTANT_COUNT = 6000
MUTATION_SEED = SEED + 77

# ---------------------------------------------------------------------------- corpora


def domain_patterns() -> list[str]:
    if not DOMAIN.exists():
        return []
    text = DOMAIN.read_text()
    found = re.findall(r"`(\[[^`]*\])`", text)
    found += [json.loads(f'"{m}"') for m in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', text)]
    return list(dict.fromkeys(found))


def bundle_patterns() -> list[str]:
    patterns = []
    for path in sorted((ROOT / "tests" / "data").glob("*.json")):
        for obj in json.loads(path.read_text()).get("objects", []):
            if obj.get("type") == "indicator" and obj.get("pattern_type", "stix") == "stix":
                patterns.append(obj["pattern"])
    return patterns


def generated_patterns() -> list[str]:
    rng = random.Random(SEED)
    observations = [account_observations(make_account(rng, i)) for i in range(200)]
    return make_patterns(collect_values(observations), 300)


TS1 = "t'2026-01-01T00:00:00Z'"
TS2 = "t'2026-02-01T12:30:45.123456789Z'"
IP_EXT = "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03"

HAND_WRITTEN = [
    # every comparison operator, with and without NOT
    "[file:name = 'a']",
    "[file:name == 'a']",
    "[file:name != 'a']",
    "[file:name <> 'a']",
    "[file:size < 10]",
    "[file:size <= 10]",
    "[file:size > 10]",
    "[file:size >= 10]",
    "[file:name NOT = 'a']",
    "[file:name NOT != 'a']",
    "[file:size NOT < 10]",
    "[file:size NOT >= -10]",
    "[file:name IN ('a', 'b', 'c')]",
    "[file:name NOT IN ('a')]",
    "[file:size IN (1, 2.5, -3, +4, .5)]",
    "[file:name IN ()]",
    "[file:flag IN (true, false)]",
    "[file:data IN (h'00ff', b'AAAA')]",
    "[file:name LIKE 'a%_']",
    "[file:name NOT LIKE 'a%']",
    "[file:name MATCHES '^[a-z]+\\\\.exe$']",
    "[file:name NOT MATCHES 'x{2,3}']",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "[ipv4-addr:value NOT ISSUBSET '198.51.100.0/24']",
    "[ipv4-addr:value ISSUPERSET '198.51.100.7']",
    "[ipv4-addr:value NOT ISSUPERSET '198.51.100.7']",
    "[EXISTS file:name]",
    "[NOT EXISTS file:name]",
    "[EXISTS file:hashes.'SHA-256']",
    # literal kinds
    "[x-a:v = 0]",
    "[x-a:v = -0]",
    "[x-a:v = +17]",
    "[x-a:v = -17]",
    "[x-a:v = 123456789012345678901234567890]",
    "[x-a:v = 1.5]",
    "[x-a:v = -1.5]",
    "[x-a:v = +1.5]",
    "[x-a:v = .25]",
    "[x-a:v = -.25]",
    "[x-a:v = 007.5]",
    "[x-a:v = true]",
    "[x-a:v = false]",
    "[x-a:v != true]",
    f"[x-a:v = {TS1}]",
    f"[x-a:v > {TS2}]",
    "[x-a:v = t'2024-02-29T23:59:59.5Z']",
    "[x-a:v = h'']",
    "[x-a:v = h'00ffAB']",
    "[x-a:v = b'AAAA']",
    "[x-a:v = b'AA==']",
    "[x-a:v = b'AAA=']",
    "[x-a:v = b'aGVsbG8gd29ybGQ=']",
    "[x-a:v < h'10']",
    "[x-a:v >= b'+/+/']",
    # strings: escapes, unicode, odd content
    "[x-a:v = '']",
    "[x-a:v = 'it\\'s']",
    "[x-a:v = 'back\\\\slash']",
    "[x-a:v = '\\\\\\'']",
    "[x-a:v = 'ünïcödé ✓ 漢字 🙂']",
    "[x-a:v = 'line\nbreak\ttab']",
    "[x-a:v = ']) AND [ /* not a comment */']",
    "[x-a:v = '\"double\"']",
    "[x-a:v LIKE '100\\\\%']",
    # object paths
    "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
    "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
    "[file:hashes.sha1 = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
    "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
    "[file:hashes.SSDEEP = '3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C']",
    "[file:hashes[*] = 'x']",
    "[file:hashes.other = 'x']",
    "[file:'name' = 'a']",
    "[file:'we\\'ird key' = 'a']",
    "[file:extensions.'ntfs-ext'.sid = 'a']",
    f"[ipv4-addr:extensions.'{IP_EXT}'.proxy_type = 'residential']",
    "[x:list[0] = 1]",
    "[x:list[+3] = 1]",
    "[x:list[*].a[1].b[*] = 1]",
    "[x:a.b.c.d = 1]",
    "[network-traffic:src_ref.value = '10.0.0.1']",
    "[_x:_y = 1]",
    "[x-:y = 1]",
    "[a_b-c:d_e = 1]",
    "[File:Name = 1]",
    "[x:ANDroid = 1]",
    "[x:true1 = 1]",
    "[x:TRUE = 1]",
    "[x:last = 1]",
    # boolean operators, precedence, parentheses
    "[x:a = 1 AND x:b = 2]",
    "[x:a = 1 OR x:b = 2]",
    "[x:a = 1 OR x:b = 2 AND x:c = 3]",
    "[(x:a = 1 OR x:b = 2) AND x:c = 3]",
    "[x:a = 1 AND (x:b = 2 OR x:c = 3)]",
    "[((x:a = 1))]",
    "[(x:a = 1 OR x:b = 2) OR (x:c = 3 OR x:d = 4)]",
    "[(x:a = 1 AND x:b = 2) AND x:c = 3 AND (x:d = 4)]",
    "[x:a = 1 OR (x:b = 2 AND (x:c = 3 OR (x:d = 4 AND x:e = 5)))]",
    "[" + " OR ".join(f"x:v = {i}" for i in range(200)) + "]",
    "[" + " AND ".join(f"x:v{i} != 'q{i}'" for i in range(60)) + "]",
    # observation operators, precedence, associativity, parentheses
    "[x:a = 1] AND [x:b = 2]",
    "[x:a = 1] OR [x:b = 2]",
    "[x:a = 1] FOLLOWEDBY [x:b = 2]",
    "[x:a = 1] FOLLOWEDBY [x:b = 2] FOLLOWEDBY [x:c = 3]",
    "[x:a = 1] FOLLOWEDBY ([x:b = 2] FOLLOWEDBY [x:c = 3])",
    "[x:a = 1] OR [x:b = 2] AND [x:c = 3] FOLLOWEDBY [x:d = 4] OR [x:e = 5]",
    "([x:a = 1] OR [x:b = 2]) AND [x:c = 3]",
    "(([x:a = 1] OR [x:b = 2]) OR [x:c = 3])",
    "((([x:a = 1])))",
    "([x:a = 1] AND [x:b = 2]) AND ([x:c = 3] AND [x:d = 4])",
    " OR ".join(f"[x:v = {i}]" for i in range(120)),
    # qualifiers
    "[x:a = 1] WITHIN 5 SECONDS",
    "[x:a = 1] WITHIN 2.5 SECONDS",
    "[x:a = 1] WITHIN .5 SECONDS",
    "[x:a = 1] WITHIN +5 SECONDS",
    "[x:a = 1] REPEATS 3 TIMES",
    "[x:a = 1] REPEATS +1 TIMES",
    f"[x:a = 1] START {TS1} STOP {TS2}",
    f"[x:a = 1] REPEATS 2 TIMES WITHIN 10 SECONDS START {TS1} STOP {TS2}",
    "([x:a = 1] WITHIN 1 SECONDS) WITHIN 2 SECONDS",
    "([x:a = 1]) WITHIN 1 SECONDS WITHIN 2 SECONDS",
    "[x:a = 1] AND [x:b = 2] WITHIN 5 SECONDS",
    "([x:a = 1] AND [x:b = 2]) WITHIN 5 SECONDS",
    "([x:a = 1] FOLLOWEDBY [x:b = 2]) REPEATS 2 TIMES",
    "[x:a = 1] WITHIN 5SECONDS",
    # white space and comments
    "  [x:a = 1]  ",
    "\t\n[x:a=1]\r\n",
    "[ x : a . b [ 0 ] = 1 ]",
    "[x:a\u00a0=\u20031]\u3000AND\u2028[x:b = 2]",
    "[x:a = 1 /* note */ AND x:b = 2] // trailing comment",
    "[x:a = 1]/**/OR/* multi\nline */[x:b = 2]",
    "[x:a=1]AND[x:b=2]",
    "( [x:a = 1] )",
    "(\n[x:a = 1])",
    "[x:a = 5AND x:b = 6]",
]

# Patterns stix2-patterns accepts but parse_pattern_fast refuses on purpose (all stricter).
# Each entry: pattern -> the STIX 2.1 rule behind the refusal. The mutation test classifies
# its divergences into these same reasons.
DIVERGENCES = {
    # STIX 2.1 Part 9 (Patterning), "Pattern Qualifiers": REPEATS takes a positive integer.
    # parse_pattern refuses it too; stix2-patterns' grammar token IntPosLiteral admits 0.
    "[x:a = 1] REPEATS 0 TIMES": "qualifier-range",
    # Same table: WITHIN takes a positive number of seconds (0 is not a time window).
    "[x:a = 1] WITHIN 0 SECONDS": "qualifier-range",
    "[x:a = 1] WITHIN 0.0 SECONDS": "qualifier-range",
    # Same table: START/STOP bound a time window; one whose STOP is not later than its START
    # is empty or reversed. stix2-patterns never compares the two; parse_pattern accepts it.
    f"[x:a = 1] START {TS2} STOP {TS1}": "start-not-before-stop",
    f"[x:a = 1] START {TS1} STOP {TS1}": "start-not-before-stop",
    # STIX 2.1 §3.2 "timestamp": an RFC 3339 instant. The grammar admits any day 01-31 in any
    # month; parse_pattern (datetime) refuses impossible dates.
    "[x:a = t'2025-02-29T00:00:00Z']": "timestamp",
    "[x:a = t'2026-04-31T00:00:00Z']": "timestamp",
    # The grammar admits second 60 (RFC 3339 leap second); Python datetimes cannot hold it,
    # so parse_pattern refuses it. Stricter than RFC 3339, inherited from parse_pattern.
    "[x:a = t'2026-06-30T23:59:60Z']": "timestamp",
    # STIX 2.1 Part 9, "Set Constants": all values of a set share one type.
    "[x:a IN ('a', 1)]": "mixed-set",
    "[x:a IN (true, 1)]": "mixed-set",
    # STIX 2.1 Part 9, MATCHES: the right side is a valid (PCRE) regular expression.
    # parse_pattern compiles it with Python's re; stix2-patterns never checks it.
    "[x:a MATCHES '(']": "regex",
    "[x:a MATCHES '[a-']": "regex",
}

# Patterns on which stix2-patterns' run_validator raises (so it gives no verdict); the fast
# parser refuses them, as the project's own validation (indicators.stix) then fails too.
VALIDATOR_CRASHES = [
    "[x:list[-1] = 1]",  # inspector: int(ctx.IntPosLiteral().getText()) on an IntNegLiteral
    "[EXISTS x:list[-2].a]",
    "[file:hashes[0] = 'x']",  # object_validator: hash_selector.upper() on an int
    "[file:hashes.'MD5'[1] = 'x']",
]

HAND_INVALID = [
    "",
    "   ",
    "[]",
    "[x:a = 1",
    "x:a = 1]",
    "[x:a = 1]]",
    "([x:a = 1]",
    "[x:a = 1])",
    "[x:a = 1] AND",
    "[x:a = 1] OR",
    "[x:a = 1] FOLLOWEDBY",
    "[x:a = 1 AND]",
    "[x:a = 1] and [x:b = 2]",
    "[x:a = 1 or x:b = 2]",
    "[x:a = TRUE]",
    "[x:a = 'unterminated]",
    "[x:a = 'bad \\n escape']",
    "[x:a = 01]",
    "[x:a = 1.]",
    "[x:a = 1e5]",
    "[x:a = h'0']",
    "[x:a = h'zz']",
    "[x:a = b'AAA']",
    "[x:a = b'']",
    "[x:a = t'2026-13-01T00:00:00Z']",
    "[x:a = t'2026-01-01 00:00:00Z']",
    "[x:a = t'2026-01-01T00:00:00']",
    "[x:a = t'2026-01-01T24:00:00Z']",
    "[x:a > true]",
    "[x:a LIKE 5]",
    "[x:a IN 'a']",
    "[x:a IN ('a',)]",
    "[x:a IN (('a'))]",
    "[x:a EXISTS]",
    "[EXISTS NOT x:a]",
    "[NOT x:a = 1]",
    "[x:a NOT NOT = 1]",
    "[x-a:b-c = 1]",
    "[x:a.b-c = 1]",
    "[x:a.5 = 1]",
    "[x:a[1.5] = 1]",
    "[x:a[] = 1]",
    "[x:a. b c = 1]",
    "[x: = 1]",
    "[:a = 1]",
    "[x = 1]",
    "[x:AND = 1]",
    "[x:true = 1]",
    "[x:a.LAST = 1]",
    "[LAST:a = 1]",
    "[-x:a = 1]",
    "[1x:a = 1]",
    "[x:a = 1] WITHIN -1 SECONDS",
    "[x:a = 1] WITHIN 5 MINUTES",
    "[x:a = 1] WITHIN SECONDS",
    "[x:a = 1] REPEATS 1.5 TIMES",
    "[x:a = 1] REPEATS -2 TIMES",
    f"[x:a = 1] START {TS1}",
    f"[x:a = 1] START '2026-01-01T00:00:00Z' STOP {TS2}",
    "[x:a = 1] WITHIN 1 SECONDS WITHIN 2 SECONDS",
    "[x:a = 1] REPEATS 2 TIMES WITHIN 1 SECONDS REPEATS 3 TIMES",
    f"[x:a = 1] START {TS1} STOP {TS2} START {TS1} STOP {TS2}",
    "/* lead */ [x:a = 1]",
    "// lead\n[x:a = 1]",
    "[x:a = 1] # tail",
    "[x:a = 1] @",
    "[x:a = 1]\x1c",
    "[x:a ! 1]",
    "[x:a = 1] /* open",
    "[x:a = 1] /",
    "[file:hashes.MD5 = 'abc']",
    "[file:hashes.'SHA-256' = 'zz']",
    "[file:hashes.sha256 IN ('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')]",
    "[file:hashes.MD5 = 5]",
    "[(x:a = 1]",
    "[x:a = 1)]",
    "[[x:a = 1]]",
    "()",
    "([])",
]


# ---------------------------------------------------------------------------- verdicts


def stix2patterns_accepts(pattern: str) -> bool:
    try:
        return not run_validator(pattern, stix_version="2.1")
    except Exception:  # noqa: BLE001 - a crash of the reference is a refusal, see VALIDATOR_CRASHES
        return False


def fast(pattern: str) -> ObsExpr | PatternError:
    try:
        return parse_pattern_fast(pattern)
    except PatternError as exc:
        return exc


def slow(pattern: str) -> ObsExpr | PatternError:
    try:
        return parse_pattern(pattern)
    except PatternError as exc:
        return exc


def _walk(node: object) -> list[object]:
    found = [node]
    for name in ("expr", "left", "right"):
        if hasattr(node, name) and not isinstance(node, Bracket):
            found.extend(_walk(getattr(node, name)))
    for child in getattr(node, "operands", ()) if not isinstance(node, Bracket) else ():
        found.extend(_walk(child))
    return found


def divergence_reason(pattern: str) -> str | None:
    """Why the fast parser may refuse a pattern stix2-patterns accepts, or None."""
    reference = slow(pattern)
    if isinstance(reference, PatternError):
        text = str(reference)
        if "WITHIN needs" in text or "REPEATS needs" in text:
            return "qualifier-range"
        if "invalid literal t'" in text:
            return "timestamp"
        if "set constant mixes types" in text:
            return "mixed-set"
        if "MATCHES regular expression" in text:
            return "regex"
        return "other: " + text
    for node in _walk(reference):
        if isinstance(node, StartStop) and node.stop <= node.start:
            return "start-not-before-stop"
    return None


# ---------------------------------------------------------------------------- AST tests


@pytest.fixture(scope="module")
def generated() -> list[str]:
    return generated_patterns()


def _ast_mismatches(patterns: list[str]) -> list[str]:
    bad = []
    for pattern in patterns:
        want, got = slow(pattern), fast(pattern)
        if isinstance(want, PatternError):
            bad.append(f"reference refuses {pattern!r}: {want}")
        elif got != want:
            bad.append(f"{pattern!r}: {got!r} != {want!r}")
    return bad


def test_domain_patterns_same_ast() -> None:
    # Backticked bracket snippets of the design document: the patterns, plus a few prose
    # fragments such as `[A] AND [B]` or `[a-z0-9-]` that every parser must refuse.
    patterns = domain_patterns()
    valid = [p for p in patterns if stix2patterns_accepts(p)]
    assert len(valid) >= 10
    assert _ast_mismatches(valid) == []
    for pattern in patterns:
        assert isinstance(fast(pattern), PatternError) != stix2patterns_accepts(pattern), pattern


def test_bundle_patterns_same_ast() -> None:
    patterns = bundle_patterns()
    assert len(patterns) >= 3
    assert _ast_mismatches(patterns) == []


def test_generated_patterns_same_ast(generated: list[str]) -> None:
    assert len(generated) == 300
    assert _ast_mismatches(generated) == []


def test_hand_written_same_ast() -> None:
    assert _ast_mismatches(HAND_WRITTEN) == []


def test_hand_written_accepted_by_stix2patterns() -> None:
    assert [p for p in HAND_WRITTEN if not stix2patterns_accepts(p)] == []


@pytest.mark.parametrize("pattern", HAND_INVALID)
def test_hand_invalid_refused_by_both(pattern: str) -> None:
    assert not stix2patterns_accepts(pattern)
    with pytest.raises(PatternError, match="position"):
        parse_pattern_fast(pattern)


@pytest.mark.parametrize("pattern,reason", sorted(DIVERGENCES.items()))
def test_documented_divergences(pattern: str, reason: str) -> None:
    assert stix2patterns_accepts(pattern)
    with pytest.raises(PatternError):
        parse_pattern_fast(pattern)
    assert divergence_reason(pattern) == reason


@pytest.mark.parametrize("pattern", VALIDATOR_CRASHES)
def test_validator_crashes_are_refused(pattern: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - AttributeError inside stix2-patterns
        run_validator(pattern, stix_version="2.1")
    with pytest.raises(PatternError):
        parse_pattern_fast(pattern)


def test_within_overflow_is_refused() -> None:
    # The grammar admits any IntPosLiteral; stix2-patterns accepts it, parse_pattern crashes
    # (OverflowError converting it to a float). The fast parser refuses it with PatternError.
    pattern = "[x:a = 1] WITHIN 1" + "0" * 400 + " SECONDS"
    assert stix2patterns_accepts(pattern)
    with pytest.raises(OverflowError):
        parse_pattern(pattern)
    with pytest.raises(PatternError, match="too large"):
        parse_pattern_fast(pattern)


def test_keywords_are_case_sensitive() -> None:
    # The 2.1 grammar spells every keyword in upper case (true/false in lower case).
    for pattern in [
        "[x:a = 1] and [x:b = 2]",
        "[x:a = 1] Or [x:b = 2]",
        "[x:a = True]",
        "[x:a = 1] within 5 seconds",
    ]:
        assert not stix2patterns_accepts(pattern)
        assert isinstance(fast(pattern), PatternError)


def test_ast_values() -> None:
    tree = parse_pattern_fast(f"[x:a = 'it\\'s \\\\ ok' AND x:b = {TS2}]")
    assert tree == slow(f"[x:a = 'it\\'s \\\\ ok' AND x:b = {TS2}]")
    assert isinstance(tree, Bracket)
    comparisons = tree.expr.operands  # type: ignore[union-attr]
    assert comparisons[0].value == "it's \\ ok"
    assert comparisons[1].value == datetime(2026, 2, 1, 12, 30, 45, 123456, tzinfo=UTC)


def test_error_names_position_and_problem() -> None:
    with pytest.raises(PatternError, match=r"position 7: expected a constant"):
        parse_pattern_fast("[x:a = ]")
    with pytest.raises(PatternError, match=r"position 10: unexpected character '#'"):
        parse_pattern_fast("[x:a = 1] #")


# ---------------------------------------------------------------------------- mutants

_TOKENISH = re.compile(
    r"'(?:[^'\\]|\\.)*'|[thb]'(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_-]*|[+-]?[0-9]*\.?[0-9]+|<=|>=|!=|<>|==|\s+|."
)
_INSERT_CHARS = list("[]()'\":.,*=<>!-+_ \t\n/\\aZ09tbhx#$@") + ["\u00a0", "é", "/*", "*/", "//"]
_INSERT_TOKENS = [
    "AND", "OR", "NOT", "FOLLOWEDBY", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS", "IN",
    "START", "STOP", "WITHIN", "SECONDS", "REPEATS", "TIMES", "LAST", "and", "true", "false", "TRUE",
    "[", "]", "(", ")", ":", ".", ",", "=", "!=", "<", ">=", "*", "[*]", "[0]", "[-1]", "'x'", "''",
    "1", "-1", "0", "1.5", ".5", "+2", "h'0f'", "b'AAAA'", TS1, "x:a", "file:hashes.MD5",
    "hashes", "'SHA-256'", "/* c */", "// c\n",
]  # fmt: skip
_BAD_TIMESTAMPS = [
    "t'2026-02-30T00:00:00Z'", "t'2026-13-01T00:00:00Z'", "t'2026-1-01T00:00:00Z'",
    "t'2026-01-01T00:00:60Z'", "t'2026-01-01T00:00:00'", "t'2026-01-01T00:00:00.Z'",
    "t'2026-01-01t00:00:00Z'", "'2026-01-01T00:00:00Z'", "t'2026-01-01T25:00:00Z'",
    "t'0000-01-01T00:00:00Z'", "t'2026-01-01T00:00:00+00:00'",
]  # fmt: skip
_QUALIFIERS = [
    " REPEATS 0 TIMES", " REPEATS 1 TIMES", " REPEATS 2 TIMES", " REPEATS -1 TIMES", " REPEATS 2.0 TIMES",
    " WITHIN -1 SECONDS", " WITHIN 0 SECONDS", " WITHIN 0.0 SECONDS", " WITHIN 1 SECONDS",
    " WITHIN .5 SECONDS",
    " WITHIN 1 SECOND", " WITHIN 5 TIMES", f" START {TS1} STOP {TS2}", f" START {TS2} STOP {TS1}",
    f" START {TS1} STOP {TS1}", f" START {TS1}", f" STOP {TS2}", " START t'2026-01-01T00:00:00Z' STOP 5",
]  # fmt: skip
_OBJECT_TYPES = [
    "File",
    "FILE",
    "x",
    "X",
    "x-",
    "-x",
    "1x",
    "x_y",
    "x y",
    "x.y",
    "'x'",
    "x--y",
    "AND",
    "true",
    "",
]
_PROPERTY_NAMES = ["na-me", "na me", "na$me", "Name", "'na-me'", "1name", "_n", "AND", "true", "", "'it\\'s'"]
_HASH_VALUES = ["'abc'", "'d41d8cd98f00b204e9800998ecf8427e'", "'D41D8CD98F00B204E9800998ECF8427E'", "5",
                "'d41d8cd98f00b204e9800998ecf8427e\n'", "h'd41d8cd98f00b204e9800998ecf8427e'",
                "'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
                "'3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C'"]  # fmt: skip
_HASH_KEYS = [
    "MD5",
    "md5",
    "'MD5'",
    "'SHA-256'",
    "SHA256",
    "'SHA-1'",
    "SSDEEP",
    "MD6",
    "'sha3-256'",
    "WHIRLPOOL",
    "x",
]


def _mutate(rng: random.Random, pattern: str) -> str:
    tokens = _TOKENISH.findall(pattern)
    kind = rng.randrange(22)
    if kind == 0:  # delete a character
        i = rng.randrange(len(pattern))
        return pattern[:i] + pattern[i + 1 :]
    if kind == 1:  # insert a character
        i = rng.randrange(len(pattern) + 1)
        return pattern[:i] + rng.choice(_INSERT_CHARS) + pattern[i:]
    if kind == 2:  # duplicate a character
        i = rng.randrange(len(pattern))
        return pattern[: i + 1] + pattern[i:]
    if kind == 3:  # delete a token
        i = rng.randrange(len(tokens))
        return "".join(tokens[:i] + tokens[i + 1 :])
    if kind == 4:  # duplicate a token
        i = rng.randrange(len(tokens))
        return "".join(tokens[: i + 1] + tokens[i:])
    if kind == 5:  # insert a token
        i = rng.randrange(len(tokens) + 1)
        return "".join(
            tokens[:i]
            + [rng.choice([" ", ""]) + rng.choice(_INSERT_TOKENS) + rng.choice([" ", ""])]
            + tokens[i:]
        )
    if kind == 6:  # swap a bracket for a parenthesis or back
        spots = [i for i, c in enumerate(pattern) if c in "[]()"]
        if spots:
            i = rng.choice(spots)
            swap = {"[": "(", "(": "[", "]": ")", ")": "]"}[pattern[i]]
            return pattern[:i] + swap + pattern[i + 1 :]
    if kind == 7:  # drop a quote
        spots = [i for i, c in enumerate(pattern) if c == "'"]
        if spots:
            i = rng.choice(spots)
            return pattern[:i] + pattern[i + 1 :]
    if kind == 8:  # bad timestamp
        if "t'" in pattern:
            return re.sub(r"t'[^']*'", lambda _: rng.choice(_BAD_TIMESTAMPS), pattern, count=1)
        return pattern.replace("]", f" AND x:t = {rng.choice(_BAD_TIMESTAMPS)}]", 1)
    if kind == 9:  # bad hex / binary literal
        bad = rng.choice(
            ["h'0'", "h'0g'", "h''", "h'00'", "H'00'", "b'AAA'", "b'A==='", "b''", "b'AA=='", "b'A-AA'"]
        )
        return (
            re.sub(r"= '[^']*'", "= " + bad, pattern, count=1)
            if "= '" in pattern
            else pattern + f" AND [x:y = {bad}]"
        )
    if kind == 10:  # empty brackets
        return rng.choice(["[]", "[ ]"]) + rng.choice(["", " AND ", " OR "]) * (rng.random() < 0.5) + pattern
    if kind == 11:  # trailing or leading operator
        op = rng.choice(["AND", "OR", "FOLLOWEDBY", "NOT", "WITHIN", "=", ","])
        return pattern + " " + op if rng.random() < 0.7 else op + " " + pattern
    if kind == 12:  # unbalanced parens
        return rng.choice(
            ["(" + pattern, pattern + ")", "((" + pattern + ")", "(" + pattern + "))", "(" + pattern + ")"]
        )
    if kind == 13:  # qualifiers, good and bad, possibly duplicated
        qualified = pattern + rng.choice(_QUALIFIERS)
        if rng.random() < 0.4:
            qualified += rng.choice(_QUALIFIERS)
        return "(" + qualified + ")" + rng.choice(_QUALIFIERS) if rng.random() < 0.2 else qualified
    if kind == 14:  # invalid object types
        return re.sub(r"[A-Za-z0-9_-]+:", lambda _: rng.choice(_OBJECT_TYPES) + ":", pattern, count=1)
    if kind == 15:  # property names with bad characters
        return re.sub(r":[A-Za-z0-9_]+", lambda _: ":" + rng.choice(_PROPERTY_NAMES), pattern, count=1)
    if kind == 16:  # ":value" (or the whole path tail) missing
        return re.sub(r":[A-Za-z0-9_.'*\[\]-]+", "", pattern, count=1)
    if kind == 17:  # hash comparisons
        key, value = rng.choice(_HASH_KEYS), rng.choice(_HASH_VALUES)
        op = rng.choice(["=", "!=", "NOT =", "LIKE", "IN", ">"])
        rhs = f"({value})" if op == "IN" else value
        return pattern.replace("]", f" OR file:hashes.{key} {op} {rhs}]", 1)
    if kind == 18:  # lower-case or mangle a keyword
        words = [i for i, t in enumerate(tokens) if t.isupper() and t.isalpha()]
        if words:
            i = rng.choice(words)
            tokens[i] = rng.choice([tokens[i].lower(), tokens[i].title(), tokens[i][:-1], tokens[i] + "S"])
            return "".join(tokens)
    if kind == 19:  # list indexes
        index = rng.choice(["[*]", "[0]", "[-1]", "[+2]", "[1.5]", "[]", "[ * ]", "[x]", "['a']"])
        return re.sub(r":([A-Za-z0-9_]+)", lambda m: ":" + m.group(1) + index, pattern, count=1)
    if kind == 20:  # comments and odd white space
        i = rng.randrange(len(tokens) + 1)
        filler = rng.choice(
            ["/* c */", "/**/", "// c\n", "\u2003", "\x0b", "\x1c", "\u200b", "\r\n", "/*", "*/"]
        )
        return "".join(tokens[:i] + [filler] + tokens[i:])
    # swap two tokens
    if len(tokens) > 1:
        i = rng.randrange(len(tokens) - 1)
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        return "".join(tokens)
    return pattern


def make_mutants(seeds: list[str], count: int) -> list[str]:
    rng = random.Random(MUTATION_SEED)
    mutants: list[str] = []
    seen = set(seeds)
    while len(mutants) < count:
        mutant = rng.choice(seeds)
        for _ in range(1 if rng.random() < 0.75 else rng.randint(2, 3)):
            mutant = _mutate(rng, mutant) if mutant else "[x:a = 1]"
        if mutant not in seen:
            seen.add(mutant)
            mutants.append(mutant)
    return mutants


@pytest.fixture(scope="module")
def seeds(generated: list[str]) -> list[str]:
    return list(dict.fromkeys(domain_patterns() + bundle_patterns() + generated + HAND_WRITTEN))


def test_mutants_same_acceptance_as_stix2patterns(seeds: list[str]) -> None:
    mutants = make_mutants(seeds, MUTANT_COUNT)
    assert len(mutants) == MUTANT_COUNT
    wrongly_accepted: list[str] = []
    unexplained: list[str] = []
    ast_mismatch: list[str] = []
    reasons: Counter[str] = Counter()
    accepted = 0
    for mutant in mutants:
        reference = stix2patterns_accepts(mutant)
        got = fast(mutant)
        ours = not isinstance(got, PatternError)
        if ours and not reference:
            wrongly_accepted.append(mutant)
        elif reference and not ours:
            reason = divergence_reason(mutant)
            if reason is None or reason.startswith("other"):
                unexplained.append(f"{mutant!r}: {got} ({reason})")
            else:
                reasons[reason] += 1
        elif ours:
            accepted += 1
            if got != slow(mutant):
                ast_mismatch.append(mutant)
    print(f"\n{len(mutants)} mutants, {accepted} accepted by both, divergences: {dict(reasons)}")
    assert wrongly_accepted == []
    assert unexplained == []
    assert ast_mismatch == []
    # The corpus must exercise both verdicts in bulk.
    assert accepted > 500
    assert len(mutants) - accepted - sum(reasons.values()) > 2500
    assert set(reasons) <= set(DIVERGENCES.values())
