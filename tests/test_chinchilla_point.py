"""Tests of the Chinchilla-form and data-constrained point fits (approach 3), their agreement
with :mod:`bayes_unsl.forms`, the residual bootstrap on two- and three-input laws, and the
input checks."""

from __future__ import annotations

from functools import partial

import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unsl._precision import precision_scope
from bayes_unsl.baselines import (
    bootstrap_draws,
    chinchilla_log_y,
    fit_chinchilla_point,
    fit_data_constrained_point,
    fit_power_law,
)
from bayes_unsl.baselines.chinchilla_point import (
    CF_NAMES,
    _cf_objective,
    _grid_objective,
    _grid_points,
)
from bayes_unsl.evaluation import coverage
from bayes_unsl.forms import chinchilla, data_constrained

CF_TRUE = {
    "log_e": np.log(1.7),
    "log_a": np.log(400.0),
    "log_b": np.log(410.0),
    "alpha": 0.34,
    "beta": 0.28,
}
DC_TRUE = {
    **CF_TRUE,
    "log_r_d_star": np.log(15.0),
    "log_r_n_star": np.log(5.0),
    "log_tokens_per_param": np.log(20.0),
}


def _cf_x() -> np.ndarray:
    """6 x 6 grid of N in 1e7..1e10 and D in 1e8..1e11, one row a run."""
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e8, 1e11, 6), indexing="ij")
    return np.stack([n.ravel(), d.ravel()], axis=1)


def _cf_y(x: np.ndarray) -> np.ndarray:
    return 1.7 + 400.0 * x[:, 0] ** -0.34 + 410.0 * x[:, 1] ** -0.28


def _forms(fn, params: dict, x: np.ndarray) -> np.ndarray:
    """Log y of a JAX form at the logs of the columns of x, in float64."""
    with precision_scope("float64"):
        arrays = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
        cols = [jnp.asarray(np.log(x[:, j]), dtype=jnp.float64) for j in range(x.shape[1])]
        return np.asarray(fn(arrays, *cols), dtype=float)


def _dc_x() -> np.ndarray:
    """Runs with 1 to 40 epochs over 1e8, 1e9 or 1e10 unique tokens, N from 1e7 to 3e9:
    both data repetition (R_D > 0) and excess parameters (R_N > 0) occur."""
    rows = [
        (n, unique * epochs, unique)
        for n in np.geomspace(1e7, 3e9, 5)
        for unique in (1e8, 1e9, 1e10)
        for epochs in (1.0, 2.0, 4.0, 10.0, 40.0)
    ]
    return np.array(rows)


def _unrepeated_x() -> np.ndarray:
    """Runs with D >= 20 N and U_D >= D: no repetition and no excess parameters. 72 runs,
    like the 75 of ``_dc_x`` padded to 128 rows, so both share one compiled objective."""
    n, ratio = np.meshgrid(np.geomspace(1e7, 1e9, 8), np.geomspace(20.0, 400.0, 9), indexing="ij")
    n, d = n.ravel(), (n * ratio).ravel()
    return np.stack([n, d, d * np.linspace(1.0, 3.0, d.size)], axis=1)


@pytest.fixture(scope="module")
def cf_fit():
    x = _cf_x()
    return x, fit_chinchilla_point(x, _cf_y(x))


@pytest.fixture(scope="module")
def dc_fit():
    x = _dc_x()
    return x, fit_data_constrained_point(x, np.exp(_forms(data_constrained, DC_TRUE, x)))


@pytest.fixture(scope="module")
def noisy_cf():
    x = _cf_x()
    noise = np.random.default_rng(11).standard_normal(x.shape[0])
    return x, _cf_y(x) * np.exp(0.02 * noise)


# ------------------------------------------------------------------------------------------
# CF: recovery, robustness, agreement with the JAX form
# ------------------------------------------------------------------------------------------


def test_cf_recovers_parameters(cf_fit):
    _, fit = cf_fit
    assert fit.name == "chinchilla" and fit.n_params == 5 and fit.n_inputs == 2
    assert set(fit.params) == set(CF_TRUE)
    for key, value in CF_TRUE.items():
        assert fit.params[key] == pytest.approx(value, rel=1e-7, abs=1e-7), key
    assert fit.msle < 1e-16


