"""The break past the data: zero up to the last observation, at its stated rate past it."""

from __future__ import annotations

import json

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
    assert quick_fit.spec.priors.future_break_rate == pytest.approx(1.0)  # the default

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
    assert quick_fit.spec.priors.future_break_rate == 1.0  # the original is untouched

    def width(fit):
        lo, hi = np.quantile(np.log(fit.samples(far)[:, 0]), [0.05, 0.95])
        return hi - lo

    steep = quick_fit.with_future_break(slope_sd=4.0)  # visible on a curve at its limit
    gentle = steep.with_future_break(slope_sd=0.05)
    often = steep.with_future_break(rate=3.0)
    assert steep.spec.priors.future_break_rate == 1.0  # settings not given are kept
    assert width(none) < width(steep) < width(often)
    assert abs(width(gentle) - width(none)) < 0.1 * (width(steep) - width(none))
    with pytest.warns(bu.ConvergenceWarning):  # the quick fit is not converged
        again = bu.load(often.save(tmp_path / "often.nc"))
    np.testing.assert_array_equal(again.samples(far), often.samples(far))
    with pytest.raises(ValueError, match="future_break_rate"):
        quick_fit.with_future_break(rate=-1.0)


def test_a_result_saved_before_the_absolute_slope_keeps_its_predictions(quick_fit):
    """Files written before ``future_slope_sd`` existed used the data-relative slope."""
    idata = quick_fit.idata.copy()
    spec = json.loads(idata.attrs["spec"])
    del spec["priors"]["future_slope_sd"]
    idata.attrs = {**idata.attrs, "spec": json.dumps(spec)}
    old = bu.Fit(idata)
    assert old.spec.priors.future_slope_sd == STORED_BEFORE["future_slope_sd"] == 0.0
    far = [9.28e4]
    np.testing.assert_array_equal(
        old.samples(far), quick_fit.with_future_break(slope_sd=0.0).samples(far)
    )
    absolute = quick_fit.with_future_break(slope_sd=1.0)  # an explicit setting is kept
    assert bu.Fit(absolute.idata).spec.priors.future_slope_sd == 1.0
