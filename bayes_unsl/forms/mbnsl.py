"""Multivariate BNSL (MBNSL) over a subset of k inputs, in log space.

This project's formulation of the K layer of UNSL (arXiv 2605.26248, whose exact
equations are not reproduced here): a chain of hyperplanes in multi-log space joined
smoothly across "hyperbreaks",

    log M(u) = beta - u . c0 - sum_i c_i f_i softplus((w_i . u - delta_i) / f_i).

Hyperbreak i is the surface ``w_i . u = delta_i``; across it the log-space gradient
changes by ``c_i w_i``. With k = 1 (so ``w_i = 1``) this is exactly
:func:`bayes_unsl.forms.bnsl.bnsl_log_m`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from bayes_unsl.forms._ops import break_sum

Params = dict[str, ArrayLike]


def mbnsl_log(params: Params, u: ArrayLike) -> jax.Array:
    """Log M of an MBNSL at log inputs ``u`` of shape (..., k); returns shape (...).

    params: ``beta`` (scalar), ``c0`` (k,) initial slopes, and for n hyperbreaks ``w``
    (n, k) non-negative directions whose rows sum to 1, ``delta`` (n,) locations along
    ``w_i`` in log units, ``f`` (n,) sharpness > 0, ``c`` (n,) slope changes. The
    constraints on ``w`` and ``f`` are not checked here: the model's priors carry them.
    """
    u = jnp.asarray(u)
    proj = u @ jnp.asarray(params["w"]).T
    breaks = break_sum(proj, params["delta"], params["f"], params["c"])
    return params["beta"] - u @ jnp.asarray(params["c0"]) - breaks
