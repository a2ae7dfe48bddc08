"""The models of CF, DC, M4 and UNSL: what their priors generate, that their mean is their
curve, that UNSL reduces to the BNSL, and one end-to-end fit of CF."""

from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import log_density

import bayes_unsl as bu
from bayes_unsl.data import validate
from bayes_unsl.forms import chinchilla
from bayes_unsl.models import (
    ModelSpec,
    bnsl_context,
    bnsl_curve,
    bnsl_model,
    form_model,
    unsl_context,
    unsl_curve,
    unsl_model,
    unsl_param_count,
)
from bayes_unsl.models.pivot import centre_slope_scale
from bayes_unsl.models.unsl import term_slope_scale
from bayes_unsl.priors import ChinchillaPriors, DCPriors, M4Priors, UNSLPriors

# Hoffmann et al.'s published CF fit (E, A, B, alpha, beta), used to simulate.
TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def cf_table(noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 5), np.geomspace(1e9, 1e12, 5))
    n, d = n.ravel(), d.ravel()
    t = TRUTH
    y = t["E"] + t["A"] * n ** -t["alpha"] + t["B"] * d ** -t["beta"]
    return pd.DataFrame({"N": n, "D": d, "loss": y * np.exp(noise * rng.standard_normal(n.size))})


def dc_table() -> pd.DataFrame:
    frame = cf_table()
    # Unique data between a tenth of D (ten epochs) and all of it.
    unique = frame["D"] * np.tile([0.1, 0.3, 1.0, 1.0, 0.5], 5)
    return frame.assign(U=unique)[["N", "D", "U", "loss"]]


def m4_table() -> pd.DataFrame:
    x = np.geomspace(1e2, 1e5, 16)
    return pd.DataFrame({"x": x, "err": 0.05 + 2.0 * x**-0.4})


# form, breaks, dataset builder
CASES = {
    "chinchilla": ("chinchilla", 0, lambda: validate(cf_table(), ["N", "D"], "loss")),
    "data_constrained": (
        "data_constrained",
        0,
        lambda: validate(dc_table(), ["N", "D", "U"], "loss"),
    ),
    "m4": ("m4", 0, lambda: validate(m4_table(), "x", "err")),
    "unsl_1": ("unsl", 2, lambda: validate(m4_table(), "x", "err")),
    "unsl_2": ("unsl", 1, lambda: validate(cf_table(), ["N", "D"], "loss")),
}


def setup(case: str):
    name, breaks, data = CASES[case]
    spec = ModelSpec.build(name, breaks)
    form = form_model(name)
    dataset = data()
    return form, spec, dataset, form.context(dataset, spec)


class Prior(NamedTuple):
    form: Any
    spec: ModelSpec
    data: Any
    context: Any
    sites: dict[str, np.ndarray]  # every sample and deterministic site, one row per draw
    loc: np.ndarray  # the likelihood's location, (draws, points)
    curve: np.ndarray  # form.curve at the data, then at the points of far_u
    far_u: np.ndarray  # log inputs past the data on both sides


@functools.cache
def prior(case: str, draws: int = 200) -> Prior:
    """Prior draws of every site and of the likelihood's location, and the curve of each
    draw at the data and past it; each a single compiled program (they are slow to trace
    op by op)."""
    form, spec, data, context = setup(case)
    z = jnp.asarray(data.z)
    u = np.asarray(data.z) * np.asarray(data.scaling.half_range)
    far_u = np.concatenate([3.0 * u, u + np.log(100.0), u - np.log(100.0)])
    all_u = jnp.asarray(np.concatenate([u, far_u]))

    def one(key):
        tr = handlers.trace(handlers.seed(form.model, key)).get_trace(z, context, spec=spec)
        sites = {k: s["value"] for k, s in tr.items() if s["type"] in ("sample", "deterministic")}
        params = {k: sites[k] for k in form.curve_sites if k in sites}
        return sites, tr["log_y"]["fn"].loc, form.curve(params, all_u)

    keys = jax.random.split(jax.random.PRNGKey(0), draws)
    sites, loc, curve = jax.jit(jax.vmap(one))(keys)
    as_np = {k: np.asarray(v) for k, v in sites.items()}
    return Prior(form, spec, data, context, as_np, np.asarray(loc), np.asarray(curve), far_u)


