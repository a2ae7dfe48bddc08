"""The break past the data: zero up to the last observation, at its stated rate past it."""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.models.spec import STORED_BEFORE
from bayes_unsl.prediction import FutureBreak, draw_future_break
from bayes_unsl.priors import BNSLPriors, ChinchillaPriors
from tests.conftest import QUICK


def _brk(c, d=1.0, f=0.3):
    return FutureBreak(
        u_max=0.5,
        location=np.array([d]),
        slope_change=np.array([c]),
        sharpness=np.array([f]),
    )


def test_the_curve_is_unchanged_up_to_the_last_observation():
    u = np.linspace(-2.0, 3.0, 51)
    log_y = np.log(2.0 + np.exp(-u))[None, :]
    log_a = np.log([2.0])
    bent = _brk(c=3.0).apply(log_y, log_a, u)
    inside = u <= 0.5
    np.testing.assert_array_equal(bent[0, inside], log_y[0, inside])
    # Past the data a steeper decline lowers the curve, but never below the limit a.
    assert np.all(bent[0, ~inside] < log_y[0, ~inside])
    assert np.all(bent > log_a[0])
    # A flattening (negative change) raises it; no change leaves it alone.
    assert np.all(_brk(c=-3.0).apply(log_y, log_a, u)[0, ~inside] > log_y[0, ~inside])
    np.testing.assert_allclose(_brk(c=0.0).apply(log_y, log_a, u), log_y)


def test_break_distances_follow_the_stated_rate():
    rng = np.random.default_rng(0)
    priors = BNSLPriors(future_break_rate=0.5)
    brk = draw_future_break(priors, 20000, half_range=2.0, y_spread=1.0, u_max=1.0, rng=rng)
    decades = (brk.location - 1.0) / np.log(10.0)
    for k in (0.5, 1.0, 3.0):
        assert abs(np.mean(decades < k) - (1.0 - np.exp(-0.5 * k))) < 0.01
    assert np.all(brk.sharpness > 0)
    assert draw_future_break(BNSLPriors(future_break_rate=0.0), 5, 2.0, 1.0, 1.0, rng) is None
    assert draw_future_break(ChinchillaPriors(), 5, 2.0, 1.0, 1.0, rng) is None


@pytest.fixture(scope="module")
def power_law_fit():
    """A power law far from its limit, where a break past the data has room to act (on
    the addition curve the forecast sits on the limit, which a steeper decline cannot
    pass, so a further break there can narrow the spread as well as widen it)."""
    rng = np.random.default_rng(0)
    x = np.geomspace(1e2, 1e4, 12)
    frame = pd.DataFrame({"x": x, "y": 3.0 * x**-0.3 * np.exp(0.01 * rng.normal(size=12))})
    return bu.fit(frame, "x", "y", breaks=0, seed=1, warn=False, **QUICK)


def test_predictions_widen_past_the_data_and_not_inside(quick_fit, power_law_fit):
    x_obs = quick_fit.idata.constant_data["x"].values[:, 0]
    inside = [x_obs.min(), np.median(x_obs), x_obs.max()]
    without, with_ = quick_fit.with_future_break(0.0), quick_fit.with_future_break(1.0, 4.0)
    np.testing.assert_array_equal(without.samples(inside), with_.samples(inside))
    assert quick_fit.spec.priors == BNSLPriors()  # the default further break

    def width(f, x):
        lo, hi = np.quantile(np.log(f.samples(x)), [0.05, 0.95], axis=0)
        return hi - lo

    far = [1e5, 1e6]  # one and two decades past the last point
    without = power_law_fit.with_future_break(0.0)
    for with_ in (power_law_fit, power_law_fit.with_future_break(1.0, 4.0)):
        assert np.all(width(with_, far) > 2 * width(without, far))
    np.testing.assert_array_equal(without.samples([1e3]), power_law_fit.samples([1e3]))


def test_the_further_break_prior_changes_without_a_refit(quick_fit, tmp_path):
    inside, far = [400.0, 736.0], [9.28e4]
    none = quick_fit.with_future_break(rate=0.0)
    np.testing.assert_array_equal(none.samples(inside), quick_fit.samples(inside))
    assert none.spec.priors.future_break_rate == 0.0
    default_rate = BNSLPriors().future_break_rate
    assert quick_fit.spec.priors.future_break_rate == default_rate  # the original is untouched

    def width(fit):
        lo, hi = np.quantile(np.log(fit.samples(far)[:, 0]), [0.05, 0.95])
        return hi - lo

    # Steep both ways: visible on a curve at its limit, which a turn toward it cannot pass.
    steep = quick_fit.with_future_break(slope_sd=4.0, away_sd=4.0)
    gentle = steep.with_future_break(slope_sd=0.05, away_sd=0.05)
    often = steep.with_future_break(rate=3.0)
    assert steep.spec.priors.future_break_rate == default_rate  # settings not given are kept
    assert width(none) < width(steep) < width(often)
    assert abs(width(gentle) - width(none)) < 0.1 * (width(steep) - width(none))
    with pytest.warns(bu.ConvergenceWarning):  # the quick fit is not converged
        again = bu.load(often.save(tmp_path / "often.nc"))
    np.testing.assert_array_equal(again.samples(far), often.samples(far))
    with pytest.raises(ValueError, match="future_break_rate"):
        quick_fit.with_future_break(rate=-1.0)


