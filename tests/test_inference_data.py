"""A fit's InferenceData has the layout ``az.from_dict`` gives, built without its cost."""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

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
