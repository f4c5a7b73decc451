"""Frozen AST of a STIX 2.1 pattern, as produced by the parser."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# A pattern constant after literal decoding (STIX 2.1 patterning, "Constants"):
# string, int, float, boolean, t'' timestamp, h''/b'' binary.
Constant = str | int | float | bool | bytes | datetime


class Op(enum.Enum):
    """Comparison operators of STIX 2.1 patterning."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "IN"
    LIKE = "LIKE"
    MATCHES = "MATCHES"
    ISSUBSET = "ISSUBSET"
    ISSUPERSET = "ISSUPERSET"
    EXISTS = "EXISTS"


@dataclass(frozen=True)
class AnyIndex:
    """The `[*]` list step."""


# A path step: a property key, a list index `[n]`, or `[*]`.
Step = str | int | AnyIndex


@dataclass(frozen=True)
class ObjectPath:
    object_type: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Comparison:
    path: ObjectPath
    op: Op
    negated: bool
    # None for EXISTS; a tuple for IN (the set constant); otherwise one constant.
    value: Constant | tuple[Constant, ...] | None


@dataclass(frozen=True)
class CompAnd:
    operands: tuple[CompExpr, ...]


@dataclass(frozen=True)
class CompOr:
    operands: tuple[CompExpr, ...]


CompExpr = Comparison | CompAnd | CompOr


@dataclass(frozen=True)
class Bracket:
    """One observation expression `[ ... ]`."""

    expr: CompExpr


@dataclass(frozen=True)
class ObsAnd:
    operands: tuple[ObsExpr, ...]


@dataclass(frozen=True)
class ObsOr:
    operands: tuple[ObsExpr, ...]


@dataclass(frozen=True)
class FollowedBy:
    # Binary and left-associative like the grammar: the time check of
    # `(A FOLLOWEDBY B) FOLLOWEDBY C` spans all of A and B against C.
    left: ObsExpr
    right: ObsExpr


@dataclass(frozen=True)
class Within:
    expr: ObsExpr
    seconds: float


@dataclass(frozen=True)
class Repeats:
    expr: ObsExpr
    times: int


@dataclass(frozen=True)
class StartStop:
    expr: ObsExpr
    start: datetime
    stop: datetime


ObsExpr = Bracket | ObsAnd | ObsOr | FollowedBy | Within | Repeats | StartStop
