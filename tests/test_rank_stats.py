"""The batched R-hat and ESS agree with ArviZ's, entry by entry, across shapes and edge cases."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from bayes_unsl.inference.rank_stats import ess_bulk, ess_tail, rank_summary, rhat


def ar1(rng, phi: float, shape: tuple[int, ...]) -> np.ndarray:
    """Autocorrelated draws, with chains that may sit at different levels."""
    noise = rng.normal(size=shape)
    out = np.empty(shape)
    out[..., 0] = noise[..., 0]
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + noise[..., t]
    return out + rng.normal(0, 0.3, shape[:-1] + (1,))


def reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ArviZ's values, one (chain, draw) block at a time."""
    blocks = x.reshape((-1,) + x.shape[-2:])
    out = np.array(
        [
            [
                float(az.rhat(b)) if b.shape[0] > 1 else np.nan,
                float(az.ess(b, method="bulk")),
                float(az.ess(b, method="tail")),
            ]
            for b in blocks
        ]
    )
    return tuple(out[:, i].reshape(x.shape[:-2]) for i in range(3))


@pytest.mark.parametrize(
    "shape", [(6, 4, 1000), (5, 4, 7), (3, 1, 200), (4, 2, 5), (3, 4, 301), (2, 3, 4)]
)
@pytest.mark.parametrize("phi", [0.0, 0.6, 0.98])
def test_agrees_with_arviz(shape, phi):
    rng = np.random.default_rng(int(phi * 100) + shape[-1])
    x = ar1(rng, phi, shape)
    want_rhat, want_bulk, want_tail = reference(x)
    np.testing.assert_allclose(rhat(x), want_rhat, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ess_bulk(x), want_bulk, rtol=1e-9)
    np.testing.assert_allclose(ess_tail(x), want_tail, rtol=1e-9)
    for got, want in zip(rank_summary(x), (want_rhat, want_bulk, want_tail), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)


def test_ties_constants_and_nan_match_arviz():
    rng = np.random.default_rng(3)
    x = np.round(ar1(rng, 0.5, (4, 4, 400)), 1)  # many ties
    x[1] = 2.5  # a constant parameter
    x[2, 1, :200] = 7.0  # one chain stuck at a value
    x[3, 0, 10] = np.nan
    want_rhat, want_bulk, want_tail = reference(x)
    np.testing.assert_allclose(rhat(x), want_rhat, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ess_bulk(x), want_bulk, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ess_tail(x), want_tail, rtol=1e-9, equal_nan=True)
    assert np.isnan(rhat(x)[3]) and np.isnan(ess_bulk(x)[3])


def test_chains_in_separate_modes_fail_and_too_few_draws_give_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 500)) + np.array([0.0, 0.0, 0.0, 5.0])[:, None]
    assert rhat(x) > 1.5
    assert np.isnan(rhat(x[:, :3])) and np.isnan(ess_bulk(x[:, :3]))
    assert np.isnan(rhat(x[:1]))  # one chain: R-hat is undefined