@pytest.mark.parametrize("case", list(CASES))
def test_prior_predictive_draws_are_finite_and_positive(case):
    p = prior(case)
    # On the log scale, where the models work: with the limit within a hair of the curve,
    # the wide slope priors reach curves past float64's range at the edges of the data.
    log_y = p.sites["log_y"]
    assert log_y.shape == (200, p.data.n_points)
    assert np.all(np.isfinite(log_y))
    assert np.all(np.isfinite(p.sites["sigma"])) and np.all(p.sites["sigma"] > 0)
    for site in p.form.curve_sites:
        if site in p.sites:
            assert not np.any(np.isnan(p.sites[site])), site


@pytest.mark.parametrize("case", list(CASES))
def test_model_mean_is_the_curve(case):
    p = prior(case)
    n = p.data.n_points
    assert np.allclose(p.loc, p.curve[:, :n], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_curve_vmaps_over_draws_and_extrapolates(case):
    p = prior(case)
    assert p.curve.shape == (200, p.data.n_points + len(p.far_u))
    assert np.all(np.isfinite(p.curve))


def test_chinchilla_prior_keeps_e_below_the_data_and_exponents_positive():
    p = prior("chinchilla")
    d = p.sites
    assert np.all(np.exp(d["log_e"]) < p.data.y.min())
    assert np.all(d["alpha"] > 0) and np.all(d["beta"] > 0)
    # A and B are the terms at the centre: log(E + A + B) is the sampled centre value.
    total = np.logaddexp(np.logaddexp(d["log_e"], d["log_a"]), d["log_b"])
    assert np.allclose(total, d["m_centre"], atol=1e-4)
    raw = d["log_a"] + d["alpha"] * p.context.center[0]
    assert np.allclose(d["log_a_raw"], raw, rtol=1e-5)
    # Exponents: LogNormal around 0.3.
    assert 0.2 < np.median(d["alpha"]) < 0.45


def test_dc_prior_keeps_e_below_the_data_and_records_the_centres():
    p = prior("data_constrained")
    d = p.sites
    assert np.all(np.exp(d["log_e"]) < p.data.y.min())
    assert np.all(d["alpha"] > 0) and np.all(d["beta"] > 0)
    assert np.allclose(d["center"], np.asarray(p.data.scaling.center)[None, :])
    assert np.allclose(d["log_tokens_per_param"], np.log(p.spec.priors.tokens_per_param))
    assert 10.0 < np.median(np.exp(d["log_r_d_star"])) < 22.0
    assert 3.0 < np.median(np.exp(d["log_r_n_star"])) < 7.5


def test_m4_prior_orders_the_limits_around_the_data():
    p = prior("m4")
    d = p.sites
    eps_inf, eps_0 = np.exp(d["log_eps_inf"]), np.exp(d["log_eps_0"])
    assert np.all(eps_inf < p.data.y.min())
    assert np.all(eps_0 > p.data.y.max())
    assert np.all(eps_inf < eps_0)
    assert np.all(d["c"] > 0) and np.all(d["alpha"] >= 0)
    # Every prior curve stays between its limits, at the data and past it.
    assert np.all(p.curve <= d["log_eps_0"][:, None] + 1e-5)
    assert np.all(p.curve >= d["log_eps_inf"][:, None] - 1e-5)


@pytest.mark.parametrize("case", ["unsl_1", "unsl_2"])
def test_unsl_prior_has_ordered_breaks_within_each_inputs_range(case):
    p = prior(case)
    d = p.sites
    m, n = len(p.data.x_names), p.spec.breaks
    assert np.all(np.exp(d["log_a"]) < p.data.y.min())
    delta = d["delta"]
    assert delta.shape == (200, m, n)
    assert np.all(np.diff(delta, axis=-1) > 0)
    hr = np.asarray(p.context.half_range)
    upper = np.asarray(p.context.break_upper_z) * hr
    assert np.all(delta > -hr[None, :, None]) and np.all(delta < upper[None, :, None])
    assert np.all(d["f"] > 0)
    if m > 1:
        assert np.allclose(d["share"].sum(axis=-1), 1.0, atol=1e-5)
        if p.spec.priors.joint_component:
            assert d["c0_joint"].shape == (200, m)
        else:
            assert "c0_joint" not in d
    else:
        assert "share" not in d and "c0_joint" not in d


def test_unsl_with_one_input_is_the_bnsl():
    p = prior("unsl_1")
    data, u_spec, u_ctx = p.data, p.spec, p.context
    # The same likelihood as the UNSL spec (the forms' defaults differ).
    b_spec = ModelSpec(breaks=u_spec.breaks, likelihood=u_spec.likelihood)
    b_ctx = bnsl_context(data, b_spec)
    z, log_y = jnp.asarray(data.z), jnp.asarray(data.log_y)
    u = z * b_ctx.half_range
    sampled = ("limit_fraction", "m_centre", "c0_y", "break_gaps", "c_y", "log_f_excess")
    u_values = {k: jnp.asarray(p.sites[k][:5]) for k in (*sampled, "log_sigma")}
    # The BNSL has the same sites without the input axis.
    b_values = {k: v if v.ndim == 1 else v[:, 0] for k, v in u_values.items()}
    u_params = {k: jnp.asarray(p.sites[k][:5]) for k in ("log_a", "beta", "c0", "c", "delta", "f")}
    b_params = {k: v if v.ndim == 1 else v[:, 0] for k, v in u_params.items()}

    def both(u_val, b_val, u_par, b_par):
        lp_u, _ = log_density(unsl_model, (z, u_ctx, log_y), {"spec": u_spec}, u_val)
        lp_b, _ = log_density(bnsl_model, (z, b_ctx, log_y), {"spec": b_spec}, b_val)
        return lp_u, lp_b, unsl_curve(u_par, u), bnsl_curve(b_par, u)

    lp_u, lp_b, curve_u, curve_b = jax.jit(jax.vmap(both))(u_values, b_values, u_params, b_params)
    # The curves agree for matching parameters, and the models have the same density.
    assert np.allclose(curve_u, curve_b, rtol=1e-6, atol=1e-6)
    assert np.allclose(lp_u, lp_b, rtol=1e-5)


def test_unsl_without_the_joint_component_is_cf():
    u = jnp.asarray(np.random.default_rng(0).normal(size=(7, 2)))
    cf = {"log_e": 0.5, "log_a": 0.2, "log_b": -0.3, "alpha": 0.34, "beta": 0.28}
    params = {
        "log_a": cf["log_e"],
        "beta": jnp.array([cf["log_a"], cf["log_b"]]),
        "c0": jnp.array([cf["alpha"], cf["beta"]]),
        "c": jnp.zeros((2, 0)),
        "delta": jnp.zeros((2, 0)),
        "f": jnp.zeros((2, 0)),
    }
    # Left out (joint_component=False), or present with a vanishing share.
    vanishing = {**params, "beta_joint": -jnp.inf, "c0_joint": jnp.array([0.3, 0.1])}

    def curves(p, q, c):
        return unsl_curve(p, u), unsl_curve(q, u), chinchilla(c, u[:, 0], u[:, 1])

    left_out, vanished, cf_mu = jax.jit(curves)(params, vanishing, cf)
    assert np.allclose(left_out, cf_mu, rtol=1e-6)
    assert np.allclose(vanished, cf_mu, rtol=1e-6)


def free_parameters(form, spec, data) -> dict[str, int]:
    """Unconstrained size of each latent sample site, found by tracing without compiling."""
    fns = {}

    def run(key):
        model = handlers.seed(form.model, key)
        args = (jnp.asarray(data.z), form.context(data, spec), jnp.asarray(data.log_y))
        tr = handlers.trace(model).get_trace(*args, spec=spec)
        fns.update(
            {k: s["fn"] for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}
        )
        return 0

    jax.eval_shape(run, jax.random.PRNGKey(0))
    return {
        k: int(np.prod(biject_to(fn.support).inverse_shape(fn.batch_shape + fn.event_shape)))
        for k, fn in fns.items()
    }


@pytest.mark.parametrize("case", list(CASES))
def test_parameter_counts_match_the_models(case):
    name, breaks, data = CASES[case]
    spec, form, dataset = ModelSpec.build(name, breaks), form_model(name), data()
    free = free_parameters(form, spec, dataset)
    expected = (
        unsl_param_count(len(dataset.x_names), breaks, spec.priors.joint_component)
        if name == "unsl"
        else spec.n_params
    )
    assert sum(free.values()) == expected
    assert set(free) <= set(form.sampled_sites)


def test_unsl_can_leave_the_joint_component_out():
    spec = ModelSpec.build("unsl", 1, priors={"joint_component": False})
    data = validate(cf_table(), ["N", "D"], "loss")
    free = free_parameters(form_model("unsl"), spec, data)
    assert not {"c0_joint_y"} & set(free)
    # Limit, scale, noise, one share, two slopes and three per break of each input.
    assert sum(free.values()) == unsl_param_count(2, 1, joint_component=False) == 12
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="joint_component"):
        UNSLPriors(joint_component=1)