def test_a_result_saved_before_the_absolute_slope_keeps_its_predictions(quick_fit):
    """Files written before ``future_slope_sd`` existed used the data-relative slope both
    ways; files written before ``future_away_sd`` existed used one sd for both directions."""

    def saved_without(fit, *names):
        idata = fit.idata.copy()
        spec = json.loads(idata.attrs["spec"])
        for name in names:
            del spec["priors"][name]
        idata.attrs = {**idata.attrs, "spec": json.dumps(spec)}
        return bu.Fit(idata)

    far = [9.28e4]
    old = saved_without(quick_fit, "future_slope_sd", "future_away_sd")
    assert old.spec.priors.future_slope_sd == STORED_BEFORE["future_slope_sd"] == 0.0
    assert old.spec.priors.future_away_sd == 0.0
    np.testing.assert_array_equal(
        old.samples(far), quick_fit.with_future_break(slope_sd=0.0, away_sd=0.0).samples(far)
    )
    symmetric = saved_without(quick_fit.with_future_break(slope_sd=1.0), "future_away_sd")
    assert symmetric.spec.priors.future_away_sd == 1.0
    np.testing.assert_array_equal(
        symmetric.samples(far),
        quick_fit.with_future_break(slope_sd=1.0, away_sd=1.0).samples(far),
    )
    absolute = quick_fit.with_future_break(slope_sd=1.0)  # an explicit setting is kept
    assert bu.Fit(absolute.idata).spec.priors.future_slope_sd == 1.0


def test_turns_toward_and_away_from_the_limit_have_their_own_scales():
    def draws(**settings):
        priors = BNSLPriors(future_break_rate=1.0, **settings)
        rng = np.random.default_rng(3)
        return draw_future_break(priors, 40000, 2.0, 1.0, 1.0, rng).slope_change

    toward = draws(future_slope_sd=2.0, future_away_sd=0.1)
    assert abs(np.mean(toward > 0) - 0.5) < 0.01  # each direction equally likely
    assert np.std(toward[toward > 0]) == pytest.approx(2.0 * np.sqrt(1 - 2 / np.pi), rel=0.03)
    assert np.max(-toward) < 0.1 * 5  # turns away: half-normal of sd 0.1
    # One sd for both directions is a normal of that sd, draw for draw.
    same = draws(future_slope_sd=0.7, future_away_sd=0.7)
    rng = np.random.default_rng(3)
    rng.exponential(size=40000)  # the distances are drawn first
    np.testing.assert_allclose(same, 0.7 * rng.standard_normal(40000))
    # 0: the data-relative scale, break_slope_sd * y_spread / half_range.
    relative = draws(future_slope_sd=0.0, future_away_sd=0.0)
    assert np.std(relative) == pytest.approx(BNSLPriors().break_slope_sd / 2.0, rel=0.03)


def test_breaks_along_several_inputs_add_and_bend_only_past_their_own_input():
    from bayes_unsl.prediction import log_curve_draws

    def curve(params, u):  # log y = log(2 + exp(-u0 - u1)): a limit of 2
        return jnp.log(2.0 + jnp.exp(-u[:, 0] - u[:, 1])) + 0.0 * params["log_a"]

    posterior = {"log_a": np.log([2.0])}
    along = [dataclasses.replace(_brk(c=2.0), column=k) for k in (0, 1)]
    u = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    plain = log_curve_draws(curve, posterior, u)
    one = [log_curve_draws(curve, posterior, u, along[k]) for k in (0, 1)]
    both = log_curve_draws(curve, posterior, u, along)
    np.testing.assert_array_equal(both[:, 0], plain[:, 0])  # inside: bit for bit
    np.testing.assert_array_equal(one[0][:, 2], plain[:, 2])  # past in input 1 only
    np.testing.assert_array_equal(one[1][:, 1], plain[:, 1])
    assert one[0][0, 1] < plain[0, 1] and one[1][0, 2] < plain[0, 2]

    def log_m(log_y):
        return np.log(np.exp(log_y) - 2.0)

    # Past both: the two terms of log M add.
    expected = log_m(one[0][:, 3]) + log_m(one[1][:, 3]) - log_m(plain[:, 3])
    np.testing.assert_allclose(log_m(both[:, 3]), expected, rtol=1e-5)  # float32 curve


def test_a_multi_input_fit_draws_one_break_per_input_past_its_largest_value():
    from tests.test_opposition import lr_table

    table = lr_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bu.ConvergenceWarning)
        fit = bu.fit(
            table,
            x=["N", "lr"],
            y="loss",
            form="unsl",
            breaks=0,
            chains=1,
            warmup=30,
            draws=30,
            map_starts=2,
            retries=0,
            priors={"future_break_rate": 1.0},
        )
    assert fit.with_future_break(rate=0.0).spec.priors == bu.UNSLPriors()  # off by default
    breaks = fit._future_break()
    assert [b.column for b in breaks] == [0, 1]
    u_max = np.log(table[["N", "lr"]].max().to_numpy()) - np.asarray(fit.scaling.center)
    np.testing.assert_allclose([b.u_max for b in breaks], u_max)
    inside = {"N": [1e8, 1e9], "lr": [1e-3, 1e-1]}
    off = fit.with_future_break(rate=0.0)
    np.testing.assert_array_equal(fit.curve_samples(inside), off.curve_samples(inside))
    past = {"N": [1e10, 1e8], "lr": [1e-3, 1.0]}
    assert not np.allclose(fit.curve_samples(past), off.curve_samples(past))
    again = fit._future_break()  # the same draws on every call
    for a, b in zip(again, breaks, strict=True):
        np.testing.assert_array_equal(a.location, b.location)

    # A result saved before multi-input breaks existed predicts as it did: without them.
    attrs = dict(fit.idata.attrs)
    spec = json.loads(attrs["spec"])
    del spec["priors"]["future_break_multi_input"]
    old = copy.copy(fit.idata)
    old.attrs = {**attrs, "spec": json.dumps(spec)}
    np.testing.assert_array_equal(bu.Fit(old).curve_samples(past), off.curve_samples(past))
