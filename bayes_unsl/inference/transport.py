"""Maps that straighten a curved posterior tube, fitted to earlier draws, for NUTS to run in.

The hard scaling-law posteriors are thin curved tubes: most of the variance lies along one
direction and a cubic curve in it explains most of the rest (``benchmarks/posterior_pairs.py``).
A dense mass matrix is linear and cannot straighten a curve; a map fitted to draws of a
first run can. In the draws' standardised principal coordinates ``q``, the first
coordinate, standardised (``t = q_1 / s_t``), is kept and every other one is a cubic in
``t`` plus a residual scaled by ``exp(a + b t)``::

    q_1 = s_t u_1,    q_j = P_j(u_1) + exp(a_j + b_j u_1) u_j,    z = mean + scale * (q @ basis)

a triangular map, so its inverse is explicit and its log-Jacobian is the sum of the
``a_j + b_j u_1`` (plus a constant). Past the draws' range of ``t`` the cubic continues along
its tangent and the scales stay as at the edge. NUTS samples ``u`` under ``U(z(u)) - log|dz/du|``:
the draws mapped back follow the posterior exactly, whatever the map, and the better it
fits, the straighter and rounder the tube NUTS sees (``benchmarks/pilot_transport.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "TubeMap",
    "fit_tube_map",
    "from_unconstrained",
    "identity_map",
    "mapped_potential",
    "to_unconstrained",
]

DEGREE = 3
MAX_SCALE_SLOPE = 1.0  # |b_j|: the residual scale changes at most e-fold per sd of t
_E_LOG_ABS_NORMAL = -0.6352  # E log|N(0, 1)|: turns a mean log|residual| into a log sd


class TubeMap(NamedTuple):
    """Parameters of the map ``u -> z`` (arrays only, so a pytree a program can take)."""

    mean: jax.Array  # (dim,)
    scale: jax.Array  # (dim,) per-coordinate sd of the draws
    basis: jax.Array  # (dim, dim) principal directions, one per row
    t_scale: jax.Array  # () sd of the first principal coordinate
    shift: jax.Array  # (DEGREE + 1, dim - 1) coefficients on 1, t, t^2, t^3 (centred)
    power_mean: jax.Array  # (DEGREE - 1,) means of t^2, t^3 over the draws
    log_scale: jax.Array  # (2, dim - 1) residual log sd: a_j + b_j t
    t_range: jax.Array  # (2,) range of t over the draws, past which the map is extended


def identity_map(dim: int, dtype=jnp.float32) -> TubeMap:
    """The map ``z = u``."""
    rest = max(dim - 1, 0)
    return TubeMap(
        mean=jnp.zeros(dim, dtype),
        scale=jnp.ones(dim, dtype),
        basis=jnp.eye(dim, dtype=dtype),
        t_scale=jnp.ones((), dtype),
        shift=jnp.zeros((DEGREE + 1, rest), dtype),
        power_mean=jnp.zeros(DEGREE - 1, dtype),
        log_scale=jnp.zeros((2, rest), dtype),
        t_range=jnp.asarray([-jnp.inf, jnp.inf], dtype),
    )


def fit_tube_map(draws: np.ndarray) -> TubeMap:
    """The map fitted to draws ``(n, dim)`` of flat unconstrained vectors (least squares).

    Coordinates that did not move (a stuck chain) keep a unit scale, so the map stays a
    bijection; a poor fit costs efficiency, never correctness.
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 2 or draws.shape[0] < 2 * (DEGREE + 1):
        raise ValueError(f"need draws of shape (n >= {2 * (DEGREE + 1)}, dim), got {draws.shape}")
    if not np.all(np.isfinite(draws)):
        raise ValueError("draws to fit a map to must be finite")
    mean = draws.mean(0)
    sd = draws.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    standard = (draws - mean) / sd
    _, _, basis = np.linalg.svd(standard, full_matrices=False)
    q = standard @ basis.T
    t_scale = q[:, 0].std() or 1.0
    t = q[:, 0] / t_scale
    design, power_mean = _design(t)
    shift, *_ = np.linalg.lstsq(design, q[:, 1:], rcond=None)
    residual = np.abs(q[:, 1:] - design @ shift) + 1e-12
    log_scale, *_ = np.linalg.lstsq(design[:, :2], np.log(residual) - _E_LOG_ABS_NORMAL, rcond=None)
    log_scale[1] = np.clip(log_scale[1], -MAX_SCALE_SLOPE, MAX_SCALE_SLOPE)
    dtype = jnp.asarray(0.0).dtype
    fitted = (mean, sd, basis, t_scale, shift, power_mean, log_scale, [t.min(), t.max()])
    return TubeMap(*(jnp.asarray(v, dtype) for v in fitted))


def _design(tt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    powers = np.stack([tt**k for k in range(2, DEGREE + 1)], 1)
    power_mean = powers.mean(0)
    return np.c_[np.ones_like(tt), tt, powers - power_mean], power_mean


def _along(tube: TubeMap, tt: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Shift and log scale of the residual coordinates at standardised first coordinate.

    Past the range of the draws the cubic is continued by its tangent and the scale held,
    so that the map does not bend or stretch without bound where nothing was fitted (a
    cubic far out would fold the tails into new narrow funnels).
    """

    def design(t):
        powers = jnp.stack([t**k for k in range(2, DEGREE + 1)], -1) - tube.power_mean
        return jnp.concatenate([jnp.ones_like(t)[..., None], t[..., None], powers], -1)

    inside = jnp.clip(tt, tube.t_range[0], tube.t_range[1])
    shift, slope = jax.jvp(lambda t: design(t) @ tube.shift, (inside,), (jnp.ones_like(inside),))
    shift = shift + slope * (tt - inside)[..., None]
    return shift, design(inside)[..., :2] @ tube.log_scale


def to_unconstrained(tube: TubeMap, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``z(u)`` and ``log|dz/du|`` up to a constant, for one vector ``u``."""
    shift, log_s = _along(tube, u[0])
    q = jnp.concatenate([tube.t_scale * u[:1], shift + jnp.exp(log_s) * u[1:]])
    return tube.mean + tube.scale * (q @ tube.basis), jnp.sum(log_s)


def from_unconstrained(tube: TubeMap, z: jax.Array) -> jax.Array:
    """``u(z)``, the inverse of :func:`to_unconstrained`, for vectors ``z`` (..., dim)."""
    q = ((z - tube.mean) / tube.scale) @ tube.basis.T
    t = q[..., :1] / tube.t_scale
    shift, log_s = _along(tube, t[..., 0])
    return jnp.concatenate([t, (q[..., 1:] - shift) * jnp.exp(-log_s)], -1)


def mapped_potential(
    tube: TubeMap, potential: Callable[[jax.Array], jax.Array]
) -> Callable[[jax.Array], jax.Array]:
    """The potential of ``u``: ``potential(z(u)) - log|dz/du|``."""

    def potential_u(u: jax.Array) -> jax.Array:
        z, log_jacobian = to_unconstrained(tube, u)
        return potential(z) - log_jacobian

    return potential_u
