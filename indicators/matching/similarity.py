"""Similarity measures for sketch indicators (DOMAIN §4.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def jensen_shannon_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """√JSD with base-2 logarithms, in [0, 1]; inputs are normalised histograms of equal length."""
    if len(p) != len(q) or not p:
        raise ValueError("histograms must be non-empty and of equal length")
    if any(x < 0 for x in (*p, *q)):
        raise ValueError("histograms must not have negative bins")
    p_total, q_total = math.fsum(p), math.fsum(q)
    if p_total == 0 or q_total == 0:
        raise ValueError("histograms must not be all zero")
    divergence = 0.0
    for a, b in zip(p, q, strict=True):
        a, b = a / p_total, b / q_total
        m = (a + b) / 2
        if a > 0:
            divergence += a * math.log2(a / m) / 2
        if b > 0:
            divergence += b * math.log2(b / m) / 2
    # Rounding can push the divergence a hair outside [0, 1].
    return math.sqrt(min(max(divergence, 0.0), 1.0))


def minhash_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity: the share of MinHash slots on which the sketches agree."""
    if len(a) != len(b) or not a:
        raise ValueError("MinHash sketches must be non-empty and of equal length")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
