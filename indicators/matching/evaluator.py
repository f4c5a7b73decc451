"""Evaluate a compiled STIX 2.1 pattern over a list of observations."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .fastparse import parse_pattern_fast as parse_pattern
from .nodes import (
    AnyIndex,
    Bracket,
    CompAnd,
    Comparison,
    CompExpr,
    CompOr,
    FollowedBy,
    ObjectPath,
    ObsAnd,
    ObsExpr,
    ObsOr,
    Op,
    Repeats,
    Within,
)
from .observations import Observation
from .plan import MatchPlan, build_plan
from .values import Predicate, compile_predicate

# STIX 2.1 patterns match Cyber-observable Objects only; these SDO/SRO/meta types
# are never selected by an object path, as in stix2-matcher's 2.1 mode.
_NON_SCO_TYPES = frozenset(
    {
        "attack-pattern",
        "bundle",
        "campaign",
        "course-of-action",
        "extension-definition",
        "grouping",
        "identity",
        "incident",
        "indicator",
        "infrastructure",
        "intrusion-set",
        "language-content",
        "location",
        "malware",
        "malware-analysis",
        "marking-definition",
        "note",
        "observed-data",
        "opinion",
        "relationship",
        "report",
        "threat-actor",
        "tool",
        "sighting",
        "vulnerability",
    }
)

# One instance of an observation: (observation index, instance number below number_observed).
Instance = tuple[int, int]
# A binding assigns distinct instances to the brackets of a (sub)pattern.
Binding = frozenset[Instance]


def compile_pattern(pattern: str) -> CompiledPattern:
    """Parse and prepare `pattern` once; match it against many accounts."""
    tree = parse_pattern(pattern)
    return CompiledPattern(pattern, tree, _compile(tree))


@dataclass(frozen=True)
class CompiledPattern:
    source: str
    tree: ObsExpr
    _root: _Node = field(repr=False)
    plan: MatchPlan = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan", build_plan(self.tree))

    def matches(self, observations: Sequence[Observation]) -> bool:
        """True when some binding of observations satisfies the whole pattern."""
        # Bindings are generated lazily, so the first one found settles the answer.
        return next(iter(self._root.bindings(_Context(observations))), None) is not None


class _Context:
    """Per-call state: the observations being matched."""

    def __init__(self, observations: Sequence[Observation]) -> None:
        self.observations = observations

    def interval(self, instance: Instance) -> tuple[datetime, datetime]:
        obs = self.observations[instance[0]]
        return obs.first_observed, obs.last_observed


class _Node:
    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        raise NotImplementedError


def _compile(expr: ObsExpr) -> _Node:
    if isinstance(expr, Bracket):
        return _BracketNode(_compile_comparison(expr.expr), _root_types(expr.expr))
    if isinstance(expr, ObsAnd):
        return _AndNode(tuple(_compile(e) for e in expr.operands))
    if isinstance(expr, ObsOr):
        return _OrNode(tuple(_compile(e) for e in expr.operands))
    if isinstance(expr, FollowedBy):
        return _FollowedByNode(_compile(expr.left), _compile(expr.right))
    if isinstance(expr, Within):
        return _WithinNode(_compile(expr.expr), timedelta(seconds=expr.seconds))
    if isinstance(expr, Repeats):
        return _RepeatsNode(_compile(expr.expr), expr.times)
    return _StartStopNode(_compile(expr.expr), expr.start, expr.stop)


# --- observation expressions (STIX 2.1 patterning, "Observation Operators" and "Qualifiers")


@dataclass(frozen=True)
class _BracketNode(_Node):
    test: _CompNode
    # Object types a root must have for the bracket to hold: a cheap pre-check.
    types: frozenset[str]

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # Each of the number_observed instances of a matching observation can bind.
        for index, obs in enumerate(ctx.observations):
            if any(t in obs.by_type for t in self.types) and self.test.roots(obs):
                yield from (frozenset({(index, k)}) for k in range(obs.number_observed))


@dataclass(frozen=True)
class _AndNode(_Node):
    operands: tuple[_Node, ...]

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # Observation AND: each side is bound to different observations.
        result: Iterable[Binding] = self.operands[0].bindings(ctx)
        for operand in self.operands[1:]:
            right = _distinct(operand.bindings(ctx))
            if not right:
                return
            result = _joined(result, right)
        yield from result


@dataclass(frozen=True)
class _OrNode(_Node):
    operands: tuple[_Node, ...]

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # A binding of either side suffices; binding both sides could only remove
        # options elsewhere, so one-sided bindings are complete.
        for operand in self.operands:
            yield from operand.bindings(ctx)


@dataclass(frozen=True)
class _FollowedByNode(_Node):
    left: _Node
    right: _Node

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # FOLLOWEDBY: timestamps can be chosen inside each observation's
        # [first_observed, last_observed] so that every left one is <= every right one.
        rights = [(b, min(ctx.interval(i)[1] for i in b)) for b in _distinct(self.right.bindings(ctx))]
        if not rights:
            return
        for a in self.left.bindings(ctx):
            latest_start = max(ctx.interval(i)[0] for i in a)
            for b, earliest_end in rights:
                if latest_start <= earliest_end and a.isdisjoint(b):
                    yield a | b


@dataclass(frozen=True)
class _WithinNode(_Node):
    inner: _Node
    window: timedelta

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # WITHIN: one window of the given length meets every bound observation's interval,
        # i.e. latest first_observed - earliest last_observed <= the window.
        for binding in self.inner.bindings(ctx):
            intervals = [ctx.interval(i) for i in binding]
            if max(f for f, _ in intervals) - min(last for _, last in intervals) <= self.window:
                yield binding


@dataclass(frozen=True)
class _RepeatsNode(_Node):
    inner: _Node
    times: int

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # REPEATS n TIMES: n pairwise-disjoint bindings of the inner expression.
        if self.times == 1:
            yield from self.inner.bindings(ctx)
            return
        for combo in _disjoint_combinations(_distinct(self.inner.bindings(ctx)), self.times):
            yield frozenset().union(*combo)


@dataclass(frozen=True)
class _StartStopNode(_Node):
    inner: _Node
    start: datetime
    stop: datetime

    def bindings(self, ctx: _Context) -> Iterator[Binding]:
        # START/STOP: every bound observation can be placed in [start, stop), i.e. its
        # interval starts before STOP and ends at or after START.
        if self.start >= self.stop:
            return
        for binding in self.inner.bindings(ctx):
            if all(first < self.stop and last >= self.start for first, last in map(ctx.interval, binding)):
                yield binding


def _distinct(bindings: Iterable[Binding]) -> list[Binding]:
    return list(dict.fromkeys(bindings))


def _joined(lefts: Iterable[Binding], rights: list[Binding]) -> Iterator[Binding]:
    return (a | b for a in lefts for b in rights if a.isdisjoint(b))


def _disjoint_combinations(items: list[Binding], size: int) -> Iterable[tuple[Binding, ...]]:
    if size == 0:
        yield ()
        return
    for index, item in enumerate(items):
        rest = [other for other in items[index + 1 :] if item.isdisjoint(other)]
        if len(rest) + 1 < size:
            continue
        for combo in _disjoint_combinations(rest, size - 1):
            yield (item, *combo)


# --- comparison expressions: bind one object per bracket (STIX 2.1 patterning,
# "Comparison Expressions": AND/OR inside one bracket apply to the same object).


class _CompNode:
    def roots(self, obs: Observation) -> set[str]:
        """Ids of the objects in `obs` that satisfy this expression."""
        raise NotImplementedError


def _root_types(expr: CompExpr) -> frozenset[str]:
    if isinstance(expr, Comparison):
        return frozenset({expr.path.object_type})
    parts = [_root_types(e) for e in expr.operands]
    # AND intersects root objects, so every conjunct must name the root's type.
    return frozenset.intersection(*parts) if isinstance(expr, CompAnd) else frozenset().union(*parts)


def _compile_comparison(expr: CompExpr) -> _CompNode:
    if isinstance(expr, CompAnd):
        return _CompAndNode(tuple(_compile_comparison(e) for e in expr.operands))
    if isinstance(expr, CompOr):
        return _CompOrNode(tuple(_compile_comparison(e) for e in expr.operands))
    return _TestNode.of(expr)


@dataclass(frozen=True)
class _CompAndNode(_CompNode):
    operands: tuple[_CompNode, ...]

    def roots(self, obs: Observation) -> set[str]:
        result = self.operands[0].roots(obs)
        for operand in self.operands[1:]:
            if not result:
                break
            result &= operand.roots(obs)
        return result


@dataclass(frozen=True)
class _CompOrNode(_CompNode):
    operands: tuple[_CompNode, ...]

    def roots(self, obs: Observation) -> set[str]:
        return set().union(*(operand.roots(obs) for operand in self.operands))


@dataclass(frozen=True)
class _TestNode(_CompNode):
    path: ObjectPath
    # None for EXISTS: the test is on whether the path selects anything.
    predicate: Predicate | None
    negated: bool

    @classmethod
    def of(cls, comparison: Comparison) -> _TestNode:
        if comparison.op is Op.EXISTS:
            return cls(comparison.path, None, comparison.negated)
        return cls(
            comparison.path,
            compile_predicate(comparison.op, comparison.negated, comparison.value),
            comparison.negated,
        )

    def roots(self, obs: Observation) -> set[str]:
        if self.path.object_type in _NON_SCO_TYPES:
            return set()
        passed = set()
        for root in obs.by_type.get(self.path.object_type, ()):
            values = select(self.path, root, obs)
            if self.predicate is None:
                ok = bool(values) != self.negated
            else:
                ok = any(self.predicate(v) for v in values)
            if ok:
                passed.add(root["id"])
        return passed


def select(path: ObjectPath, root: dict[str, Any], obs: Observation) -> list[Any]:
    """Values the object path selects from `root` (STIX 2.1 patterning, "Object Path Syntax").

    `[*]` fans out over list members, `[n]` picks one, keys step into dicts;
    `*_ref`/`*_refs` properties are replaced by the objects they reference in the
    same observation, and unresolved references are dropped.
    """
    values: list[Any] = [root]
    for step in path.steps:
        if isinstance(step, AnyIndex):
            values = [item for v in values if isinstance(v, list) for item in v]
        elif isinstance(step, int):
            values = [v[step] for v in values if isinstance(v, list) and 0 <= step < len(v)]
        else:
            values = _key_step(values, step, obs)
        if not values:
            break
    return values


def _key_step(values: list[Any], key: str, obs: Observation) -> list[Any]:
    found = [_decode_suffix(key, v[key]) for v in values if isinstance(v, dict) and key in v]
    found = [v for v in found if v is not _UNDECODABLE]
    if key.endswith("_ref"):
        return [obs.objects[ref] for ref in found if isinstance(ref, str) and ref in obs.objects]
    if key.endswith("_refs"):
        lists = (
            [obs.objects[r] for r in refs if isinstance(r, str) and r in obs.objects]
            for refs in found
            if isinstance(refs, list)
        )
        return [resolved for resolved in lists if resolved]
    return found


_UNDECODABLE = object()


def _decode_suffix(key: str, value: Any) -> Any:
    # STIX 2.1 "hex" and "binary" types: `_hex`/`_bin` properties hold bytes, compared as bytes.
    try:
        if key.endswith("_hex") and isinstance(value, str):
            return binascii.a2b_hex(value)
        if key.endswith("_bin") and isinstance(value, str):
            return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return _UNDECODABLE
    return value
