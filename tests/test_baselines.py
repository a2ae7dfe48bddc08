"""Tests of the point-estimate baselines: recovery, the NumPy/JAX BNSL twin, input checks,
the residual bootstrap, and the BNSL point fit on the 4-digit addition curve."""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_unsl as bu
from bayes_unsl._precision import precision_scope
from bayes_unsl.baselines import (
    PointFit,
    bnsl_log_y,
    bootstrap_draws,
    fit_bnsl_point,
    fit_m4,
    fit_power_law,
)
from bayes_unsl.baselines.bnsl_point import _jacobian, _unpack
from bayes_unsl.evaluation import coverage, interval_width, rmsle
from bayes_unsl.forms import bnsl, m4

X = np.geomspace(10.0, 1e5, 30)

BNSL_CASES = {
    0: {"log_a": np.log(0.3), "beta": 1.2, "c0": 0.35, "c": [], "delta": [], "f": []},
    1: {
        "log_a": np.log(0.2),
        "beta": 1.5,
        "c0": 0.1,
        "c": [0.8],
        "delta": [np.log(1e3)],
        "f": [0.3],
    },
    2: {
        "log_a": np.log(0.1),
        "beta": 1.0,
        "c0": 0.05,
        "c": [0.6, -0.4],
        "delta": [np.log(3e2), np.log(1e4)],
        "f": [0.2, 0.5],
    },
    3: {
        "log_a": np.log(0.1),
        "beta": 1.0,
        "c0": 0.05,
        "c": [0.6, -0.4, 0.5],
        "delta": [np.log(1e2), np.log(1e3), np.log(1e4)],
        "f": [0.2, 0.3, 0.2],
    },
}

M4_TRUE = {"log_eps_inf": np.log(0.1), "log_eps_0": 0.0, "log_beta": 2.0, "c": 0.5, "alpha": 0.6}


def _m4_y(params: dict, x: np.ndarray) -> np.ndarray:
    with precision_scope("float64"):
        arrays = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
        return np.exp(np.asarray(m4(arrays, jnp.log(jnp.asarray(x, dtype=jnp.float64)))))


