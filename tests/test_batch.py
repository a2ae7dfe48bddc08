"""fit_many: batched curves match independent fits, failures are reported, runs resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
import bayes_unsl.batch as batch
from bayes_unsl.data import validate
from bayes_unsl.inference.nuts import PosteriorRun, _structure
from bayes_unsl.models import ModelSpec, form_model
from bayes_unsl.models.likelihood import masked
from tests.conftest import QUICK, X, Y


@pytest.fixture(scope="module")
def table(addition):
    train, _ = addition
    short = train.iloc[:11].assign(curve="short")
    full = train.assign(curve="full")
    lonely = train.iloc[:2].assign(curve="lonely")  # too few points for the model
    return pd.concat([full, lonely, short], ignore_index=True)


@pytest.fixture(scope="module")
def collection(table):
    return bu.fit_many(table, "curve", X, Y, seed=3, batch_size=2, warn=False, **QUICK)


@pytest.mark.parametrize(
    ("likelihood", "priors"),
    [("student_t", None), ("ou", None), ("student_t", {"noise_trend_sd": 0.5})],
)
def test_padding_leaves_the_potential_unchanged(addition, likelihood, priors):
    """Padded points are masked out (correlated errors skip them, a noise trend's scale at
    a padded input does not count); the sampler's Jacobian terms keep their weight."""
    with jax.enable_x64(True):
        train, _ = addition
        spec = ModelSpec.build("bnsl", 1, likelihood, priors=priors)
        data = validate(train, X, Y)
        context = form_model("bnsl").context(data, spec)
        model = bu.fit.__globals__["_model_for"](spec)
        args = (jnp.asarray(data.z), context, jnp.asarray(data.log_y))
        ((padded, _),) = [batch._stack([(0, data, context)], data.n_points + 5, seed=0)]
        one = jax.tree_util.tree_map(lambda v: v[0], padded)
        gen, _, unravel, dim = _structure(model, args)
        gen_m, _, unravel_m, dim_m = _structure(masked(model), one)
        assert dim == dim_m
        plain = jax.value_and_grad(lambda v: gen(*args)(unravel(v)))
        padded_ = jax.value_and_grad(lambda v: gen_m(*one)(unravel_m(v)))
        for i in range(5):
            v = jax.random.normal(jax.random.PRNGKey(i), (dim,))
            (a, grad_a), (b, grad_b) = plain(v), padded_(v)
            np.testing.assert_allclose(a, b)
            np.testing.assert_allclose(grad_a, grad_b, rtol=1e-9, atol=1e-12)


def test_groups_are_fitted_and_failures_reported(collection):
    assert list(collection) == ["full", "short"]
    assert set(collection.errors) == {"lonely"}
    assert "too few" in collection.errors["lonely"]
    with pytest.raises(KeyError, match="lonely"):
        collection["lonely"]
    table = collection.diagnostics()
    assert list(table["curve"]) == ["full", "short", "lonely"]
    assert table.loc[table.curve == "lonely", "error"].item().startswith("invalid data")
    assert collection["short"].idata.observed_data["log_y"].size == 11
    assert collection["full"].idata.log_likelihood["log_y"].shape[-1] == 14


def test_tidy_predict_over_groups(collection):
    table = collection.predict([800.0, 1600.0], levels=(0.9,))
    assert list(table.columns) == ["curve", X, "median", "mean", "lower_90", "upper_90"]
    assert list(table["curve"]) == ["full", "full", "short", "short"]
    per_group = collection.predict({"short": [100.0]})
    assert list(per_group["curve"]) == ["short"]


def test_batched_fit_matches_an_independent_fit(collection, quick_fit):
    """Same curve, same settings, different random streams: the same posterior."""
    batched = collection["full"].samples([100.0, 400.0])
    single = quick_fit.samples([100.0, 400.0])
    se = np.sqrt(single.var(axis=0) / 300 + batched.var(axis=0) / 300)  # ESS >= 300 here
    assert np.all(np.abs(np.median(batched, 0) - np.median(single, 0)) < 5 * se)
    assert collection["full"].spec == quick_fit.spec


def test_unconverged_groups_warn_once(table, collection, monkeypatch):
    d = collection["full"].diagnostics()
    assert d["batch_size"] == 2 and "seconds" in d
    bad = {k: f for k, f in collection.fits.items()}
    monkeypatch.setattr(bu.Fit, "converged", property(lambda self: False))
    with pytest.warns(bu.ConvergenceWarning, match="2 of 2 fits did not converge"):
        batch._warn(batch.FitCollection(bad, {}, "curve"), warn=True)


