"""The user surface on a real curve: fit, predict, samples, probabilities, save and load."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import bayes_unsl as bu
from tests.conftest import QUICK, X, Y


def test_predict_has_the_documented_columns(quick_fit, addition):
    _, held = addition
    table = quick_fit.predict(held[X], levels=(0.5, 0.9))
    assert list(table.columns) == [
        X,
        "median",
        "mean",
        "lower_50",
        "upper_50",
        "lower_90",
        "upper_90",
    ]
    assert np.allclose(table[X], held[X])
    assert (table["lower_90"] <= table["lower_50"]).all()
    assert (table["lower_50"] <= table["median"]).all()
    assert (table["median"] <= table["upper_50"]).all()
    assert (table["upper_50"] <= table["upper_90"]).all()


def test_samples_shape_and_reproducibility(quick_fit):
    draws = quick_fit.samples([800.0, 900.0, 1000.0])
    assert draws.shape == (QUICK["chains"] * QUICK["draws"], 3)
    assert np.all(draws > 0)
    assert np.array_equal(draws, quick_fit.samples([800.0, 900.0, 1000.0]))


def test_predictions_widen_past_the_data(quick_fit):
    table = quick_fit.predict([400.0, 4000.0], levels=(0.9,))
    rel_width = (table["upper_90"] - table["lower_90"]) / table["median"]
    assert rel_width[1] > 3 * rel_width[0]


def test_prob_below_is_a_probability_monotone_in_threshold(quick_fit):
    x = [800.0, 2000.0]
    low, high = quick_fit.prob_below(0.3, x), quick_fit.prob_below(3.0, x)
    assert low.shape == (2,)
    assert np.all((0 <= low) & (low <= high) & (high <= 1))
    assert np.all(high == 1.0)
    with pytest.raises(ValueError, match="threshold"):
        quick_fit.prob_below(-1.0, x)


def test_crossing_scale_is_a_posterior_over_scales(quick_fit):
    # The curve is near 2.1 at the first point and falls below 1.5 around x = 640.
    scales = quick_fit.crossing_scale(1.5)
    crossed = scales[~np.isnan(scales)]
    assert crossed.size > 0.9 * scales.size
    assert 560 < np.median(crossed) < 720
    never = quick_fit.crossing_scale(1e-6)
    assert np.isnan(never).all()


def test_diagnostics_are_recorded(quick_fit):
    d = quick_fit.diagnostics()
    for key in (
        "r_hat_max",
        "ess_bulk_min",
        "divergences",
        "converged",
        "seconds",
        "seconds_compile",
        "seconds_sampling",
        "tree_depth_mean",
    ):
        assert key in d
    # 2 chains x 300 draws: a record, not a convergence verdict (tests/test_demo_targets.py).
    assert d["r_hat_max"] >= 1.0 and np.isfinite(d["ess_bulk_min"])
    attrs = quick_fit.idata.attrs
    assert json.loads(attrs["spec"])["breaks"] == 1
    assert attrs["seed"] == 1 and attrs["bayes_unsl_version"] == bu.__version__
    for group in (
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "observed_data",
        "sample_stats",
        "prior",
        "prior_predictive",
        "constant_data",
    ):
        assert group in quick_fit.idata.groups()


def test_breaks_are_ordered_and_natural_units_recorded(quick_fit):
    post = quick_fit.idata.posterior
    for name in ("log_a", "beta", "c0", "c", "delta", "f", "sigma"):
        assert name in post
    assert float(post["sigma"].min()) > 0


def test_save_and_load_round_trip(quick_fit, tmp_path):
    path = quick_fit.save(tmp_path / "fit.nc")
    again = bu.load(path)
    assert again.spec == quick_fit.spec
    assert again.diagnostics() == quick_fit.diagnostics()
    assert np.array_equal(again.samples([900.0]), quick_fit.samples([900.0]))
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_refuses_foreign_files(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="not a readable netCDF"):
        bu.load(bad)
    with pytest.raises(FileNotFoundError):
        bu.load(tmp_path / "missing.nc")


def test_predict_input_errors(quick_fit):
    with pytest.raises(ValueError, match="has 2 column\\(s\\) but the fit uses 1"):
        quick_fit.predict(np.ones((3, 2)))
    with pytest.raises(ValueError, match="lacks column\\(s\\) \\['train_dataset_size'\\]"):
        quick_fit.predict({"n": [1.0, 2.0]})
    with pytest.raises(ValueError, match="zero or negative"):
        quick_fit.predict([0.0, 100.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        quick_fit.predict([np.nan])


def test_fit_rejects_unknown_options_and_forms(addition):
    train, _ = addition
    with pytest.raises(TypeError, match="unknown option"):
        bu.fit(train, X, Y, not_an_option=1)
    with pytest.raises(ValueError, match="unknown form"):
        bu.fit(train, X, Y, form="chinchilla_typo")
    with pytest.raises(ValueError, match="too few"):
        bu.fit(train.iloc[:8], X, Y, breaks=3)


def test_prior_predictive_is_broad_but_finite(addition):
    train, _ = addition
    draws = bu.prior_predictive(train, X, Y, draws=400, seed=3, new_x=[500.0, 1e4])
    assert draws.shape == (400, 2)
    assert np.all(np.isfinite(draws)) and np.all(draws > 0)
    # Weakly informative: the central half of the prior predictive inside the data spans
    # the observed values without being pinned to them.
    lo, hi = np.quantile(draws[:, 0], [0.25, 0.75])
    assert lo < train[Y].min() and hi > train[Y].max()
    assert hi / lo < 100


def test_a_power_law_without_breaks_fits_and_predicts(addition):
    train, _ = addition
    power_law = bu.fit(
        train.iloc[:8],
        X,
        Y,
        breaks=0,
        chains=2,
        warmup=200,
        draws=200,
        seed=2,
        warn=False,
        retries=0,
    )
    assert power_law.idata.posterior["c"].shape[-1] == 0
    table = power_law.predict([600.0, 1200.0])
    assert np.all(np.isfinite(table.to_numpy()))


def test_same_seed_gives_identical_draws(quick_fit, addition):
    train, _ = addition
    again = bu.fit(train, X, Y, seed=1, warn=False, prior_draws=200, **QUICK)
    for name in ("beta", "c", "delta", "sigma"):
        assert np.array_equal(again.idata.posterior[name], quick_fit.idata.posterior[name])
    other = bu.fit(train, X, Y, seed=2, warn=False, prior_draws=200, **QUICK)
    assert not np.array_equal(other.idata.posterior["beta"], quick_fit.idata.posterior["beta"])


def test_an_unconverged_fit_is_refitted_then_flagged(addition):
    train, _ = addition
    # 2 chains x (100 + 100) draws cannot reach a bulk ESS of 400: the remedy runs, and the
    # result is flagged rather than presented as converged.
    with pytest.warns(bu.ConvergenceWarning, match="did not converge"):
        result = bu.fit(train, X, Y, chains=2, warmup=100, draws=100, seed=3, retries=1)
    d = result.diagnostics()
    assert len(d["remedies"]) == 1 and "ESS" in " ".join(d["remedies"][0]["problems"])
    assert "map fitted to the failed run's draws" in d["remedies"][0]["then"]
    assert result.settings.target_accept == 0.99 and result.settings.warmup == 200
    assert not result.converged
    assert "NOT CONVERGED" in repr(result)
    assert np.all(np.isfinite(result.idata.posterior["beta"].values))


def test_remedy_kinds():
    from bayes_unsl.fit import remedy
    from bayes_unsl.inference.nuts import SamplerSettings

    settings = SamplerSettings(warmup=500, draws=400, target_accept=0.9)
    draws = np.random.default_rng(0).normal(size=(2, 50, 3))
    longer, tube, note = remedy(settings, draws, "longer")
    assert tube is None and (longer.warmup, longer.draws, longer.target_accept) == (1000, 800, 0.99)
    same, tube, note = remedy(settings, draws, "map")
    assert same == settings and tube is not None and tube.mean.shape == (3,)
    both, tube, note = remedy(settings, draws, "map+longer")
    assert both == longer and tube is not None and "map" in note and "0.99" in note
    assert remedy(settings, None, "map")[1] is None  # no draws, no map
    with pytest.raises(ValueError, match="remedy must be one of"):
        bu.fit({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": [1.0] * 6}, "x", "y", remedy="more")


def test_a_failed_map_search_is_a_convergence_problem():
    from bayes_unsl.inference.diagnostics import convergence_problems

    fine = {"chains": 4, "r_hat_max": 1.001, "ess_bulk_min": 2000.0, "divergences": 0}
    assert convergence_problems({**fine, "map_starts_finite": 3}) == []
    (problem,) = convergence_problems({**fine, "map_starts_finite": 0})
    assert "no MAP start reached a finite log density" in problem


def test_chains_in_separate_modes_are_named():
    """Two chains near 0 and two near 10: R-hat fails and the message says why."""
    import arviz as az

    from bayes_unsl.inference.diagnostics import convergence_problems, summarise_convergence

    rng = np.random.default_rng(0)
    mixed = rng.normal(size=(4, 500))
    split = mixed + np.array([0.0, 0.0, 10.0, 10.0])[:, None]
    one = summarise_convergence(az.from_dict(posterior={"delta": mixed, "c": mixed}))
    two = summarise_convergence(az.from_dict(posterior={"delta": split, "c": mixed}))
    assert one["chain_separation"] < 0.5
    assert two["chain_separation"] > 8 and two["chain_separation_site"] == "delta"
    assert not any("modes" in p for p in convergence_problems(one))
    (problem, *_) = convergence_problems(two)
    assert problem.startswith("max R-hat") and "separate modes (delta: chain means" in problem


def test_correlated_errors_fit_and_predict(addition, tmp_path):
    """likelihood="ou": its two noise sites are sampled and judged, and predictions work."""
    train, test = addition
    result = bu.fit(train, X, Y, likelihood="ou", seed=2, warn=False, **QUICK)
    posterior = result.idata.posterior
    share = posterior["noise_corr_share"].values
    assert np.all((share > 0) & (share < 1))
    assert np.isfinite(posterior["log_noise_length"].values).all()
    assert result.idata.log_likelihood["log_y"].shape[-1] == len(train)
    assert np.isfinite(result.diagnostics()["r_hat_max"])
    table = result.predict(test[X])
    assert np.all(table["lower_90"] < table["upper_90"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bu.ConvergenceWarning)  # a short run may not converge
        saved = bu.load(result.save(tmp_path / "ou.nc"))
    assert saved.spec.likelihood == "ou"
    np.testing.assert_allclose(saved.samples(test[X]), result.samples(test[X]))
