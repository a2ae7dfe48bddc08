"""A metric with a hard limit (an error rate cannot exceed 1): refused above, capped."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import bayes_unsl as bu
from bayes_unsl.cli import main
from bayes_unsl.models import ModelSpec
from tests.conftest import X, Y

FAR = [9.28e4]  # 100 times the largest observed size: the future-break prior acts here


def bounded(fit: bu.Fit, bound: float) -> bu.Fit:
    """The same posterior with ``upper_bound`` declared (no refit: the bound is not sampled)."""
    idata = copy.deepcopy(fit.idata)
    spec = json.loads(idata.attrs["spec"])
    idata.attrs["spec"] = json.dumps({**spec, "upper_bound": bound})
    return bu.Fit(idata)


def test_forecasts_are_capped_at_the_bound(quick_fit):
    bound = 2.2  # above every observation (largest 2.14)
    steep = quick_fit.with_future_break(slope_sd=4.0)  # curves that can rise past the data
    free, capped = steep.samples(FAR)[:, 0], bounded(steep, bound).samples(FAR)[:, 0]
    assert (free > bound).any()  # the test can fail: without the bound it is exceeded
    assert capped.max() <= bound
    np.testing.assert_array_equal(capped, np.minimum(free, bound))
    curves = bounded(steep, bound).curve_samples(FAR)
    assert curves.max() <= bound
    table = bounded(steep, bound).predict(FAR, levels=(0.9,))
    assert table["upper_90"].iloc[0] <= bound


def test_inside_the_bound_nothing_changes(quick_fit, addition):
    train, _ = addition
    far_above = bounded(quick_fit, 1e6)
    x = train[X].to_numpy()
    np.testing.assert_array_equal(far_above.samples(x), quick_fit.samples(x))


def test_the_bound_is_saved_and_reloaded(quick_fit, tmp_path):
    path = bounded(quick_fit, 2.5).save(tmp_path / "fit.nc")
    with pytest.warns(bu.ConvergenceWarning):  # the quick fit is not converged
        assert bu.load(path).spec.upper_bound == 2.5
    assert quick_fit.spec.upper_bound is None


def test_observations_above_the_bound_are_refused(addition):
    train, _ = addition
    with pytest.raises(ValueError, match=r"exceed upper_bound=1 \(rows \[0, 1, 2, 3, 4\] \.\.\.\)"):
        bu.fit(train, X, Y, upper_bound=1.0)
    with pytest.raises(ValueError, match="exceed upper_bound=1"):
        bu.prior_predictive(train, X, Y, upper_bound=1.0)


@pytest.mark.parametrize("bound", [0.0, -1.0, float("nan"), float("inf"), True, "one"])
def test_bad_bounds_are_refused(bound):
    with pytest.raises(ValueError, match="upper_bound must be a positive finite number"):
        ModelSpec.build("bnsl", 1, "normal", None, bound)


def test_cli_refuses_data_above_the_bound(addition, tmp_path):
    train, _ = addition
    csv = tmp_path / "a.csv"
    train.to_csv(csv, index=False)
    argv = ["fit", str(csv), "--x", X, "--y", Y, "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="exceed upper_bound=1"):
        main([*argv, "--upper-bound", "1"])
