"""Oppositional forces and inputs without a bottleneck component in the UNSL model, and
the posterior optimum of one input (``bayes_unsl.hyperparameters``)."""

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
from bayes_unsl.hyperparameters import OptimumWarning, _refine, optimal_input
from bayes_unsl.models import ModelSpec, form_model, unsl_curve, unsl_param_count
from bayes_unsl.priors import UNSLPriors
from tests.test_form_models import free_parameters

# A loss falling in N and U-shaped in the learning rate: E + A N^-a + B lr^-b + C lr^e.
TRUTH = {"E": 1.8, "A": 300.0, "a": 0.3, "B": 0.02, "b": 0.5, "C": 5.0, "e": 1.0}


def true_loss(n, lr):
    t = TRUTH
    return t["E"] + t["A"] * n ** -t["a"] + t["B"] * lr ** -t["b"] + t["C"] * lr ** t["e"]


def true_optimal_lr():
    # d/dlr (B lr^-b + C lr^e) = 0, independent of N for this truth.
    t = TRUTH
    return (t["B"] * t["b"] / (t["C"] * t["e"])) ** (1.0 / (t["e"] + t["b"]))


def lr_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, lr = np.meshgrid(np.geomspace(1e7, 1e9, 4), np.geomspace(1e-4, 1e-1, 10))
    n, lr = n.ravel(), lr.ravel()
    loss = true_loss(n, lr) * np.exp(0.01 * rng.standard_normal(n.size))
    return pd.DataFrame({"N": n, "lr": lr, "loss": loss})


def prior_sites(spec, data, n=50):
    form = form_model("unsl")
    context = form.context(data, spec)

    def one(key):
        tr = handlers.trace(handlers.seed(form.model, key)).get_trace(
            jnp.asarray(data.z), context, None, spec=spec
        )
        return {k: s["value"] for k, s in tr.items() if s["type"] in ("sample", "deterministic")}

    return jax.vmap(one)(jax.random.split(jax.random.PRNGKey(1), n)), context


def test_parameter_count_with_forces_and_inputs_left_out():
    data = validate(lr_table(), ["N", "lr"], "loss")
    for priors, breaks in [
        ({"opposition": [1]}, 0),
        ({"opposition": [0, 1]}, 1),
        ({"opposition": [1], "no_bottleneck": [1]}, 1),
        ({"no_bottleneck": [0], "joint_component": True}, 0),
        ({"opposition": [[0, 1], 1]}, 0),
        ({"opposition": [1], "no_bottleneck": [0, 1], "joint_component": True}, 1),
    ]:
        spec = ModelSpec.build("unsl", breaks, priors=priors)
        p = spec.priors
        free = free_parameters(form_model("unsl"), spec, data)
        expected = unsl_param_count(2, breaks, p.joint_component, p.no_bottleneck, p.opposition)
        assert sum(free.values()) == expected, priors
        assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_prior_of_a_force_rises_and_a_left_out_input_has_no_component():
    data = validate(lr_table(), ["N", "lr"], "loss")
    spec = ModelSpec.build("unsl", 1, priors={"opposition": [1], "no_bottleneck": [1]})
    sites, _ = prior_sites(spec, data)
    assert sites["rise"].shape == (50, 1, 2)
    assert np.all(sites["rise"][:, 0, 1] > 0) and np.all(sites["rise"][:, 0, 0] == 0)
    assert np.all(np.isneginf(sites["beta"][:, 1])) and np.all(np.isfinite(sites["beta"][:, 0]))
    names = ("log_a", "beta", "c0", "c", "delta", "f", "gamma", "rise")
    params = {k: sites[k] for k in names}
    # Each draw is a curve that rises in lr far enough out: the force wins at large lr.
    far = jnp.array([[0.0, 0.0], [0.0, 50.0]])
    ends = jax.vmap(unsl_curve, in_axes=(0, None))(params, far)
    assert np.all(ends[:, 1] > ends[:, 0])
    # Without breaks, the centre value is shared among the components and the force: at
    # u = 0 the curve is the limit plus the reducible part, whatever the split.
    spec = ModelSpec.build("unsl", 0, priors={"opposition": [0, 1]})
    sites, _ = prior_sites(spec, data)
    params = {k: sites[k] for k in names}
    at_centre = jax.vmap(unsl_curve, in_axes=(0, None))(params, jnp.zeros((1, 2)))[:, 0]
    assert np.allclose(at_centre, sites["m_centre"], atol=1e-5)
    assert sites["share"].shape == (50, 4)


