"""The noise trend: a noise scale log-linear in the standardised log inputs."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro import handlers

import bayes_unsl as bu
from bayes_unsl.data import validate
from bayes_unsl.models import ModelSpec, form_model
from bayes_unsl.models.likelihood import NOISE_TREND_SITE, noise_scale
from tests.conftest import QUICK, load_benchmark


def test_noise_scale_is_sigma_at_the_centre_and_trends_above_its_floor():
    z = np.array([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.5]])
    slope = np.array([0.4, -1.0])
    out = np.asarray(noise_scale(0.05, slope, z, 0.01))
    expected = 0.01 + 0.04 * np.exp(z @ slope)
    np.testing.assert_allclose(out, expected)
    assert out[1] == pytest.approx(0.05)
    # Draws broadcast: sigma (draws, 1) and slope (draws, inputs) give (draws, points).
    sigmas = np.array([[0.05], [0.02]])
    slopes = np.stack([slope, 2 * slope])
    many = np.asarray(noise_scale(sigmas, slopes, z, 0.01))
    assert many.shape == (2, 3)
    np.testing.assert_allclose(many[0], expected)
    np.testing.assert_allclose(many[1], 0.01 + 0.01 * np.exp(z @ (2 * slope)))


@pytest.mark.parametrize("form", ["bnsl", "chinchilla"])
def test_each_point_is_observed_with_its_trended_scale(form):
    rng = np.random.default_rng(0)
    n = 12
    columns = ["x"] if form == "bnsl" else ["n", "d"]
    frame = pd.DataFrame({c: np.exp(rng.uniform(10, 20, n)) for c in columns})
    frame["y"] = 2.0 + 1e3 * frame[columns[0]] ** -0.3
    data = validate(frame, columns if form != "bnsl" else "x", "y", min_points=4)
    spec = ModelSpec.build(form, 0, "normal", priors={"noise_trend_sd": 0.5})
    model = form_model(form)
    context = model.context(data, spec)
    z = jnp.asarray(data.z)
    trace = handlers.trace(handlers.seed(model.model, 4)).get_trace(z, context, spec=spec)
    slope = np.asarray(trace[NOISE_TREND_SITE]["value"])
    assert slope.shape == (len(columns),)
    sigma = float(trace["sigma"]["value"])
    scale = np.asarray(trace["log_y"]["fn"].scale)
    np.testing.assert_allclose(scale, sigma * np.exp(np.asarray(data.z) @ slope), rtol=1e-6)
    # Off by default: one scale for every point and no trend site.
    plain = ModelSpec.build(form, 0, "normal")
    trace = handlers.trace(handlers.seed(model.model, 4)).get_trace(z, context, spec=plain)
    assert NOISE_TREND_SITE not in trace
    assert np.size(trace["log_y"]["fn"].scale) == 1


def test_a_noise_trend_is_refused_with_correlated_errors_and_must_not_be_negative():
    with pytest.raises(ValueError, match="likelihood 'ou' takes no noise trend"):
        ModelSpec.build("bnsl", 1, "ou", priors={"noise_trend_sd": 0.5})
    with pytest.raises(ValueError, match="noise_trend_sd"):
        bu.BNSLPriors(noise_trend_sd=-0.1)


def _widening_curve(n: int = 24, seed: int = 3) -> pd.DataFrame:
    """A power law whose relative scatter grows from 0.2% to 8% across the data."""
    rng = np.random.default_rng(seed)
    log_x = np.linspace(np.log(1e3), np.log(1e6), n)
    share = np.linspace(0.0, 1.0, n)
    sd = 0.002 * np.exp(share * np.log(40.0))
    y = (0.5 + 50.0 * np.exp(log_x) ** -0.4) * np.exp(sd * rng.standard_normal(n))
    return pd.DataFrame({"x": np.exp(log_x), "y": y})


def test_a_trend_in_the_scatter_is_learnt_and_carried_past_the_data(tmp_path):
    frame = _widening_curve()
    options = dict(form="bnsl", breaks=0, likelihood="normal", seed=5, warn=False, **QUICK)
    trended = bu.fit(frame, "x", "y", priors={"noise_trend_sd": 0.5}, **options)
    constant = bu.fit(frame, "x", "y", **options)
    slope = trended.idata.posterior[NOISE_TREND_SITE].values
    assert slope.shape[-1] == 1
    assert trended.idata.posterior[NOISE_TREND_SITE].dims[-1] == "input"
    # Scatter 40 times larger at the top than the bottom is a slope of log(40)/2 per z unit.
    assert np.median(slope) > 0.8
    x_new = [2e3, 3e6]
    lo_t, hi_t = np.quantile(trended.samples(x_new), [0.05, 0.95], axis=0)
    lo_c, hi_c = np.quantile(constant.samples(x_new), [0.05, 0.95], axis=0)
    width_t, width_c = np.log(hi_t / lo_t), np.log(hi_c / lo_c)
    # Narrower than the constant scale near the quiet start, wider past the noisy end.
    assert width_t[0] < width_c[0]
    assert width_t[1] > width_c[1]
    assert width_t[1] > 5 * width_t[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bu.ConvergenceWarning)
        saved = bu.load(trended.save(tmp_path / "trend.nc"))
    assert saved.spec.priors.noise_trend_sd == 0.5
    np.testing.assert_allclose(saved.samples(x_new), trended.samples(x_new))


def test_prior_predictive_spread_grows_away_from_the_centre_with_a_trend():
    """Prior draws of the trend widen the scatter at both edges relative to the centre."""
    frame = _widening_curve()
    data = validate(frame, "x", "y", min_points=4)
    spec = ModelSpec.build("bnsl", 0, "normal", priors={"noise_trend_sd": 0.5})
    model = form_model("bnsl")
    context = model.context(data, spec)
    keys = jax.random.split(jax.random.PRNGKey(0), 400)
    z = jnp.asarray(data.z)

    def scales(key):
        trace = handlers.trace(handlers.seed(model.model, key)).get_trace(z, context, spec=spec)
        return trace["log_y"]["fn"].scale / trace["sigma"]["value"]

    ratio = np.asarray(jax.vmap(scales)(keys))
    centre = np.argmin(np.abs(np.asarray(data.z)[:, 0]))
    np.testing.assert_allclose(ratio[:, centre], 1.0, atol=0.1)
    assert np.median(np.abs(np.log(ratio[:, -1]))) == pytest.approx(0.5 * 0.674, rel=0.2)


@pytest.fixture(scope="module")
def study():
    return load_benchmark("noise_trend")


def test_the_study_splits_only_the_outer_training_rows(study):
    frame = pd.DataFrame(
        {
            "training_flops": [1e19, 1e20, 10**20.6, 1e21, 1e22],
            "held_out": [False, False, False, True, True],
        }
    )
    task = type("T", (), {"name": "chinchilla_approach3_epoch", "load": lambda self, r: frame})()
    train, test = load_benchmark("multivariate").inner_split(task, None)
    assert list(train["training_flops"]) == [1e19, 1e20]
    assert list(test["training_flops"]) == [10**20.6]


def test_the_study_adopts_the_trend_only_by_its_stated_rule(study):
    def table(msce_on, lpd_on):
        rows = []
        for task, base in (("a", 0.02), ("b", 0.04)):
            rows.append(dict(task=task, method="cf", noise_trend_sd=0.0, msce=base, lpd=1.0))
            rows.append(dict(task=task, method="cf", noise_trend_sd=0.5, msce=msce_on, lpd=lpd_on))
        return pd.DataFrame(rows)

    def verdict(rows: pd.DataFrame) -> str:
        (line,) = study.describe(rows, None)[2]
        return line

    assert "**adopt**" in verdict(table(0.01, 1.0))
    assert "**not**" in verdict(table(0.01, 0.9))  # better MSCE, worse LPD
    assert "**not**" in verdict(table(0.05, 2.0))  # better LPD, worse MSCE