def _noisy_power_law(sigma: float, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x = np.geomspace(10.0, 1e4, 20)
    noise = np.random.default_rng(seed).standard_normal(x.size)
    return x, (0.5 + 20.0 * x**-0.5) * np.exp(sigma * noise)


# ------------------------------------------------------------------------------------------
# recovery of known parameters from noiseless curves
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a", [0.5, 0.0])
def test_power_law_recovers_parameters(a):
    y = a + 10.0 * X**-0.4
    fit = fit_power_law(X, y)
    assert fit.name == "power_law" and fit.n_params == 3
    assert fit.params["a"] == pytest.approx(a, abs=1e-6)
    assert fit.params["b"] == pytest.approx(10.0, rel=1e-5)
    assert fit.params["c"] == pytest.approx(0.4, rel=1e-5)
    assert fit.msle < 1e-12
    np.testing.assert_allclose(
        fit.predict([1e6, 1e7]), a + 10.0 * np.array([1e6, 1e7]) ** -0.4, rtol=1e-5
    )


@pytest.mark.parametrize("breaks", [0, 1, 2, 3])
def test_bnsl_point_recovers_parameters(breaks):
    true = BNSL_CASES[breaks]
    y = np.exp(bnsl_log_y(true, np.log(X)))
    fit = fit_bnsl_point(X, y, breaks=breaks)
    assert fit.name == f"bnsl_{breaks}" and fit.n_params == 3 + 3 * breaks
    assert fit.msle < 1e-12
    for key, value in true.items():
        np.testing.assert_allclose(fit.params[key], value, rtol=1e-4, atol=1e-4, err_msg=key)


def test_bnsl_point_without_breaks_matches_power_law():
    x, y = _noisy_power_law(0.02)
    plain, bnsl0 = fit_power_law(x, y), fit_bnsl_point(x, y, breaks=0)
    new_x = [1e5, 1e6]
    np.testing.assert_allclose(bnsl0.predict(new_x), plain.predict(new_x), rtol=1e-4)


@pytest.mark.parametrize(
    ("log_eps_0", "alpha"), [(0.0, 0.6), (np.log(1.3), 0.6), (np.log(3.0), 1.2), (np.log(3.0), 0.0)]
)
@pytest.mark.parametrize("given", [False, True])
def test_m4_recovers_parameters(log_eps_0, alpha, given):
    true = {**M4_TRUE, "log_eps_0": log_eps_0, "alpha": alpha}
    y = _m4_y(true, X)
    fit = fit_m4(X, y, eps_0=np.exp(log_eps_0) if given else None)
    assert fit.name == "m4" and fit.n_params == (4 if given else 5)
    for key, value in true.items():
        if key == "log_eps_0" and alpha == 0:
            continue  # eps_0 plays no part in a power law
        assert fit.params[key] == pytest.approx(value, abs=1e-6), key
    assert fit.msle < 1e-12


def test_m4_respects_eps_0_max():
    y = _m4_y({**M4_TRUE, "log_eps_0": np.log(1.3)}, X)
    fit = fit_m4(X, y, eps_0_max=1.2)
    assert np.exp(fit.params["log_eps_0"]) <= 1.2 + 1e-12
    assert fit.msle > 1e-8  # the true eps_0 is out of reach


def test_m4_prediction_solves_the_implicit_law():
    y = _m4_y(M4_TRUE, X) * np.exp(0.01 * np.sin(np.arange(X.size)))
    fit = fit_m4(X, y)
    p = fit.params
    new_x = np.array([1e5, 1e6, 1e8])
    pred = fit.predict(new_x)
    lhs = (pred - np.exp(p["log_eps_inf"])) / (np.exp(p["log_eps_0"]) - pred) ** p["alpha"]
    np.testing.assert_allclose(lhs, np.exp(p["log_beta"]) * new_x ** -p["c"], rtol=1e-8)


# ------------------------------------------------------------------------------------------
# the NumPy BNSL against the JAX form, and its Jacobian
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("breaks", [0, 1, 2, 3])
def test_numpy_bnsl_matches_jax_form(breaks):
    rng = np.random.default_rng(breaks)
    log_x = np.linspace(0.0, 30.0, 41)
    for log_a in (-1.5, -np.inf):
        params = {
            "log_a": log_a,
            "beta": rng.normal(),
            "c0": rng.uniform(-0.5, 1.0),
            "c": rng.uniform(-1.0, 2.0, breaks),
            "delta": np.sort(rng.uniform(2.0, 25.0, breaks)),
            "f": rng.uniform(0.01, 3.0, breaks),
        }
        with precision_scope("float64"):
            expected = np.asarray(
                jax.jit(bnsl)(
                    {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}, jnp.asarray(log_x)
                )
            )
        np.testing.assert_allclose(bnsl_log_y(params, log_x), expected, rtol=1e-12, atol=1e-12)


def test_bnsl_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    u = np.linspace(-3.0, 3.0, 12)
    n = 2
    theta = np.array([-1.0, 0.4, 0.2, 0.7, -0.3, -1.0, 1.5, np.log(0.4), np.log(0.9)])
    for _ in range(3):
        point = theta + 0.1 * rng.standard_normal(theta.size)
        analytic = _jacobian(point, u, n)
        numeric = np.empty_like(analytic)
        for j in range(point.size):
            step = np.zeros_like(point)
            step[j] = 1e-6
            hi, lo = (
                bnsl_log_y(_unpack(point + step, n), u),
                bnsl_log_y(_unpack(point - step, n), u),
            )
            numeric[:, j] = (hi - lo) / 2e-6
        np.testing.assert_allclose(analytic, numeric, atol=1e-7)


# ------------------------------------------------------------------------------------------
# bad input is refused, nothing is dropped
# ------------------------------------------------------------------------------------------

GOOD_X = np.geomspace(10.0, 1e4, 12)
GOOD_Y = 0.5 + 20.0 * GOOD_X**-0.5


def _with(values, index, value):
    out = np.array(values, dtype=float)
    out[index] = value
    return out


FITTERS = [fit_power_law, partial(fit_bnsl_point, breaks=1), fit_m4]


@pytest.mark.parametrize("fitter", FITTERS)
@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (_with(GOOD_X, 3, np.nan), GOOD_Y, "x must be finite"),
        (GOOD_X, _with(GOOD_Y, 0, np.inf), "y must be finite"),
        (_with(GOOD_X, 2, 0.0), GOOD_Y, "x must be strictly positive"),
        (GOOD_X, _with(GOOD_Y, 5, -1.0), "y must be strictly positive"),
        (GOOD_X, GOOD_Y[:-1], "same length"),
        (GOOD_X[:2], GOOD_Y[:2], "distinct x"),
        (np.full(12, 100.0), GOOD_Y, "distinct x"),
        (GOOD_X, np.full(12, 0.7), "constant"),
        (GOOD_X.reshape(3, 4), GOOD_Y.reshape(3, 4), "1-D"),
        ([], [], "empty"),
    ],
)
def test_bad_input_raises(fitter, x, y, message):
    with pytest.raises(ValueError, match=message):
        fitter(x, y)


@pytest.mark.parametrize("breaks", [-1, 4, 1.5, True, "1"])
def test_bnsl_breaks_must_be_0_to_3(breaks):
    with pytest.raises(ValueError, match="breaks"):
        fit_bnsl_point(GOOD_X, GOOD_Y, breaks=breaks)


def test_bnsl_needs_points_for_its_parameters():
    with pytest.raises(ValueError, match="12 parameters.*got 8"):
        fit_bnsl_point(GOOD_X[:8], GOOD_Y[:8], breaks=3)


