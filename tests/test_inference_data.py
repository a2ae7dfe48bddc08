"""A fit's InferenceData has the layout ``az.from_dict`` gives, built without its cost."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

import bayes_unsl as bu
from bayes_unsl.data import validate
from bayes_unsl.fit import _DATA_DIMS, _inference_data
from bayes_unsl.inference.nuts import PosteriorRun
from tests.conftest import X, Y


def test_layout_equals_from_dict(addition):
    train, _ = addition
    dataset = validate(train, X, Y)
    rng = np.random.default_rng(0)
    n = dataset.n_points
    run = PosteriorRun(
        posterior={"a": rng.normal(size=(2, 5)), "mu": rng.normal(size=(2, 5, n))},
        log_likelihood={"log_y": rng.normal(size=(2, 5, n))},
        posterior_predictive={"log_y": rng.normal(size=(2, 5, n))},
        prior={"a": rng.normal(size=(1, 7)), "log_y": rng.normal(size=(1, 7, n))},
        sample_stats={"diverging": np.zeros((2, 5), bool), "w": rng.normal(size=(2, 5, 3))},
        info={},
    )
    dims = {"mu": ["point"]}
    got = _inference_data(run, dataset, dims)
    want = az.from_dict(
        posterior=run.posterior,
        log_likelihood=run.log_likelihood,
        posterior_predictive=run.posterior_predictive,
        prior={"a": run.prior["a"]},
        prior_predictive={"log_y": run.prior["log_y"]},
        sample_stats=run.sample_stats,
        observed_data={"log_y": dataset.log_y},
        constant_data={"x": dataset.x, "y": dataset.y},
        dims={**_DATA_DIMS, **dims},
        coords={"point": np.arange(n), "input": list(dataset.x_names)},
    )
    assert got.groups() == want.groups()
    for name in want.groups():
        xr.testing.assert_identical(got[name].drop_attrs(), want[name].drop_attrs())
        assert set(got[name].attrs) >= {"created_at", "arviz_version"}


def test_deferred_fit_builds_its_inference_data_once_on_first_use(quick_fit):
    calls = []

    def build():
        calls.append(1)
        idata = quick_fit.idata.copy()
        idata.attrs = {}
        return idata

    attrs = dict(quick_fit.idata.attrs)
    posterior = {k: v.values for k, v in quick_fit.idata.posterior.items()}
    fit_ = bu.Fit.deferred(attrs, posterior, build)
    assert fit_.diagnostics() == quick_fit.diagnostics() and repr(fit_) == repr(quick_fit)
    for name, draws in quick_fit.parameter_draws().items():
        np.testing.assert_array_equal(fit_.parameter_draws()[name], draws)
    assert not calls  # nothing above needed the InferenceData
    assert fit_.idata.attrs == quick_fit.idata.attrs and fit_.idata is fit_.idata
    assert len(calls) == 1
    new_x = [1e4, 1e5]
    pd.testing.assert_frame_equal(fit_.predict(new_x), quick_fit.predict(new_x))