def test_unsl_refuses_the_bnsl_only_spacing_floor():
    with pytest.raises(ValueError, match="sharpness_floor_spacing applies to form 'bnsl' only"):
        UNSLPriors(sharpness_floor_spacing=0.5)


@pytest.mark.parametrize("name", ["chinchilla", "data_constrained", "m4"])
def test_forms_without_breaks_refuse_breaks(name):
    with pytest.raises(ValueError, match=f"form '{name}' has no breaks; use breaks=0"):
        ModelSpec.build(name, breaks=1)
    assert ModelSpec.build(name, breaks=0).n_params >= 6


def test_fit_refuses_breaks_for_cf_before_sampling():
    with pytest.raises(ValueError, match="has no breaks"):
        bu.fit(cf_table(), ["N", "D"], "loss", form="chinchilla", breaks=1)


@pytest.mark.parametrize(
    ("name", "columns", "message"),
    [
        ("chinchilla", ["N"], "form 'chinchilla' takes 2 input columns .*got 1"),
        ("chinchilla", ["N", "D", "U"], "form 'chinchilla' takes 2 input columns .*got 3"),
        ("data_constrained", ["N", "D"], "form 'data_constrained' takes 3 input columns .*got 2"),
        ("m4", ["N", "D"], "form 'm4' takes one input column, got 2"),
    ],
)
def test_wrong_number_of_inputs_is_refused(name, columns, message):
    data = validate(dc_table(), columns, "loss")
    with pytest.raises(ValueError, match=message):
        form_model(name).context(data, ModelSpec.build(name, 0))


