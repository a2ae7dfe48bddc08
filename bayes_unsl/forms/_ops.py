"""Small numerically stable building blocks shared by the forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def break_sum(proj: ArrayLike, delta: ArrayLike, f: ArrayLike, c: ArrayLike) -> jax.Array:
    """Sum over breaks of ``c_i f_i softplus((proj_i - delta_i) / f_i)``.

    ``proj`` has a trailing axis of length n (one projected log input per break); the
    other arguments have shape (n,). Each term is a smooth hinge: zero well before the
    break, ``c_i (proj_i - delta_i)`` well after it, so the log-log slope changes by
    ``c_i`` over a width of about ``f_i`` log units. With n = 0 the sum is 0.
    """
    proj = jnp.asarray(proj)
    f = jnp.asarray(f)
    terms = jnp.asarray(c) * f * jax.nn.softplus((proj - jnp.asarray(delta)) / f)
    return jnp.sum(terms, axis=-1)


def logsumexp_terms(*terms: ArrayLike) -> jax.Array:
    """``log(sum_k exp(t_k))`` of broadcastable log terms; ``-inf`` terms drop out."""
    stacked = jnp.stack(jnp.broadcast_arrays(*terms), axis=0)
    return jax.nn.logsumexp(stacked, axis=0)


def log1mexp(x: ArrayLike) -> jax.Array:
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and for very negative ``x``."""
    x = jnp.asarray(x)
    near_zero = x > -jnp.log(2.0)
    # Each branch is evaluated at an input safe for it, so gradients stay finite.
    x_near = jnp.where(near_zero, x, -1.0)
    x_far = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(x_near)), jnp.log1p(-jnp.exp(x_far)))
