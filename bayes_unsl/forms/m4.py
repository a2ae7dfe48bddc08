"""M4 of Alabdulmohsin et al. 2022 (arXiv 2209.06640), solved in log space.

M4 is the implicit law

    (y - eps_inf) / (eps_0 - y)^alpha = beta x^(-c),   eps_inf < y < eps_0,

for a metric between its limit ``eps_inf`` and its random-guess level ``eps_0``. The
paper writes the right side as ``beta x^c`` with ``c < 0``; here ``c`` is the positive
decay exponent, the paper's ``-c``. With ``alpha = 0`` it is the power law with offset
``y = eps_inf + beta x^(-c)`` (then eps_0 plays no part).

For ``alpha > 0`` we write ``y = eps_inf + b s`` with ``b = eps_0 - eps_inf`` and
``s = sigmoid(z)`` in (0, 1), which turns the law into one monotone equation in z,

    h(z) = log sigmoid(z) - alpha log sigmoid(-z) - L' = 0,
    L' = log beta - c log x - (1 - alpha) log b,

solved by a bracketed Newton iteration with a fixed number of steps. Its gradient comes
from the implicit function theorem (one Newton step on the converged z, with the solver
itself outside autodiff), so the form is pure and jit-, grad- and vmap-able.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from bayes_unsl.forms._ops import log1mexp

Params = dict[str, ArrayLike]

NEWTON_STEPS = 48
"""Fixed number of solver steps: Newton converges quadratically once near the root, and
bisection (taken whenever a Newton step would leave the bracket) halves the bracket."""

MIN_ALPHA = 1e-30
"""Positive alpha below this is raised to it; the change in y is far below float64
precision, and it keeps the solver's bracket (of width about 1 / alpha) finite."""


def _h(z: jax.Array, alpha: jax.Array, target: jax.Array) -> jax.Array:
    return -jax.nn.softplus(-z) + alpha * jax.nn.softplus(z) - target


def _dh(z: jax.Array, alpha: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(-z) + alpha * jax.nn.sigmoid(z)


@jax.jit
def _solve(alpha: jax.Array, target: jax.Array) -> jax.Array:
    """Root z of ``h`` for ``alpha > 0``, by Newton's method inside a shrinking bracket.

    h lies within ``[phi(z) - log 2, phi(z) + alpha log 2]`` of the piecewise-linear
    ``phi(z) = min(z, 0) + alpha max(z, 0)``, which gives a valid starting bracket and a
    starting point at the root of ``phi``.
    """

    def phi_inv(v: jax.Array) -> jax.Array:
        return jnp.where(v < 0, v, v / alpha)

    lo = phi_inv(target - alpha * math.log(2.0))
    hi = phi_inv(target + math.log(2.0))
    z = phi_inv(target)

    def step(_, state):
        z, lo, hi = state
        hz = _h(z, alpha, target)
        lo = jnp.where(hz < 0, z, lo)
        hi = jnp.where(hz < 0, hi, z)
        z_newton = z - hz / _dh(z, alpha)
        inside = (z_newton >= lo) & (z_newton <= hi)
        z = jnp.where(inside, z_newton, 0.5 * (lo + hi))
        return z, lo, hi

    z, _, _ = jax.lax.fori_loop(0, NEWTON_STEPS, step, (z, lo, hi))
    return z


def m4(params: Params, log_x: ArrayLike) -> jax.Array:
    """Log y of M4 at ``log_x`` (any shape).

    params: ``log_eps_inf``, ``log_eps_0`` (logs of the limits, ``eps_0 > eps_inf``;
    ``log_eps_inf = -inf`` gives eps_inf = 0), ``log_beta``, ``c`` (decay exponent) and
    ``alpha >= 0``. ``alpha = 0`` is handled exactly as the power law with offset;
    positive alpha below ``MIN_ALPHA`` is treated as ``MIN_ALPHA``.
    """
    log_x = jnp.asarray(log_x)
    alpha = jnp.asarray(params["alpha"])
    log_eps_inf = params["log_eps_inf"]
    log_power = params["log_beta"] - params["c"] * log_x
    power_law = jnp.logaddexp(log_eps_inf, log_power)

    positive = alpha > 0
    # Finite for alpha = 0 too, so the unused branch of the final where has finite gradients.
    alpha_safe = jnp.maximum(alpha, MIN_ALPHA)
    log_b = params["log_eps_0"] + log1mexp(log_eps_inf - params["log_eps_0"])
    target = log_power - (1.0 - alpha_safe) * log_b
    z_star = _solve(jax.lax.stop_gradient(alpha_safe), jax.lax.stop_gradient(target))
    # One Newton step from the converged root carries the implicit-function gradient.
    z = z_star - _h(z_star, alpha_safe, target) / jax.lax.stop_gradient(_dh(z_star, alpha_safe))
    # y = eps_inf + b s = eps_0 - b (1 - s): build y up from eps_inf when s < 1/2 and down
    # from eps_0 otherwise, which is accurate near either limit and keeps
    # eps_inf <= y <= eps_0 exact in floating point.
    from_floor = jnp.logaddexp(log_eps_inf, log_b - jax.nn.softplus(-z))
    from_top = params["log_eps_0"] + log1mexp(log_b - params["log_eps_0"] - jax.nn.softplus(z))
    implicit = jnp.where(z < 0, from_floor, from_top)
    return jnp.where(positive, implicit, power_law)