def test_unsl_refuses_too_few_points_for_its_inputs():
    data = validate(cf_table().iloc[:10], ["N", "D"], "loss")
    # Two inputs with one break and no joint component: 12 parameters.
    with pytest.raises(ValueError, match="form 'unsl' over 2 input.*12 free parameters"):
        unsl_context(data, ModelSpec.build("unsl", 1))


@pytest.mark.parametrize("priors_type", [ChinchillaPriors, DCPriors, M4Priors, UNSLPriors])
def test_priors_validate_and_round_trip(priors_type):
    priors = priors_type()
    assert (
        priors_type(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in priors.to_dict().items()}
        )
        == priors
    )
    with pytest.raises(ValueError, match="noise_median"):
        priors_type(noise_median=-1.0)
    with pytest.raises(ValueError, match="limit_fraction"):
        priors_type(limit_fraction=(1.0,))
    name = {
        ChinchillaPriors: "chinchilla",
        DCPriors: "data_constrained",
        M4Priors: "m4",
        UNSLPriors: "unsl",
    }[priors_type]
    spec = ModelSpec.build(name, 0, "student_t", {"noise_median": 0.05})
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(TypeError, match="takes priors of type"):
        ModelSpec(form=name, breaks=0, priors=bu.BNSLPriors())


@pytest.mark.slow
def test_end_to_end_cf_fit_recovers_the_exponents():
    train = cf_table(seed=1)
    result = bu.fit(
        train,
        ["N", "D"],
        "loss",
        form="chinchilla",
        breaks=0,
        chains=2,
        warmup=200,
        draws=200,
        map_starts=8,
        warn=False,
    )
    table = result.predict({"N": [1e11, 3e10], "D": [1e13, 2e12]}, levels=(0.9,))
    assert np.all(np.isfinite(table[["median", "lower_90", "upper_90"]].to_numpy()))
    assert np.all(table["lower_90"] < table["median"])
    assert np.all(table["median"] < table["upper_90"])
    post = result.idata.posterior
    assert abs(float(post["alpha"].median()) - TRUTH["alpha"]) < 0.08
    assert abs(float(post["beta"].median()) - TRUTH["beta"]) < 0.08


