"""Jensen-Shannon distance and MinHash Jaccard estimates."""

from __future__ import annotations

import math

import pytest

from indicators.matching import jensen_shannon_distance, minhash_jaccard


def test_jensen_shannon_distance_bounds_and_symmetry() -> None:
    assert jensen_shannon_distance([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    p, q = [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]
    assert jensen_shannon_distance(p, q) == pytest.approx(jensen_shannon_distance(q, p))
    # Hand computation, base 2: JSD = H(M) - (H(P) + H(Q)) / 2 with M the average.
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def entropy(d: list[float]) -> float:
        return -sum(x * math.log2(x) for x in d if x > 0)

    assert jensen_shannon_distance(p, q) == pytest.approx(
        math.sqrt(entropy(m) - (entropy(p) + entropy(q)) / 2)
    )
    # Counts are normalised first.
    assert jensen_shannon_distance([2, 2], [5, 5]) == 0.0


def test_jensen_shannon_distance_rejects_bad_input() -> None:
    for p, q in [([], []), ([1.0], [0.5, 0.5]), ([0, 0], [1, 0]), ([-1, 2], [1, 0])]:
        with pytest.raises(ValueError):
            jensen_shannon_distance(p, q)


def test_minhash_jaccard() -> None:
    assert minhash_jaccard([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert minhash_jaccard([1, 2, 3, 4], [1, 9, 3, 9]) == 0.5
    with pytest.raises(ValueError):
        minhash_jaccard([1, 2], [1])
    with pytest.raises(ValueError):
        minhash_jaccard([], [])