def test_save_resume_and_interrupt(table, tmp_path, monkeypatch):
    out = tmp_path / "fits"
    calls = []
    real = batch.run_nuts_batch

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "run_nuts_batch", interrupt_second)
    two = table[table.curve != "lonely"]
    with pytest.raises(KeyboardInterrupt):
        bu.fit_many(two, "curve", X, Y, seed=3, batch_size=1, warn=False, out=out, **QUICK)
    index = json.loads((out / batch.INDEX).read_text())
    assert [e["group"] for e in index["fits"]] == ["full"]
    assert not list(out.glob("*.tmp*"))

    def no_sampling(*args, **kwargs):
        raise AssertionError("a saved group was sampled again")

    # Resume: the finished group is loaded, only the other one is sampled.
    monkeypatch.setattr(batch, "run_nuts_batch", real)
    resumed = bu.fit_many(two, "curve", X, Y, seed=3, batch_size=1, warn=False, out=out, **QUICK)
    assert list(resumed) == ["full", "short"]
    monkeypatch.setattr(batch, "run_nuts_batch", no_sampling)
    again = bu.fit_many(two, "curve", X, Y, seed=3, batch_size=1, warn=False, out=out, **QUICK)
    np.testing.assert_array_equal(
        again["short"].idata.posterior["m_centre"], resumed["short"].idata.posterior["m_centre"]
    )
    loaded = bu.load_many(out)
    assert list(loaded) == ["full", "short"]
    # The further-break prior acts at prediction time: another one resumes, not refits.
    far = {"future_break_rate": 0.5, "future_slope_sd": 0.3}
    other = bu.fit_many(
        two, "curve", X, Y, seed=3, batch_size=1, warn=False, out=out, priors=far, **QUICK
    )
    assert other["short"].spec.priors.future_break_rate == 0.5
    assert other["short"].spec.priors.future_slope_sd == 0.3
    np.testing.assert_array_equal(
        other["short"].idata.posterior["m_centre"], resumed["short"].idata.posterior["m_centre"]
    )
    with pytest.raises(AssertionError, match="sampled again"):  # a sampled prior does refit
        bu.fit_many(two, "curve", X, Y, seed=3, batch_size=1, warn=False, out=out,
                    priors={"slope_sd": 1.0}, **QUICK)  # fmt: skip


def test_bad_arguments(table):
    with pytest.raises(ValueError, match="group column 'nope' not found"):
        bu.fit_many(table, "nope", X, Y)
    with pytest.raises(ValueError, match="batch_size"):
        bu.fit_many(table, "curve", X, Y, batch_size=0)
    with pytest.raises(ValueError, match="device must be"):
        bu.fit_many(table, "curve", X, Y, device="tpu9")
    with pytest.raises(TypeError, match="unknown option"):
        bu.fit_many(table, "curve", X, Y, bogus=1)


SHARDED = textwrap.dedent(
    """
    import json, sys, warnings
    import jax, numpy as np
    import bayes_unsl as bu
    warnings.simplefilter("ignore")
    frame = bu.datasets.load("four_digit_addition").iloc[:14]
    table = __import__("pandas").concat([frame.assign(g=i) for i in range(4)])
    # Few iterations: sharding changes the rounding of the compiled program (measured:
    # 1e-10 after ten iterations), and NUTS trajectories amplify rounding over long runs.
    # The normal likelihood: with Student-t the multi-start MAP search ends where the
    # potential is flat, at points that rounding moves (MAP potentials 1e-2 apart, draws
    # 1e-4 apart after one iteration), which tests the optimiser, not the sharding.
    kw = dict(chains=2, warmup=5, draws=5, map_starts=4, retries=0, warn=False,
              likelihood="normal")
    many = bu.fit_many(table, "g", "train_dataset_size", "test_cross_entropy",
                       batch_size=4, **kw)
    one = bu.fit_many(table, "g", "train_dataset_size", "test_cross_entropy",
                      batch_size=4, shard=False, **kw)
    same = all(
        np.allclose(many[g].idata.posterior["m_centre"], one[g].idata.posterior["m_centre"],
                    rtol=0, atol=1e-6)
        for g in range(4)
    )
    print(json.dumps({"devices": jax.device_count(), "fits": len(many), "same": bool(same)}))
    """
)


@pytest.mark.slow
def test_sharded_over_four_host_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    done = subprocess.run(
        [sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"devices": 4, "fits": 4, "same": True}


def run_of(fit_: bu.Fit) -> PosteriorRun:
    """A fit's arrays as the sampler's run (what ``_fit_batches`` yields)."""

    def group(name: str) -> dict:
        if name not in fit_.idata.groups():
            return {}
        return {k: v.values for k, v in fit_.idata[name].items()}

    return PosteriorRun(
        posterior=group("posterior"),
        log_likelihood=group("log_likelihood"),
        posterior_predictive=group("posterior_predictive"),
        prior={},
        sample_stats=group("sample_stats"),
        info={},
    )


def test_the_map_remedy_runs_batched(table):
    """Two groups that cannot reach a bulk ESS of 400 are refitted together, each in the
    coordinates of a map fitted to its own failed draws."""
    two = table[table.curve.isin(["full", "short"])]
    fits = bu.fit_many(
        two,
        "curve",
        X,
        Y,
        chains=2,
        warmup=100,
        draws=100,
        retries=1,
        remedy="map",
        batch_size=2,
        warn=False,
    )
    for key in ("full", "short"):
        d = fits[key].diagnostics()
        assert len(d["remedies"]) == 1 and "map" in d["remedies"][0]["then"]
        assert fits[key].settings.warmup == 100  # "map" alone keeps the settings
        assert np.all(np.isfinite(fits[key].idata.posterior["beta"].values))


def test_remedy_is_recorded_with_the_time_of_every_attempt(table, collection, monkeypatch):
    base = collection["full"]
    calls = []

    def first_attempt_fails(keys, curves, spec, settings, *rest):
        calls.append(settings)
        diag = dict(base.diagnostics(), seconds=10.0)
        if len(calls) == 1:
            diag["r_hat_max"] = 1.5
        yield {k: (run_of(base), dict(diag)) for k in keys}

    monkeypatch.setattr(batch, "_fit_batches", first_attempt_fails)
    one = table[table.curve == "full"]
    fits = bu.fit_many(one, "curve", X, Y, warn=False, **{**QUICK, "retries": 1})
    assert len(calls) == 2
    assert calls[1].warmup == 2 * calls[0].warmup and calls[1].target_accept == 0.99
    d = fits["full"].diagnostics()
    assert d["seconds"] == 20.0
    assert len(d["remedies"]) == 1 and d["remedies"][0]["then"].startswith("refitted")
    assert json.loads(fits["full"].idata.attrs["settings"])["warmup"] == calls[1].warmup
