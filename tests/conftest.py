"""Shared fixtures: small, fast sampler settings and one cached fit of the shipped curve."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest

import bayes_unsl as bu

warnings.filterwarnings("ignore", message=".*ArviZ is undergoing.*")

# Small but real: enough draws for R-hat and intervals to mean something in a unit test.
QUICK = {"chains": 2, "warmup": 300, "draws": 300, "map_starts": 8, "retries": 0}
X, Y = "train_dataset_size", "test_cross_entropy"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` with its folder on the path (its sibling modules)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="session")
def addition():
    frame = bu.datasets.load("four_digit_addition")
    return frame.iloc[:14].reset_index(drop=True), frame.iloc[14:].reset_index(drop=True)


@pytest.fixture(scope="session")
def quick_fit(addition):
    train, _ = addition
    return bu.fit(train, X, Y, seed=1, warn=False, prior_draws=200, **QUICK)
