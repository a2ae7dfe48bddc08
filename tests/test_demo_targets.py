"""The demo's promise, at default settings: the 4-digit addition curve (arXiv 2210.14891)
fitted on its first 14 points covers the 3 held-out points with its 90% intervals, with
small error and a converged sampler. This is the package's end-to-end acceptance test."""

from __future__ import annotations

import pytest

import bayes_unsl as bu
from bayes_unsl.evaluation import coverage, rmsle
from tests.conftest import X, Y


@pytest.mark.slow
def test_default_fit_of_the_demo_curve(addition):
    train, held = addition
    fit = bu.fit(train, X, Y, warn=False)
    draws = fit.samples(held[X])
    diag = fit.diagnostics()
    assert coverage(draws, held[Y].to_numpy(), 0.9) == 1.0
    assert rmsle(draws, held[Y].to_numpy()) <= 0.02
    assert diag["r_hat_max"] <= 1.01
    assert diag["divergences"] == 0
    assert diag["ess_bulk_min"] >= 400
