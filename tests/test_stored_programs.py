"""Stored lowered programs: a later process loads them instead of tracing, same draws."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_unsl as bu
from bayes_unsl.inference import nuts, stored
from tests.conftest import QUICK, X, Y
from tests.test_programs import SETTINGS, normal_mean

SITES = ("limit_fraction", "m_centre", "c0_y", "log_sigma")


SMALL = {**QUICK, "warmup": 60, "draws": 60, "map_starts": 4}


def _fit(train, **options):
    settings = {**SMALL, **options}
    return bu.fit(train, X, Y, breaks=0, seed=3, warn=False, prior_draws=20, **settings)


def _same_draws(a, b):
    for site in SITES:
        np.testing.assert_array_equal(a.idata.posterior[site], b.idata.posterior[site])
    np.testing.assert_array_equal(
        a.idata.posterior_predictive["log_y"], b.idata.posterior_predictive["log_y"]
    )
    np.testing.assert_array_equal(a.idata.prior["m_centre"], b.idata.prior["m_centre"])


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh program store, and no programs kept in this process's memory."""
    monkeypatch.setenv("BAYES_UNSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    return tmp_path / "programs"


def _sources() -> set:
    """Where this process's programs came from: "store" (loaded), "export" or "trace"."""
    programs = next(iter(nuts._PROGRAMS.values()))
    every = (programs.init, programs.chunk, programs.posterior, programs.prior)
    return {p.source for p in every if p is not None}  # no prior program without prior draws


def test_stored_programs_are_loaded_without_tracing_and_draw_the_same(addition, store, monkeypatch):
    train, _ = addition
    first = _fit(train)
    assert _sources() == {"export"}
    # init, chunk, posterior and prior programs
    assert len(list(store.glob("*.program"))) == 4
    monkeypatch.setattr(nuts, "_PROGRAMS", {})  # what a new process has
    again = _fit(train)
    assert _sources() == {"store"}
    _same_draws(first, again)
    assert again.diagnostics()["seconds_compile"] > 0
    # A damaged file is rebuilt, and rewritten whole: the next process loads it.
    for path in store.glob("*.program"):
        path.write_bytes(b"not a program")
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    _same_draws(first, _fit(train))
    assert _sources() == {"export"}
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    _same_draws(first, _fit(train))
    assert _sources() == {"store"}


def test_stored_programs_draw_what_the_traced_ones_draw(addition, store, monkeypatch):
    train, _ = addition
    stored_fit = _fit(train)
    monkeypatch.setenv("BAYES_UNSL_CACHE_DIR", "0")
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    traced = _fit(train)
    _same_draws(stored_fit, traced)


def test_models_defined_outside_the_package_are_not_stored(store):
    args = (jnp.zeros(3), jnp.zeros(3))
    nuts.run_nuts(jax.random.PRNGKey(0), normal_mean, args, SETTINGS)
    assert not list(store.glob("*"))


def test_model_identity_names_package_models_with_their_settings():
    spec = bu.models.ModelSpec.build("bnsl", 1)
    model = functools.partial(bu.models.form_model("bnsl").model, spec=spec)
    identity = stored.model_identity(model)
    assert identity.startswith("bayes_unsl.models.bnsl.bnsl_model|")
    assert repr(spec) in identity
    other = functools.partial(model.func, spec=bu.models.ModelSpec.build("bnsl", 2))
    assert stored.model_identity(other) != identity
    assert stored.model_identity(normal_mean) is None


def test_programs_of_other_sampler_settings_are_stored_apart(addition, store, monkeypatch):
    """Settings baked into a program (tree depth, warm-up, ...) are part of its key."""
    train, _ = addition
    _fit(train, max_tree_depth=3)
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    deeper = _fit(train, max_tree_depth=5)
    assert _sources() == {"export"}
    assert len(list(store.glob("*.program"))) == 8
    assert deeper.idata.sample_stats["tree_depth"].max() > 3
    longer = _fit(train, draws=80)
    assert longer.idata.posterior.sizes["draw"] == 80


def test_model_identity_names_a_masked_model_by_the_model_it_wraps():
    """fit_many's padded models: one per spec, each stored under its own name."""
    from bayes_unsl.models.likelihood import masked

    def wrapped(floor):
        spec = bu.models.ModelSpec.build("bnsl", 1, priors={"sharpness_floor": floor})
        return masked(functools.partial(bu.models.form_model("bnsl").model, spec=spec))

    identity = stored.model_identity(wrapped(0.1))
    assert "sharpness_floor=0.1" in identity
    assert stored.model_identity(wrapped(0.2)) != identity
    assert stored.model_identity(wrapped(0.1)) == identity  # stable: no addresses
    assert stored.model_identity(masked(normal_mean)) is None


def test_fit_many_with_other_priors_is_not_served_a_stored_program(addition, store, monkeypatch):
    train, _ = addition
    table = train.assign(curve="a")
    options = {**SMALL, "breaks": 1, "seed": 3, "warn": False, "progress_bar": False}
    first = bu.fit_many(table, "curve", X, Y, priors={"sharpness_floor": 0.01}, **options)
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    other = bu.fit_many(table, "curve", X, Y, priors={"sharpness_floor": 0.3}, **options)
    floor = 0.3 * json.loads(other["a"].attrs["context"])["half_range"]
    assert float(first["a"].idata.posterior["f"].min()) < floor
    assert float(other["a"].idata.posterior["f"].min()) >= floor
    # Each spec's padded programs are stored under their own name and loaded again.
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    again = bu.fit_many(table, "curve", X, Y, priors={"sharpness_floor": 0.3}, **options)
    assert _sources() == {"store"}
    np.testing.assert_array_equal(again["a"].idata.posterior["f"], other["a"].idata.posterior["f"])
