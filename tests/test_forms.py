"""Tests of the functional forms: exact special cases, stability, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayes_unsl.forms import (
    DEFAULT_LOG_TOKENS_PER_PARAM,
    UNSLStructure,
    bnsl,
    bnsl_log_m,
    ceiling_log,
    chinchilla,
    data_constrained,
    effective_counts,
    m4,
    mbnsl_log,
    unsl,
)

jax.config.update("jax_enable_x64", True)

FAST = settings(max_examples=30, deadline=None)
LOG_X_WIDE = np.linspace(0.0, 25 * math.log(10.0), 41)  # x from 1 to 1e25
N_POINTS = 6  # fixed input sizes keep the number of compilations small

# Jitted once per shape, so that hypothesis examples do not dispatch op by op.
bnsl_jit = jax.jit(bnsl)
bnsl_log_m_jit = jax.jit(bnsl_log_m)
mbnsl_jit = jax.jit(mbnsl_log)
unsl_jit = jax.jit(unsl, static_argnums=2)
chinchilla_jit = jax.jit(chinchilla)
dc_jit = jax.jit(data_constrained)
effective_counts_jit = jax.jit(effective_counts)
m4_jit = jax.jit(m4)
m4_grad_jit = jax.jit(jax.grad(m4))
mbnsl_grad_u_jit = jax.jit(jax.grad(mbnsl_log, argnums=1))

CF_FIXED = {"log_e": 0.5, "log_a": 6.0, "alpha": 0.34, "log_b": 6.0, "beta": 0.28}
M4_FIXED = {"log_eps_inf": -2.0, "log_eps_0": 0.0, "log_beta": 1.0, "c": 0.4, "alpha": 0.7}
BNSL_FIXED = {
    "log_a": -1.0,
    "beta": 0.5,
    "c0": 0.3,
    "c": np.array([0.4, -0.2]),
    "delta": np.array([1.0, 5.0]),
    "f": np.array([0.3, 1.0]),
}


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def vec(draw, n, lo, hi):
    return np.array(draw(st.lists(floats(lo, hi), min_size=n, max_size=n)), dtype=np.float64)


def as_jnp(tree):
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype=jnp.float64), tree)


def assert_finite_tree(tree):
    for leaf in jax.tree_util.tree_leaves(tree):
        assert np.all(np.isfinite(np.asarray(leaf))), tree


# ---------------------------------------------------------------- strategies


@st.composite
def bnsl_params(draw, n=None, f_lo=0.05):
    """BNSL params with breaks inside 1..1e12 and a reference scale s."""
    n = draw(st.integers(0, 3)) if n is None else n
    log_s = draw(floats(0.0, 6.0)) * math.log(10.0)
    log_a = draw(st.one_of(st.just(-np.inf), floats(-5.0, 2.0)))
    params = {
        "log_a": log_a,
        "beta": draw(floats(-3.0, 3.0)),
        "c0": draw(floats(-1.0, 2.0)),
        "c": vec(draw, n, -2.0, 3.0),
        "delta": vec(draw, n, 0.0, 12.0) * math.log(10.0) - log_s,
        "f": vec(draw, n, f_lo, 3.0),
    }
    return params, log_s


@st.composite
def mbnsl_params(draw, k, n=None, f_lo=0.05):
    n = draw(st.integers(0, 3)) if n is None else n
    w = vec(draw, n * k, 0.01, 1.0).reshape(n, k)
    return {
        "beta": draw(floats(-3.0, 3.0)),
        "c0": vec(draw, k, -1.0, 2.0),
        "w": w / w.sum(axis=1, keepdims=True),
        "delta": vec(draw, n, -10.0, 30.0),
        "f": vec(draw, n, f_lo, 3.0),
        "c": vec(draw, n, -2.0, 3.0),
    }


@st.composite
def opposition_params(draw, k, n=None, f_lo=0.05):
    n = draw(st.integers(0, 2)) if n is None else n
    w = vec(draw, n * k, 0.01, 1.0).reshape(n, k)
    return {
        "gamma": draw(floats(-30.0, 0.0)),
        "e": vec(draw, k, 0.0, 1.5),
        "w": w / w.sum(axis=1, keepdims=True),
        "delta": vec(draw, n, 0.0, 40.0),
        "f": vec(draw, n, f_lo, 3.0),
        "c": vec(draw, n, -1.0, 1.0),
    }


UNSL3 = UNSLStructure(
    n_inputs=3,
    components=((0, 1, 2), (1,)),
    opposition=((0, 2),),
    ceiling=True,
)


@st.composite
def unsl_params(draw, structure=UNSL3, f_lo=0.05):
    """UNSL params with two hyperbreaks per component and one per force.

    Break counts are fixed so that jitted tests compile once; other counts are covered by
    the MBNSL tests.
    """
    params = {
        "log_a": draw(st.one_of(st.just(-np.inf), floats(-5.0, 1.0))),
        "components": [draw(mbnsl_params(len(s), n=2, f_lo=f_lo)) for s in structure.components],
        "opposition": [
            draw(opposition_params(len(s), n=1, f_lo=f_lo)) for s in structure.opposition
        ],
    }
    if structure.ceiling:
        params["log_y_max"] = draw(floats(-1.0, 3.0))
        params["log_p"] = draw(floats(-2.0, 3.0))
    return params


@st.composite
def cf_params(draw):
    return {
        "log_e": draw(floats(-2.0, 1.5)),
        "log_a": draw(floats(0.0, 10.0)),
        "alpha": draw(floats(0.05, 1.0)),
        "log_b": draw(floats(0.0, 10.0)),
        "beta": draw(floats(0.05, 1.0)),
    }


@st.composite
def dc_params(draw):
    params = draw(cf_params())
    params["log_r_d_star"] = draw(floats(-1.0, 5.0))
    params["log_r_n_star"] = draw(floats(-1.0, 5.0))
    params["log_tokens_per_param"] = draw(floats(0.0, 5.0))
    return params


@st.composite
def m4_params(draw, alpha=None):
    log_eps_inf = draw(st.one_of(st.just(-np.inf), floats(-6.0, 0.0)))
    gap = draw(floats(0.05, 4.0))
    base = log_eps_inf if np.isfinite(log_eps_inf) else draw(floats(-6.0, 0.0))
    return {
        "log_eps_inf": log_eps_inf,
        "log_eps_0": base + gap,
        "log_beta": draw(floats(-5.0, 5.0)),
        "c": draw(floats(0.0, 2.0)),
        # XLA flushes subnormal numbers to zero, so alpha is 0 or a normal float.
        "alpha": draw(st.one_of(st.just(0.0), floats(1e-12, 5.0))) if alpha is None else alpha,
    }


# ---------------------------------------------------------------- BNSL


def bnsl_direct(params, log_s, x):
    """The published BNSL, with raw powers, in numpy."""
    s = math.exp(log_s)
    a = math.exp(params["log_a"])
    b = math.exp(params["beta"]) * s ** params["c0"]
    y = b * x ** -params["c0"]
    for c, delta, f in zip(params["c"], params["delta"], params["f"], strict=True):
        d = s * math.exp(delta)
        y = y * (1.0 + (x / d) ** (1.0 / f)) ** (-c * f)
    return a + y


@FAST
@given(case=bnsl_params(), exps=st.lists(floats(0.0, 12.0), min_size=N_POINTS, max_size=N_POINTS))
def test_bnsl_equals_direct_formula(case, exps):
    params, log_s = case
    x = 10.0 ** np.array(exps)
    expected = np.log(bnsl_direct(params, log_s, x))
    assert np.all(np.isfinite(expected))
    got = bnsl_jit(as_jnp(params), jnp.log(x) - log_s)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@FAST
@given(
    case=bnsl_params(n=0), exps=st.lists(floats(0.0, 12.0), min_size=N_POINTS, max_size=N_POINTS)
)
def test_bnsl_without_breaks_is_power_law_with_offset(case, exps):
    params, _ = case
    u = np.array(exps)
    expected = np.logaddexp(params["log_a"], params["beta"] - params["c0"] * u)
    np.testing.assert_allclose(bnsl_jit(as_jnp(params), u), expected, rtol=1e-13, atol=1e-13)


def test_bnsl_keeps_input_shape():
    params = as_jnp(BNSL_FIXED)
    assert jax.eval_shape(bnsl, params, jnp.zeros((4, 3, 2))).shape == (4, 3, 2)
    assert jax.eval_shape(bnsl, params, 0.0).shape == ()


# ---------------------------------------------------------------- MBNSL


@FAST
@given(case=bnsl_params(), us=st.lists(floats(-20.0, 40.0), min_size=N_POINTS, max_size=N_POINTS))
def test_mbnsl_one_input_equals_bnsl_log_m(case, us):
    params, _ = case
    n = len(params["c"])
    mparams = {
        "beta": params["beta"],
        "c0": np.array([params["c0"]]),
        "w": np.ones((n, 1)),
        "delta": params["delta"],
        "f": params["f"],
        "c": params["c"],
    }
    u = np.array(us)
    np.testing.assert_allclose(
        mbnsl_jit(as_jnp(mparams), u[:, None]),
        bnsl_log_m_jit(as_jnp(params), u),
        rtol=1e-13,
        atol=1e-12,
    )


@FAST
@given(params=mbnsl_params(k=3, n=2))
def test_mbnsl_gradient_changes_by_c_w_across_hyperbreaks(params):
    """Far before every hyperbreak the log-gradient is -c0; far past all, -(c0 + sum c_i w_i)."""
    params = as_jnp({**params, "f": np.full(2, 0.05), "delta": np.array([0.0, 1.0])})
    before = mbnsl_grad_u_jit(params, jnp.full(3, -100.0))
    after = mbnsl_grad_u_jit(params, jnp.full(3, 100.0))
    np.testing.assert_allclose(before, -params["c0"], atol=1e-9)
    expected = -(params["c0"] + params["c"] @ params["w"])
    np.testing.assert_allclose(after, expected, atol=1e-9)


# ---------------------------------------------------------------- UNSL


def cf_as_unsl(params):
    def single(log_scale, slope):
        empty = np.zeros((0,))
        return {
            "beta": log_scale,
            "c0": np.array([slope]),
            "w": np.zeros((0, 1)),
            "delta": empty,
            "f": empty,
            "c": empty,
        }

    return {
        "log_a": params["log_e"],
        "components": [
            single(params["log_a"], params["alpha"]),
            single(params["log_b"], params["beta"]),
        ],
    }


@FAST
@given(
    params=cf_params(),
    log_n=st.lists(floats(10.0, 60.0), min_size=N_POINTS, max_size=N_POINTS),
    log_d=floats(10.0, 60.0),
)
def test_chinchilla_equals_unsl_special_case(params, log_n, log_d):
    structure = UNSLStructure(n_inputs=2, components=((0,), (1,)))
    log_n = np.array(log_n)
    u = np.stack([log_n, np.full_like(log_n, log_d)], axis=-1)
    got = unsl_jit(as_jnp(cf_as_unsl(params)), u, structure)
    expected = chinchilla_jit(as_jnp(params), log_n, log_d)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    direct = np.log(
        np.exp(params["log_e"])
        + np.exp(params["log_a"]) / np.exp(log_n) ** params["alpha"]
        + np.exp(params["log_b"]) / np.exp(log_d) ** params["beta"]
    )
    np.testing.assert_allclose(expected, direct, rtol=1e-12, atol=1e-12)


@FAST
@given(params=unsl_params(), u=st.lists(floats(-20.0, 60.0), min_size=3, max_size=3))
def test_unsl_ceiling_never_exceeds_y_max(params, u):
    params = as_jnp(params)
    u = jnp.asarray(u)
    for scale in (1.0, 1e3):  # also push y_Q far above the ceiling
        lifted = {**params, "log_a": params["log_a"] + jnp.log(scale)}
        log_y = unsl_jit(lifted, u, UNSL3)
        assert float(log_y) <= float(params["log_y_max"])


@FAST
@given(params=unsl_params(), u=st.lists(floats(-20.0, 60.0), min_size=3, max_size=3))
def test_unsl_is_sum_of_terms_and_ceiling_is_smooth_min(params, u):
    """y_Q = a + sum M_r + sum O_k, and the ceiling is (y_Q^-p + y_max^-p)^(-1/p)."""
    u = np.array(u)

    def log_term(p, us, lead, slopes):
        hinge = p["c"] * p["f"] * np.logaddexp(0.0, (p["w"] @ us - p["delta"]) / p["f"])
        return lead + us @ slopes - hinge.sum()

    terms = [params["log_a"]]
    for p, s in zip(params["components"], UNSL3.components, strict=True):
        terms.append(log_term(p, u[list(s)], p["beta"], -p["c0"]))
    for p, s in zip(params["opposition"], UNSL3.opposition, strict=True):
        terms.append(log_term(p, u[list(s)], p["gamma"], p["e"]))
    log_yq = np.logaddexp.reduce(terms)
    p = math.exp(params["log_p"])
    expected = -np.logaddexp(-p * log_yq, -p * params["log_y_max"]) / p
    got = unsl_jit(as_jnp(params), u, UNSL3)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=3, deadline=None)
@given(params=unsl_params())
def test_unsl_batches_over_leading_axes(params):
    u = np.stack([np.linspace(-5.0, 50.0, 7)] * 3, axis=-1) + np.array([0.0, 3.0, -2.0])
    batched = unsl_jit(as_jnp(params), u, UNSL3)
    assert batched.shape == (7,)
    rows = [unsl_jit(as_jnp(params), row, UNSL3) for row in u]
    np.testing.assert_allclose(batched, rows, rtol=1e-12)
    assert unsl_jit(as_jnp(params), u.reshape(7, 1, 3), UNSL3).shape == (7, 1)


def test_ceiling_gradient_is_continuous_at_y_max():
    """At y_Q = y_max the smooth minimum splits the gradient evenly, as its formula does."""
    grad = jax.grad(ceiling_log, argnums=(0, 1))
    for log_y in (1.0 - 1e-9, 1.0, 1.0 + 1e-9):
        np.testing.assert_allclose(grad(log_y, 1.0, 0.3), (0.5, 0.5), atol=1e-8)


def test_unsl_structure_validation():
    with pytest.raises(ValueError):
        UNSLStructure(n_inputs=2, components=((0, 2),))
    with pytest.raises(ValueError):
        UNSLStructure(n_inputs=2, components=((),))
    with pytest.raises(ValueError):
        UNSLStructure(n_inputs=2, components=())
    structure = UNSLStructure(n_inputs=2, components=((0,), (1,)))
    params = as_jnp(cf_as_unsl(CF_FIXED))
    with pytest.raises(ValueError):
        unsl({**params, "components": params["components"][:1]}, jnp.zeros(2), structure)
    with pytest.raises(ValueError):
        unsl(params, jnp.zeros(3), structure)
    assert hash(structure) == hash(UNSLStructure(2, ((0,), (1,))))


# ---------------------------------------------------------------- DC


@FAST
@given(
    params=dc_params(),
    log_d=floats(15.0, 60.0),
    extra_unique=floats(0.0, 5.0),
    n_shortfall=floats(0.0, 10.0),
)
def test_dc_equals_cf_without_repetition(params, log_d, extra_unique, n_shortfall):
    log_unique_d = log_d + extra_unique  # D <= U_D: every token seen once at most
    log_n = log_d - params["log_tokens_per_param"] - n_shortfall  # N <= U_D / tokens_per_param
    got = dc_jit(as_jnp(params), log_n, log_d, log_unique_d)
    expected = chinchilla_jit(as_jnp(params), log_n, log_d)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-14)


@FAST
@given(
    params=dc_params(),
    log_n=floats(10.0, 60.0),
    log_d=floats(10.0, 60.0),
    log_unique_d=floats(5.0, 60.0),
)
def test_dc_effective_counts(params, log_n, log_d, log_unique_d):
    """N' <= N, D' <= D, D' >= min(D, U_D); the direct formula agrees; DC >= CF."""
    jparams = as_jnp(params)
    log_n_eff, log_d_eff = effective_counts_jit(jparams, log_n, log_d, log_unique_d)
    assert float(log_n_eff) <= log_n + 1e-12
    assert float(log_d_eff) <= log_d + 1e-12
    log_ud = min(log_unique_d, log_d)
    assert float(log_d_eff) >= log_ud - 1e-12
    r_d = math.exp(log_d - log_ud) - 1.0
    r_star = math.exp(params["log_r_d_star"])
    d_eff = math.exp(log_ud) * (1.0 + r_star * (1.0 - math.exp(-r_d / r_star)))
    np.testing.assert_allclose(float(log_d_eff), math.log(d_eff), rtol=1e-12)
    dc = dc_jit(jparams, log_n, log_d, log_unique_d)
    assert float(dc) >= float(chinchilla_jit(jparams, log_n, log_d)) - 1e-12


