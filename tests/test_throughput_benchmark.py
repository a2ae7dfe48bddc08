"""The throughput benchmark: lane efficiency, and when a run has a time after compilation."""

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


def test_time_after_compilation_only_for_runs_in_one_process(throughput):
    def args(device=None, workers=None):
        return SimpleNamespace(device=device, workers=workers)

    assert not throughput.one_process(args("cpu"), 64, 4)  # worker processes ran
    assert throughput.one_process(args("cpu", workers=1), 64, 4)
    assert throughput.one_process(args("cpu"), 4, 1)  # too few curves for workers
    assert throughput.one_process(args("cpu"), 64, 64)  # a single batch
    assert throughput.one_process(args("gpu"), 4096, 4096)