def test_cf_prediction_is_the_jax_form(cf_fit):
    x, fit = cf_fit
    new_x = np.array([[3e10, 1e12], [1e6, 1e7], [5e8, 2e9]])
    for where in (x, new_x):
        np.testing.assert_allclose(
            fit.predict_log(where), _forms(chinchilla, dict(fit.params), where), rtol=1e-13
        )
    # ... and the truth, far outside the fitted range.
    np.testing.assert_allclose(fit.predict(new_x), _cf_y(new_x), rtol=1e-7)


def test_numpy_chinchilla_matches_jax_form():
    rng = np.random.default_rng(0)
    x = 10.0 ** rng.uniform(5.0, 13.0, size=(50, 2))
    for _ in range(5):
        params = {
            "log_e": rng.normal(0.0, 1.0),
            "log_a": rng.uniform(0.0, 25.0),
            "log_b": rng.uniform(0.0, 25.0),
            "alpha": rng.uniform(0.0, 2.5),
            "beta": rng.uniform(0.0, 2.5),
        }
        np.testing.assert_allclose(
            chinchilla_log_y(params, np.log(x[:, 0]), np.log(x[:, 1])),
            _forms(chinchilla, params, x),
            rtol=1e-13,
        )


def test_cf_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    u, v = rng.normal(0.0, 2.0, 30), rng.normal(0.0, 2.0, 30)
    log_y = rng.normal(1.0, 0.3, 30)
    for delta in (1e-3, 0.3):  # residuals mostly outside, then mostly inside the quadratic
        for _ in range(3):
            theta = np.array([0.5, 1.0, 1.2, 0.3, 0.4]) + 0.2 * rng.standard_normal(5)
            _, grad = _cf_objective(theta, u, v, log_y, delta)
            numeric = np.empty(5)
            for j in range(5):
                step = np.zeros(5)
                step[j] = 1e-7
                hi = _cf_objective(theta + step, u, v, log_y, delta)[0]
                lo = _cf_objective(theta - step, u, v, log_y, delta)[0]
                numeric[j] = (hi - lo) / 2e-7
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_grid_objective_matches_point_by_point_evaluation(noisy_cf):
    x, y = noisy_cf
    log_n, log_d, log_y = np.log(x[:, 0]), np.log(x[:, 1]), np.log(y)
    grid = _grid_points()
    assert grid.shape == (7776, 5)
    scores = _grid_objective(log_n, log_d, log_y, 1e-3)
    for i in np.random.default_rng(0).integers(0, len(grid), 50):
        r = chinchilla_log_y(dict(zip(CF_NAMES, grid[i], strict=True)), log_n, log_d) - log_y
        huber = np.where(np.abs(r) <= 1e-3, 0.5 * r**2, 1e-3 * (np.abs(r) - 0.5e-3))
        assert scores[i] == pytest.approx(huber.sum() / 1e-3, rel=1e-12)


def test_cf_one_gross_outlier_barely_moves_the_fit():
    x = _cf_x()
    y = _cf_y(x)
    y[14] *= 3.0  # one run three times worse than the law
    robust = fit_chinchilla_point(x, y)
    new_x = np.array([[3e10, 1e12], [1e7, 1e8]])  # far out, and at the small corner
    # The outlier's pull is capped at delta per unit of residual: the fit moves a little.
    np.testing.assert_allclose(robust.predict(new_x), _cf_y(new_x), rtol=1e-3)
    for key in ("alpha", "beta"):
        assert robust.params[key] == pytest.approx(CF_TRUE[key], abs=1e-3), key
    # The same data under a squared loss (delta far above every residual) is pulled away,
    # so the check above is one the Huber loss passes and least squares does not.
    squared = fit_chinchilla_point(x, y, delta=10.0)
    assert np.max(np.abs(np.log(squared.predict(new_x) / _cf_y(new_x)))) > 0.05


def test_cf_start_refines_a_previous_fit(cf_fit, noisy_cf):
    x, first = cf_fit
    _, y = noisy_cf
    fresh = fit_chinchilla_point(x, y)
    warm = fit_chinchilla_point(x, y, start=first)
    for key in CF_TRUE:
        assert warm.params[key] == pytest.approx(fresh.params[key], rel=1e-5, abs=1e-5), key
    assert warm.msle == pytest.approx(fresh.msle, rel=1e-6)
    assert fresh.msle == pytest.approx(0.02**2, rel=0.5)  # the fit leaves the noise


def test_cf_start_must_be_a_cf_fit():
    x = np.geomspace(10.0, 1e4, 12)
    other = fit_power_law(x, 0.5 + 20.0 * x**-0.5)
    with pytest.raises(ValueError, match="lacks parameter"):
        fit_chinchilla_point(_cf_x(), _cf_y(_cf_x()), start=other)


