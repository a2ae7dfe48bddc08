"""The throughput benchmark's lane efficiency: steps asked for over steps a batch ran."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def throughput():
    return load_benchmark("throughput")


def _fit(steps):
    """A stand-in fit whose draws took ``steps`` leapfrog steps, (chain, draw)."""
    stats = {"n_steps": SimpleNamespace(values=np.asarray(steps, float))}
    return SimpleNamespace(idata=SimpleNamespace(sample_stats=stats))


def test_lane_efficiency_counts_the_wait_for_the_longest_trajectory(throughput):
    fits = {"a": _fit([[1, 3], [3, 1]]), "b": _fit([[1, 1], [1, 1]])}
    # One batch of both curves: per draw the 4 chains' mean is 1.5 steps, the longest 3.
    assert throughput.lane_efficiency(fits, ["a", "b"], 2) == pytest.approx(0.5)
    # One curve per batch: "a" runs 3 per draw for a mean of 2; "b" runs 1 for 1.
    assert throughput.lane_efficiency(fits, ["a", "b"], 1) == pytest.approx((2 + 2 + 1 + 1) / 8)
    assert throughput.lane_efficiency({"b": fits["b"]}, ["b"], 1) == 1.0