def test_dc_gradient_is_continuous_across_the_caps():
    """The caps U_D <= D and U_N <= N are kinks of min(), but D' and N' are smooth there."""
    params = as_jnp({**CF_FIXED, "log_r_d_star": 2.7, "log_r_n_star": 1.7})
    params["log_tokens_per_param"] = jnp.asarray(DEFAULT_LOG_TOKENS_PER_PARAM)
    grad = jax.jit(jax.grad(data_constrained, argnums=(0, 1, 2, 3)))
    log_d = 25.0
    log_n = log_d - DEFAULT_LOG_TOKENS_PER_PARAM  # N = U_N as well as D = U_D
    at_cap = grad(params, log_n, log_d, log_d)
    for shift in (-1e-7, 1e-7):
        near = grad(params, log_n + shift, log_d + shift, log_d)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), at_cap, near
        )


def test_dc_large_decay_constant_recovers_cf():
    """With R_D* and R_N* huge, repeated tokens are worth as much as fresh ones."""
    params = as_jnp({**CF_FIXED, "log_r_d_star": 60.0, "log_r_n_star": 60.0})
    params["log_tokens_per_param"] = jnp.asarray(DEFAULT_LOG_TOKENS_PER_PARAM)
    log_n, log_d, log_unique_d = math.log(7e9), math.log(4e11), math.log(1e10)
    np.testing.assert_allclose(
        dc_jit(params, log_n, log_d, log_unique_d),
        chinchilla_jit(params, log_n, log_d),
        rtol=1e-9,
    )


