"""Checks that need a GPU; they skip cleanly on machines without one."""

from __future__ import annotations

import jax
import numpy as np
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
        p: bu.fit(train, X, Y, seed=1, warn=False, precision=p, **QUICK)
        for p in ("float32", "float64")
    }
    assert fits["float32"].idata.attrs["backend"] == "gpu"
    medians = {p: np.median(f.samples(held[X]), axis=0) for p, f in fits.items()}
    assert np.allclose(medians["float32"], medians["float64"], rtol=0.05)