# ------------------------------------------------------------------------------------------
# DC: recovery, agreement with CF and with the JAX form
# ------------------------------------------------------------------------------------------


def test_dc_recovers_parameters_with_repetition(dc_fit):
    x, fit = dc_fit
    # The runs repeat enough for R* to matter: DC and CF at the same parameters differ.
    y = np.exp(_forms(data_constrained, DC_TRUE, x))
    assert np.max(np.abs(np.log(y) - _forms(chinchilla, CF_TRUE, x[:, :2]))) > 0.1
    assert fit.name == "data_constrained" and fit.n_params == 7 and fit.n_inputs == 3
    assert set(fit.params) == set(DC_TRUE)
    for key, value in DC_TRUE.items():
        assert fit.params[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert fit.msle < 1e-16
    # Its predictions are the JAX form's at its parameters, in and out of the data.
    new_x = np.array([[1e10, 1e12, 1e10], [1e8, 5e10, 1e9], [2e9, 1e9, 1e11]])
    for where in (x, new_x):
        np.testing.assert_allclose(
            fit.predict_log(where), _forms(data_constrained, dict(fit.params), where), rtol=1e-13
        )


def test_dc_equals_cf_without_repetition():
    x = _unrepeated_x()
    noise = np.random.default_rng(5).standard_normal(x.shape[0])
    y = _cf_y(x) * np.exp(0.01 * noise)
    cf = fit_chinchilla_point(x[:, :2], y)
    dc = fit_data_constrained_point(x, y)
    for key in CF_TRUE:
        assert dc.params[key] == pytest.approx(cf.params[key], rel=1e-6, abs=1e-6), key
    assert dc.msle == pytest.approx(cf.msle, rel=1e-6)
    np.testing.assert_allclose(dc.predict_log(x), cf.predict_log(x[:, :2]), atol=1e-8)
    # Started from the CF fit (with the paper's R*), DC stays there.
    warm = fit_data_constrained_point(x, y, start=cf)
    assert warm.params["log_r_d_star"] == pytest.approx(np.log(15.0))
    np.testing.assert_allclose(warm.predict_log(x), cf.predict_log(x[:, :2]), atol=1e-8)


def test_dc_tokens_per_param_is_used(dc_fit):
    x, first = dc_fit  # fitted with 20 tokens per parameter: a start, not the answer
    truth = {**DC_TRUE, "log_tokens_per_param": np.log(5.0)}
    y = np.exp(_forms(data_constrained, truth, x))
    fit = fit_data_constrained_point(x, y, log_tokens_per_param=np.log(5.0), start=first)
    assert fit.params["log_tokens_per_param"] == pytest.approx(np.log(5.0))
    assert fit.params["log_r_n_star"] == pytest.approx(np.log(5.0), abs=1e-5)
    assert fit.msle < 1e-16


# ------------------------------------------------------------------------------------------
# the residual bootstrap with inputs of two and three columns
# ------------------------------------------------------------------------------------------


def test_bootstrap_of_cf_covers_the_true_curve(noisy_cf):
    x, y = noisy_cf
    new_x = np.array([[n, d] for n in (3e7, 1e9, 3e10) for d in (3e8, 1e10, 1e12)])
    draws = bootstrap_draws(fit_chinchilla_point, x, y, new_x, n_boot=30, seed=0)
    assert draws.shape == (30, len(new_x))
    assert np.all(np.isfinite(draws)) and np.all(draws > 0)
    assert coverage(draws, _cf_y(new_x), 0.9) >= 0.75
    # The draws are spread by the noise, not collapsed onto one curve, nor wildly wide.
    width = np.log(np.quantile(draws, 0.95, axis=0) / np.quantile(draws, 0.05, axis=0))
    assert np.all(width > 0.03) and np.all(width < 0.15)  # 2 x 1.645 x 0.02 is 0.066


def test_bootstrap_of_dc_has_the_shape_of_new_x(dc_fit):
    x, near = dc_fit
    noise = np.random.default_rng(2).standard_normal(x.shape[0])
    y = np.exp(_forms(data_constrained, DC_TRUE, x) + 0.01 * noise)
    new_x = np.array([[1e10, 1e12, 1e10], [1e8, 5e10, 1e9]])
    # Started from the noise-free fit, the first fit skips the grid (tested above).
    fitter = partial(fit_data_constrained_point, start=near)
    draws = bootstrap_draws(fitter, x, y, new_x, n_boot=4, seed=1)
    assert draws.shape == (4, 2)
    truth = np.exp(_forms(data_constrained, DC_TRUE, new_x))
    assert np.all(np.abs(np.log(draws / truth)) < 0.1)


def test_bootstrap_new_x_must_match_the_columns_of_x(noisy_cf):
    x, y = noisy_cf
    with pytest.raises(ValueError, match="new_x must be 2-D with 2 columns"):
        bootstrap_draws(fit_chinchilla_point, x, y, [1e9, 1e10], n_boot=2)
    with pytest.raises(ValueError, match="new_x must be 2-D with 2 columns"):
        bootstrap_draws(fit_chinchilla_point, x, y, np.ones((3, 3)), n_boot=2)
    with pytest.raises(ValueError, match="new_x must be strictly positive"):
        bootstrap_draws(fit_chinchilla_point, x, y, [[1e9, -1.0]], n_boot=2)
    with pytest.raises(ValueError, match="x must be 1-D or 2-D"):
        bootstrap_draws(fit_chinchilla_point, x[None], y, [[1e9, 1e10]], n_boot=2)


# ------------------------------------------------------------------------------------------
# bad input is refused, nothing is dropped
# ------------------------------------------------------------------------------------------

GOOD_CF = _cf_x()[::3]  # 12 runs
GOOD_DC = _dc_x()[::6]  # 13 runs


def _with(values, index, value):
    out = np.array(values, dtype=float)
    out[index] = value
    return out


def _bad_cases(good: np.ndarray, n_params: int) -> list:
    y = _cf_y(good)
    m = good.shape[1]
    return [
        (_with(good, (3, 1), np.nan), y, "x must be finite; found 1 nan/inf value.* column.* D"),
        (good, _with(y, 0, np.inf), "y must be finite"),
        (_with(good, (2, 0), 0.0), y, "x must be strictly positive.* column.* N"),
        (good, _with(y, 5, -1.0), "y must be strictly positive"),
        (good[:, :-1], y, f"x must be 2-D with {m} columns"),
        (np.hstack([good, good[:, :1]]), y, f"x must be 2-D with {m} columns"),
        (good[:, 0], y, f"x must be 2-D with {m} columns"),
        (good, y[:-1], "same length"),
        (good[: n_params - 1], y[: n_params - 1], f"{n_params} parameters.*distinct points"),
        (np.repeat(good[:2], 6, axis=0), np.repeat(y[:2], 6), "distinct points"),
        (good, np.full(len(good), 0.7), "constant"),
        (np.empty((0, m)), [], "empty"),
    ]


@pytest.mark.parametrize(("x", "y", "message"), _bad_cases(GOOD_CF, 5))
def test_cf_bad_input_raises(x, y, message):
    with pytest.raises(ValueError, match=message):
        fit_chinchilla_point(x, y)


@pytest.mark.parametrize(("x", "y", "message"), _bad_cases(GOOD_DC, 7))
def test_dc_bad_input_raises(x, y, message):
    with pytest.raises(ValueError, match=message):
        fit_data_constrained_point(x, y)


@pytest.mark.parametrize(
    ("fitter", "x"), [(fit_chinchilla_point, GOOD_CF), (fit_data_constrained_point, GOOD_DC)]
)
@pytest.mark.parametrize("delta", [0.0, -1e-3, np.nan, np.inf])
def test_delta_must_be_positive_and_finite(fitter, x, delta):
    with pytest.raises(ValueError, match="delta must be"):
        fitter(x, _cf_y(x), delta=delta)


def test_dc_tokens_per_param_must_be_finite():
    with pytest.raises(ValueError, match="log_tokens_per_param must be finite"):
        fit_data_constrained_point(GOOD_DC, _cf_y(GOOD_DC), log_tokens_per_param=np.nan)


def test_predict_checks_the_columns(cf_fit):
    _, fit = cf_fit
    with pytest.raises(ValueError, match=r"x must be 2-D with 2 columns \(N, D\)"):
        fit.predict([1e9, 1e10])
    with pytest.raises(ValueError, match="x must be finite"):
        fit.predict([[1e9, np.inf]])
    # A one-input fit still refuses 2-D x rather than broadcasting it.
    x = np.geomspace(10.0, 1e4, 12)
    with pytest.raises(ValueError, match="x must be 1-D"):
        fit_power_law(x, 0.5 + 20.0 * x**-0.5).predict(np.ones((3, 2)))