def test_each_form_has_its_default_likelihood_and_a_stored_one_is_kept():
    assert ModelSpec.build("bnsl", 1).likelihood == "student_t"
    assert ModelSpec().likelihood == "student_t"
    for name in ("unsl", "chinchilla", "data_constrained", "m4"):
        assert ModelSpec.build(name, 0).likelihood == "normal"
    explicit = ModelSpec.build("bnsl", 1, "normal")
    assert explicit.likelihood == "normal"
    # A result saved with the normal likelihood is rebuilt with it, not today's default.
    assert ModelSpec.from_dict(explicit.to_dict()) == explicit


def test_share_slopes_make_each_terms_slope_the_one_seen_in_log_y():
    log_limit_share = jnp.log(0.3)  # a / y at the centre
    share = jnp.array([0.6, 0.3, 0.1])
    # With coupling 1, each term's factor undoes its part of y, (1 - a / y) * share_r.
    scale = term_slope_scale(log_limit_share, share, 1.0, share_slopes=True)
    assert np.allclose(scale * 0.7 * share, 1.0)
    # Below 1, the coupling bounds the factor as the share vanishes.
    tiny = term_slope_scale(log_limit_share, jnp.array([1e-12, 1.0 - 1e-12]), 0.99, True)
    assert np.isfinite(tiny).all() and float(tiny[0]) <= 100.0 * (1 + 1e-5)
    # Without share_slopes, and with one term, every term has the limit's factor alone.
    limit_only = centre_slope_scale(log_limit_share, 0.99)
    assert np.allclose(term_slope_scale(log_limit_share, share, 0.99, False), limit_only)
    assert np.allclose(term_slope_scale(log_limit_share, jnp.ones(1), 0.99, True), limit_only)
    # Gradients stay finite where a share rounds to 1.
    grad = jax.grad(lambda s: term_slope_scale(log_limit_share, s, 0.99, True).sum())
    assert np.isfinite(grad(jnp.array([1.0, 0.0]))).all()


def test_share_slopes_sample_the_slopes_of_log_y_at_the_centre():
    spec = ModelSpec.build("unsl", 0, priors={"share_slopes": True, "slope_coupling": 1.0})
    form, data = form_model("unsl"), validate(cf_table(), ["N", "D"], "loss")
    context = form.context(data, spec)
    hr = jnp.asarray(context.half_range)

    def one(key):
        tr = handlers.trace(handlers.seed(form.model, key)).get_trace(
            jnp.asarray(data.z), context, spec=spec
        )
        params = {k: tr[k]["value"] for k in form.curve_sites if k in tr}
        slope = jax.grad(lambda z: form.curve(params, (z * hr)[None])[0])(jnp.zeros(2))
        return slope, tr["c0_y"]["value"]

    slope, sampled = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(1), 50))
    # With coupling 1, each sampled slope is minus the slope of log y along its input.
    assert np.allclose(slope, -sampled, rtol=1e-4, atol=1e-5)


def test_unsl_warns_where_an_input_has_too_few_values_for_its_breaks():
    grid = validate(cf_table(), ["N", "D"], "loss")  # 5 values of each input
    with pytest.warns(bu.FewValuesWarning) as caught:
        unsl_context(grid, ModelSpec.build("unsl", 1))
    assert [str(w.message)[:28] for w in caught] == [
        "input 'N' takes 5 distinct v",
        "input 'D' takes 5 distinct v",
    ]
    many = cf_table().assign(N=np.geomspace(1e7, 1e10, 25))  # 25 values of N, 5 of D
    with pytest.warns(bu.FewValuesWarning) as caught:
        unsl_context(validate(many, ["N", "D"], "loss"), ModelSpec.build("unsl", 1))
    assert ["'D'" in str(w.message) for w in caught] == [True]
    with warnings.catch_warnings():
        warnings.simplefilter("error", bu.FewValuesWarning)
        unsl_context(grid, ModelSpec.build("unsl", 0))  # no breaks: nothing to place
        # An input without a component has no breaks either.
        unsl_context(
            grid,
            ModelSpec.build("unsl", 1, priors={"no_bottleneck": [0, 1], "joint_component": True}),
        )
