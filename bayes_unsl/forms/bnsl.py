"""Broken Neural Scaling Law (BNSL) of a single input, in log space.

With ``u = log(x / s)`` for a reference scale ``s``,

    log M(u) = beta - c0 u - sum_i c_i f_i softplus((u - delta_i) / f_i)
    log y    = logaddexp(log_a, log M(u)),

which is exactly the BNSL of arXiv 2210.14891,
``y = a + b x^(-c0) prod_i (1 + (x / d_i)^(1 / f_i))^(-c_i f_i)``, with
``d_i = s e^(delta_i)`` and ``b = e^beta s^(c0)``. Working with ``u`` and softplus keeps
every intermediate on the log scale, so no power of a large number is ever formed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from bayes_unsl.forms._ops import break_sum

Params = dict[str, ArrayLike]


def bnsl_log_m(params: Params, u: ArrayLike) -> jax.Array:
    """Log of the reducible part M of a BNSL at log inputs ``u`` (any shape).

    params: ``beta`` (log scale at u = 0), ``c0`` (initial slope), and arrays of shape
    (n,) for the n breaks: ``c`` (slope changes), ``delta`` (break locations in u units),
    ``f`` (sharpness, > 0; small is sharp). n = 0 gives a plain power law.
    """
    u = jnp.asarray(u)
    breaks = break_sum(u[..., None], params["delta"], params["f"], params["c"])
    return params["beta"] - params["c0"] * u - breaks


def bnsl(params: Params, u: ArrayLike) -> jax.Array:
    """Log y of a BNSL at log inputs ``u`` (any shape): ``logaddexp(log_a, log M)``.

    params: as :func:`bnsl_log_m`, plus ``log_a``, the log of the irreducible limit
    ``a >= 0`` (``-inf`` for a = 0).
    """
    return jnp.logaddexp(params["log_a"], bnsl_log_m(params, u))