# ---------------------------------------------------------------- M4


@FAST
@given(
    params=m4_params(alpha=0.0),
    log_x=st.lists(floats(0.0, 60.0), min_size=N_POINTS, max_size=N_POINTS),
)
def test_m4_alpha_zero_is_power_law_with_offset(params, log_x):
    log_x = np.array(log_x)
    expected = np.logaddexp(params["log_eps_inf"], params["log_beta"] - params["c"] * log_x)
    np.testing.assert_allclose(m4_jit(as_jnp(params), log_x), expected, rtol=1e-14, atol=1e-14)


@FAST
@given(params=m4_params(), log_x=st.lists(floats(0.0, 30.0), min_size=N_POINTS, max_size=N_POINTS))
def test_m4_solves_implicit_equation(params, log_x):
    log_x = np.array(log_x)
    y = np.exp(np.asarray(m4_jit(as_jnp(params), log_x)))
    eps_inf, eps_0 = np.exp(params["log_eps_inf"]), np.exp(params["log_eps_0"])
    rhs = np.exp(params["log_beta"]) * np.exp(log_x) ** -params["c"]
    if params["alpha"] > 0:
        assert np.all(y <= eps_0) and np.all(y >= eps_inf)
    # Away from the limits, where y - eps_inf and eps_0 - y are not cancellation noise.
    ok = (y - eps_inf > 1e-6 * y) & (eps_0 - y > 1e-6 * eps_0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lhs = (y - eps_inf) / (eps_0 - y) ** params["alpha"]
    np.testing.assert_allclose(lhs[ok], rhs[ok], rtol=1e-8)


@FAST
@given(params=m4_params(), log_x=floats(0.0, 30.0))
def test_m4_gradient_matches_finite_differences(params, log_x):
    params = as_jnp({**params, "alpha": max(params["alpha"], 0.01)})
    names = ("log_eps_0", "log_beta", "c", "alpha")
    grads = m4_grad_jit(params, log_x)
    h = 1e-6
    for name in names:
        up = m4_jit({**params, name: params[name] + h}, log_x)
        down = m4_jit({**params, name: params[name] - h}, log_x)
        np.testing.assert_allclose(grads[name], (up - down) / (2 * h), rtol=1e-4, atol=1e-7)


def test_m4_jit_vmap():
    params = as_jnp(M4_FIXED)
    log_x = jnp.linspace(0.0, 30.0, N_POINTS)
    batched = jax.vmap(m4_jit, (None, 0))(params, log_x)
    np.testing.assert_allclose(m4_jit(params, log_x), batched, rtol=1e-13)


# ---------------------------------------------------------------- stability


def finite_checker(fn):
    """Jitted check that values and gradients w.r.t. every param and input are finite."""

    @jax.jit
    def values_and_grads(params, *inputs):
        def total(params, *inputs):
            return jnp.sum(fn(params, *inputs))

        argnums = tuple(range(1 + len(inputs)))
        return fn(params, *inputs), jax.grad(total, argnums=argnums)(params, *inputs)

    def check(params, *inputs):
        assert_finite_tree(values_and_grads(params, *inputs))

    return check


check_bnsl = finite_checker(bnsl)
check_mbnsl = finite_checker(mbnsl_log)
check_unsl = finite_checker(lambda p, u: unsl(p, u, UNSL3))
check_chinchilla = finite_checker(chinchilla)
check_dc = finite_checker(data_constrained)
check_m4 = finite_checker(m4)
WIDE = {"max_examples": 10, "deadline": None}


@settings(**WIDE)
@given(case=bnsl_params(n=3, f_lo=1e-3))
def test_bnsl_finite_on_wide_inputs(case):
    params, _ = case
    check_bnsl(as_jnp(params), jnp.asarray(LOG_X_WIDE))


@settings(**WIDE)
@given(params=mbnsl_params(k=2, n=3, f_lo=1e-3))
def test_mbnsl_finite_on_wide_inputs(params):
    u = jnp.stack([jnp.asarray(LOG_X_WIDE), jnp.asarray(LOG_X_WIDE[::-1])], axis=-1)
    check_mbnsl(as_jnp(params), u)


@settings(**WIDE)
@given(params=unsl_params(f_lo=1e-3))
def test_unsl_finite_on_wide_inputs(params):
    grid = jnp.asarray(LOG_X_WIDE)
    u = jnp.stack([grid, grid[::-1], jnp.roll(grid, 7)], axis=-1)
    check_unsl(as_jnp(params), u)


@settings(**WIDE)
@given(params=dc_params())
def test_cf_and_dc_finite_on_wide_inputs(params):
    grid = jnp.asarray(LOG_X_WIDE)
    params = as_jnp(params)
    check_chinchilla(params, grid, grid[::-1])
    # Cover D below, at and above U_D, and N below and above U_N.
    check_dc(params, grid, grid[::-1], jnp.roll(grid, 11))
    check_dc(params, grid, grid, grid)


@settings(**WIDE)
@given(params=m4_params())
def test_m4_finite_on_wide_inputs(params):
    check_m4(as_jnp(params), jnp.asarray(LOG_X_WIDE))
    check_m4(as_jnp({**params, "alpha": 0.0}), jnp.asarray(LOG_X_WIDE))
