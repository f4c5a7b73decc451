"""Fixtures for the differential tests: the seeded dataset and both engines' results."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from oracle_harness import (
    ACCOUNT_COUNT,
    PATTERN_COUNT,
    SEED,
    EngineRun,
    collect_values,
    make_account,
    make_patterns,
    run_oracle,
    run_ours,
)

from indicators.matching import AccountRecord, Observation, account_observations, observations_as_bundles


@dataclass
class Dataset:
    accounts: list[AccountRecord]
    observations: list[list[Observation]]
    bundles: list[list[dict[str, Any]]]
    patterns: list[str]


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    rng = random.Random(SEED)
    accounts = [make_account(rng, i) for i in range(ACCOUNT_COUNT)]
    observations = [account_observations(a) for a in accounts]
    bundles = [observations_as_bundles(o) for o in observations]
    patterns = make_patterns(collect_values(observations), PATTERN_COUNT)
    return Dataset(accounts, observations, bundles, patterns)


@pytest.fixture(scope="session")
def oracle(dataset: Dataset) -> EngineRun:
    return run_oracle(dataset.patterns, dataset.bundles)


@pytest.fixture(scope="session")
def ours(dataset: Dataset) -> EngineRun:
    return run_ours(dataset.patterns, dataset.observations)