def test_a_force_over_several_inputs_rises_with_each():
    data = validate(lr_table(), ["N", "lr"], "loss")
    spec = ModelSpec.build("unsl", 0, priors={"opposition": [[0, 1]]})
    assert spec.priors.opposition == ((0, 1),)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    sites, _ = prior_sites(spec, data)
    assert sites["rise"].shape == (50, 1, 2) and np.all(sites["rise"] > 0)
    assert sites["rise_z"].shape == (50, 2)
    # No bottleneck component at all: the joint component and the force carry the curve.
    spec = ModelSpec.build(
        "unsl", 1, priors={"opposition": [1], "no_bottleneck": [0, 1], "joint_component": True}
    )
    sites, _ = prior_sites(spec, data)
    assert np.all(np.isneginf(sites["beta"])) and sites["share"].shape == (50, 2)


def test_structure_errors_name_the_problem():
    data = validate(lr_table(), ["N", "lr"], "loss")
    with pytest.raises(ValueError, match="'opposition' names input column"):
        form_model("unsl").context(data, ModelSpec.build("unsl", 0, priors={"opposition": [2]}))
    with pytest.raises(ValueError, match="no falling component"):
        form_model("unsl").context(
            data, ModelSpec.build("unsl", 0, priors={"no_bottleneck": [0, 1]})
        )
    with pytest.raises(ValueError, match="list of input column indices"):
        UNSLPriors(opposition=(1.5,))
    with pytest.raises(ValueError, match="repeats an input"):
        UNSLPriors(no_bottleneck=(0, 0))
    with pytest.raises(ValueError, match="repeats an input"):
        UNSLPriors(opposition=((0, 0),))
    with pytest.raises(ValueError, match="'opposition' names input column"):
        form_model("unsl").context(
            data, ModelSpec.build("unsl", 0, priors={"opposition": [[0, 3]]})
        )


def test_parabola_refinement_finds_the_vertex_between_grid_points():
    grid = np.linspace(-2.0, 2.0, 21)
    centres = np.array([0.13, -0.77, 1.99])
    values = (grid[None, :] - centres[:, None]) ** 2 + 3.0
    best, minimum, edge = _refine(grid, values)
    assert np.allclose(best[:2], centres[:2], atol=1e-9)
    assert np.allclose(minimum[:2], 3.0, atol=1e-9)
    assert list(edge) == [False, False, True] and best[2] == grid[-1]


@pytest.fixture(scope="module")
def lr_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bu.ConvergenceWarning)
        return bu.fit(
            lr_table(),
            x=["N", "lr"],
            y="loss",
            form="unsl",
            breaks=0,
            priors={"opposition": [1]},
            chains=2,
            warmup=400,
            draws=400,
            seed=0,
            retries=0,
        )


@pytest.mark.slow
def test_a_force_on_the_learning_rate_locates_its_optimum_beyond_the_data(lr_fit):
    # Forecast at 10x the largest model trained: the truth's optimum lies in the interval.
    draws = optimal_input(lr_fit, "lr", {"N": 1e10}, bounds=(1e-5, 1.0))
    lo, hi = np.quantile(draws["optimum"], [0.05, 0.95])
    assert lo < true_optimal_lr() < hi
    assert hi / lo < 10  # and the data pin it within a decade
    assert not draws["at_edge"].any()
    expected = true_loss(1e10, true_optimal_lr())
    assert abs(np.median(draws["metric"]) / expected - 1) < 0.03
    # The minimum is the curve's own value there.
    one = draws.iloc[[0, 1]]
    again = lr_fit.curve_samples({"N": [1e10, 1e10], "lr": one["optimum"].to_numpy()})
    assert np.allclose(np.diagonal(again[:2]), one["metric"], rtol=1e-3)


@pytest.mark.slow
def test_an_optimum_outside_the_range_searched_warns(lr_fit):
    with pytest.warns(OptimumWarning, match="end of the range"):
        draws = optimal_input(lr_fit, "lr", {"N": 1e9}, bounds=(1e-4, 1e-3), n_grid=20)
    assert draws["at_edge"].mean() > 0.9
    with pytest.raises(ValueError, match="lacks input"):
        optimal_input(lr_fit, "lr", {}, bounds=(1e-4, 1.0))
    with pytest.raises(ValueError, match="bounds"):
        optimal_input(lr_fit, "lr", {"N": 1e9}, bounds=(1.0, 1e-4))


@pytest.mark.slow
def test_a_fit_with_a_force_over_two_inputs_predicts_and_saves(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bu.ConvergenceWarning)
        fit = bu.fit(
            lr_table(),
            x=["N", "lr"],
            y="loss",
            form="unsl",
            breaks=0,
            priors={"opposition": [[0, 1]]},
            chains=1,
            warmup=20,
            draws=20,
            map_starts=2,
            retries=0,
        )
    assert fit.idata.posterior["rise"].shape == (1, 20, 1, 2)
    assert fit.samples(lr_table().iloc[:3]).shape == (20, 3)
    again = bu.load(fit.save(tmp_path / "fit.nc"))
    assert again.spec == fit.spec and again.spec.priors.opposition == ((0, 1),)
    assert np.array_equal(again.samples([[1e8, 1e-2]]), fit.samples([[1e8, 1e-2]]))