def test_bnsl_start_must_have_the_same_breaks():
    first = fit_bnsl_point(GOOD_X, GOOD_Y, breaks=0)
    with pytest.raises(ValueError, match="breaks"):
        fit_bnsl_point(GOOD_X, GOOD_Y, breaks=1, start=first)


def test_m4_eps_0_must_exceed_the_data():
    with pytest.raises(ValueError, match="eps_0 must"):
        fit_m4(GOOD_X, GOOD_Y, eps_0=float(GOOD_Y.max()))
    with pytest.raises(ValueError, match="eps_0_max must"):
        fit_m4(GOOD_X, GOOD_Y, eps_0_max=float(GOOD_Y.max()))
    with pytest.raises(ValueError, match="not both"):
        fit_m4(GOOD_X, GOOD_Y, eps_0=2.0, eps_0_max=3.0)


def test_predict_refuses_bad_x():
    fit = fit_power_law(GOOD_X, GOOD_Y)
    for bad in ([1.0, np.nan], [0.0], [-3.0]):
        with pytest.raises(ValueError, match="x must be"):
            fit.predict(bad)


def test_point_fit_is_frozen():
    fit = fit_power_law(GOOD_X, GOOD_Y)
    assert isinstance(fit, PointFit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.name = "other"
    with pytest.raises(TypeError):
        fit.params["a"] = 1.0


# ------------------------------------------------------------------------------------------
# residual bootstrap
# ------------------------------------------------------------------------------------------


def test_bootstrap_draws_are_reproducible():
    x, y = _noisy_power_law(0.02)
    new_x = [2e4, 5e4, 1e5]
    first = bootstrap_draws(fit_power_law, x, y, new_x, n_boot=30, seed=7)
    again = bootstrap_draws(fit_power_law, x, y, new_x, n_boot=30, seed=np.random.default_rng(7))
    other = bootstrap_draws(fit_power_law, x, y, new_x, n_boot=30, seed=8)
    assert first.shape == (30, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.all(np.isfinite(first)) and np.all(first > 0)


def test_bootstrap_spread_grows_with_noise():
    new_x = [2e4, 5e4, 1e5]
    widths = []
    for sigma in (0.01, 0.05):
        x, y = _noisy_power_law(sigma)
        draws = bootstrap_draws(fit_power_law, x, y, new_x, n_boot=60, seed=0)
        widths.append(np.mean(np.log(np.quantile(draws, 0.95, 0) / np.quantile(draws, 0.05, 0))))
    assert widths[1] > 3.0 * widths[0]


def test_bootstrap_without_warm_start_takes_a_plain_fitter():
    x, y = _noisy_power_law(0.03)
    draws = bootstrap_draws(
        lambda a, b: fit_power_law(a, b), x, y, [2e4, 1e5], n_boot=10, seed=1, warm_start=False
    )
    assert draws.shape == (10, 2)
    # The truth lies well inside draws that carry the noise level.
    truth = 0.5 + 20.0 * np.array([2e4, 1e5]) ** -0.5
    assert rmsle(draws, truth) < 0.05


def test_bootstrap_refuses_bad_arguments():
    x, y = _noisy_power_law(0.02)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_draws(fit_power_law, x, y, [1e5], n_boot=1)
    with pytest.raises(ValueError, match="new_x must be"):
        bootstrap_draws(fit_power_law, x, y, [1e5, -1.0], n_boot=5)


def test_bootstrap_of_m4_and_bnsl_feed_the_scores():
    x, y = _noisy_power_law(0.02)
    truth = 0.5 + 20.0 * np.array([2e4, 1e5]) ** -0.5
    for fitter in (fit_m4, partial(fit_bnsl_point, breaks=1)):
        draws = bootstrap_draws(fitter, x, y, [2e4, 1e5], n_boot=20, seed=0)
        assert draws.shape == (20, 2)
        assert 0.0 <= coverage(draws, truth, 0.9) <= 1.0
        assert np.all(interval_width(draws, 0.9) > 0)


# ------------------------------------------------------------------------------------------
# the 4-digit addition curve (arXiv 2210.14891, Figure 4 left)
# ------------------------------------------------------------------------------------------


def test_bnsl_point_extrapolates_four_digit_addition():
    frame = bu.datasets.load("four_digit_addition")
    train, held = frame[frame.split == "train"], frame[frame.split == "extrapolate"]
    fit = fit_bnsl_point(train.train_dataset_size, train.test_cross_entropy, breaks=1)
    pred = fit.predict(held.train_dataset_size)
    # A point prediction as two identical draws: the median is the prediction itself.
    score = rmsle(np.tile(pred, (2, 1)), held.test_cross_entropy.to_numpy())
    assert score < 0.05  # the paper's script reports about 0.011
    # A single power law cannot bend through the transition (the point of BNSL).
    plain = fit_power_law(train.train_dataset_size, train.test_cross_entropy)
    assert (
        rmsle(
            np.tile(plain.predict(held.train_dataset_size), (2, 1)),
            held.test_cross_entropy.to_numpy(),
        )
        > 10 * score
    )
