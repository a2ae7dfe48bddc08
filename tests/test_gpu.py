"""Checks that need a GPU; they skip cleanly on machines without one."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from tests.conftest import QUICK, X, Y

requires_gpu = pytest.mark.skipif(
    jax.default_backend() != "gpu", reason="needs a GPU (jax.default_backend() != 'gpu')"
)


@pytest.mark.gpu
@requires_gpu
def test_float32_on_the_gpu_agrees_with_float64(addition):
    train, held = addition
    fits = {
        p: bu.fit(train, X, Y, seed=1, warn=False, precision=p, device="gpu", **QUICK)
        for p in ("float32", "float64")
    }
    assert fits["float32"].idata.attrs["backend"] == "gpu"
    medians = {p: np.median(f.samples(held[X]), axis=0) for p, f in fits.items()}
    assert np.allclose(medians["float32"], medians["float64"], rtol=0.05)


@pytest.mark.gpu
@requires_gpu
def test_batched_fits_on_the_gpu_agree_with_cpu_fits(addition):
    train, held = addition
    table = pd.concat([train.assign(curve="a"), train.assign(curve="b")], ignore_index=True)
    fits = {
        device: bu.fit_many(table, "curve", X, Y, seed=2, warn=False, device=device, **QUICK)
        for device in ("gpu", "cpu")
    }
    assert fits["gpu"]["a"].idata.attrs["backend"] == "gpu"
    assert fits["gpu"]["a"].idata.attrs["precision"] == "float32"
    for curve in ("a", "b"):
        medians = {d: np.median(f[curve].samples(held[X]), axis=0) for d, f in fits.items()}
        assert np.allclose(medians["gpu"], medians["cpu"], rtol=0.05)


@pytest.mark.gpu
@requires_gpu
def test_one_curve_runs_on_the_cpu_by_default(addition):
    train, _ = addition
    fit_ = bu.fit(train, X, Y, seed=1, warn=False, **QUICK)
    assert fit_.idata.attrs["backend"] == "cpu"
    assert fit_.idata.attrs["precision"] == "float64"
