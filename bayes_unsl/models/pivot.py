"""Break parameters from what the data fix: the curve's value and mean slope over the data.

The BNSL form is written with its slope before every break (``c0``) and its scale ``beta``
at ``z = 0`` *without* the breaks' contribution there. Sampled directly, both are far from
the data when a break lies early in the observed range: ``c0`` is then a slope before the
data, and ``beta`` an extrapolation of it, so the sampler meets long curved ridges
(measured: chains that never mix at tree depth 6). The data fix instead the curve's value at
the centre of the data, its mean slope across the observed range, and how much each break
bends the curve within that range. This module turns those quantities into the form's
parameters. The mean slope, unlike the local slope at the centre, moves smoothly as a sharp
break crosses the centre (measured: a local-slope pivot left divergences on curves whose
break sits there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from bayes_unsl.forms._ops import log1mexp

__all__ = ["centre_slope_scale", "from_centre", "visible_share"]


def centre_slope_scale(log_limit_share: ArrayLike, coupling: float) -> jax.Array:
    """Factor from slopes of log y to slopes of log M, taken at the centre of the data.

    With ``y = a + M``, ``d log y = (M / y) d log M``: near its limit the curve's log slope is
    flattened by ``1 - a / y``. Slopes are sampled as seen in log y, where the data fix them,
    and divided by ``1 - coupling * a / y`` (``log_limit_share = log(a / y)`` at the
    centre), which removes the banana-shaped dependence between the limit and the slopes.
    With ``coupling = 1`` a sampled slope at the centre is exactly the slope of log y there;
    smaller values bound the factor, which gives the implied prior on slopes of log M a
    lighter tail as ``a`` approaches the curve.
    """
    return jnp.exp(-log1mexp(log_limit_share + jnp.log(coupling)))


def visible_share(delta: ArrayLike, f: ArrayLike, upper: ArrayLike = 1.0) -> jax.Array:
    """Fraction of a break's slope change that happens within ``[-1, upper]``.

    ``delta`` and ``f``: break locations and sharpness in standardised units (any shape);
    ``upper``: the top of the range where breaks may lie (1, the largest observation,
    unless the priors add a margin past the data). A sharp break inside the range gives
    about 1; one at an edge about 1/2.
    """
    return jax.nn.sigmoid((upper - delta) / f) - jax.nn.sigmoid((-1.0 - delta) / f)


def from_centre(
    log_m_centre: ArrayLike,
    mean_slope: ArrayLike,
    c_visible: ArrayLike,
    delta: ArrayLike,
    f: ArrayLike,
    upper: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(beta, c0, c)`` of a BNSL component in standardised units.

    ``log_m_centre``: log of the reducible part M at ``z = 0``; ``mean_slope``: the mean
    decay slope of log M over the observed range, ``(log M(-1) - log M(1)) / 2``;
    ``c_visible``: per break (last axis), the change of slope within ``[-1, upper]`` (see
    :func:`visible_share`). ``delta``, ``f``: break locations and sharpness, shaped like
    ``c_visible``. Leading axes broadcast (one row per component). The resulting curve has
    exactly that value at the centre and that mean slope over the data.
    """
    delta, f = jnp.asarray(delta), jnp.asarray(f)
    c = jnp.asarray(c_visible) / visible_share(delta, f, upper)
    # Mean slope of each break's hinge over [-1, 1].
    hinge_rise = f * (jax.nn.softplus((1.0 - delta) / f) - jax.nn.softplus((-1.0 - delta) / f))
    c0 = mean_slope - jnp.sum(c * hinge_rise / 2.0, axis=-1)
    beta = log_m_centre + jnp.sum(c * f * jax.nn.softplus(-delta / f), axis=-1)
    return beta, c0, c
