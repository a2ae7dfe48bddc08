"""BNSL point fit in the manner of arXiv 2210.14891: a coarse grid, then least squares.

The paper fits a Broken Neural Scaling Law by a brute-force grid over all its parameters
followed by a local least-squares fit of log y. Here the grid covers only the parameters
that enter nonlinearly (the limit ``a``, the break locations and their sharpness); for each
grid point the others (``beta``, ``c0`` and the slope changes ``c_i``, linear in
``log(y - a)``) are solved exactly by weighted linear least squares, so a grid of a few
thousand points does the work of a much larger brute-force one. The best grid points
then start bounded least squares on log y (mean squared log error, the score of the
evaluation) with an analytic Jacobian. Two deliberate differences from the paper's
script: the loss is on log y, not log(1 + y), and ``a >= 0`` is enforced.

Parameters are those of :func:`bayes_unsl.forms.bnsl` with ``u = log x`` (reference scale
1): ``log_a``, ``beta``, ``c0`` and, per break, ``c``, ``delta`` (log break location) and
``f`` (sharpness), breaks sorted by location.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import expit

from bayes_unsl.baselines._core import (
    LOG_A_FLOOR,
    PointFit,
    best_least_squares,
    check_xy,
    frozen_params,
)

__all__ = ["A_FRACTIONS", "GRID", "bnsl_log_y", "fit_bnsl_point"]

A_FRACTIONS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98)
"""Grid values of ``a`` as fractions of min(y)."""

GRID: dict[int, tuple[int, int]] = {0: (0, 0), 1: (16, 7), 2: (10, 4), 3: (7, 3)}
"""Per number of breaks: (break locations, sharpness values) on the grid. Locations are
spread evenly inside the observed range of log x, sharpness geometrically from
``F_GRID_MIN`` to the width of that range; break combinations are ordered. With the seven
values of ``a`` this is 784, 5040 and 6615 grid points for 1, 2 and 3 breaks."""

F_GRID_MIN = 0.02
F_MIN = 1e-3
MAX_SLOPE = 50.0
N_STARTS = 8
"""Best grid points refined by least squares."""

_CHUNK = 2_000_000  # floats per batch of grid design matrices


def bnsl_log_y(params: Mapping[str, Any], log_x: Any) -> np.ndarray:
    """NumPy twin of :func:`bayes_unsl.forms.bnsl`: log y of a BNSL at ``log_x``.

    Kept in NumPy so that least squares runs without JAX dispatch; a test checks it
    against the JAX form.
    """
    u = np.asarray(log_x, dtype=float)
    c = np.asarray(params["c"], dtype=float)
    delta = np.asarray(params["delta"], dtype=float)
    f = np.asarray(params["f"], dtype=float)
    breaks = np.sum(c * f * np.logaddexp(0.0, (u[..., None] - delta) / f), axis=-1)
    log_m = params["beta"] - params["c0"] * u - breaks
    return np.logaddexp(params["log_a"], log_m)


def _unpack(theta: np.ndarray, n: int) -> dict[str, Any]:
    return {
        "log_a": theta[0],
        "beta": theta[1],
        "c0": theta[2],
        "c": theta[3 : 3 + n],
        "delta": theta[3 + n : 3 + 2 * n],
        "f": np.exp(theta[3 + 2 * n :]),
    }


def _jacobian(theta: np.ndarray, u: np.ndarray, n: int) -> np.ndarray:
    """d log y / d theta for theta = (log_a, beta, c0, c_i, delta_i, log f_i)."""
    p = _unpack(theta, n)
    z = (u[:, None] - p["delta"]) / p["f"]
    soft = np.logaddexp(0.0, z)
    log_m = p["beta"] - p["c0"] * u - np.sum(p["c"] * p["f"] * soft, axis=1)
    log_y = np.logaddexp(p["log_a"], log_m)
    w = np.exp(log_m - log_y)[:, None]  # share of y in the reducible part
    return np.concatenate(
        [
            np.exp(p["log_a"] - log_y)[:, None],
            w,
            -w * u[:, None],
            -w * p["f"] * soft,
            w * p["c"] * expit(z),
            -w * p["c"] * p["f"] * (soft - z * expit(z)),
        ],
        axis=1,
    )


def _grid_starts(u: np.ndarray, y: np.ndarray, n: int, floor: float) -> list[np.ndarray]:
    """Best ``N_STARTS`` grid points, linear parameters solved exactly at each."""
    n_loc, n_f = GRID[n]
    lo, hi = float(u.min()), float(u.max())
    locs = np.linspace(lo, hi, n_loc + 2)[1:-1]
    sharp = np.geomspace(F_GRID_MIN, max(hi - lo, 2 * F_GRID_MIN), n_f) if n else np.empty(0)
    combos = [
        (d, f) for d in itertools.combinations(locs, n) for f in itertools.product(sharp, repeat=n)
    ]
    delta = np.array([d for d, _ in combos], dtype=float).reshape(len(combos), n)
    f = np.array([s for _, s in combos], dtype=float).reshape(len(combos), n)
    log_y = np.log(y)

    found: list[tuple[float, np.ndarray]] = []
    chunk = max(1, _CHUNK // (u.size * (n + 2)))
    for start in range(0, len(combos), chunk):
        d, s = delta[start : start + chunk], f[start : start + chunk]
        hinge = s[:, None, :] * np.logaddexp(
            0.0, (u[None, :, None] - d[:, None, :]) / s[:, None, :]
        )
        ones = np.ones((d.shape[0], u.size, 1))
        design = np.concatenate([ones, -np.broadcast_to(u[None, :, None], ones.shape), -hinge], 2)
        for frac in A_FRACTIONS:
            a = frac * y.min()
            w = (y - a) / y  # d log y / d log(y - a): weights make residuals those of log y
            coef = np.linalg.pinv(design * w[None, :, None], rcond=1e-10) @ (w * np.log(y - a))
            log_m = np.einsum("kij,kj->ki", design, coef)
            log_a = np.log(a) if a > 0 else floor
            sse = np.sum((np.logaddexp(log_a, log_m) - log_y) ** 2, axis=1)
            sse = np.where(np.isfinite(sse), sse, np.inf)
            for k in np.argsort(sse)[:N_STARTS]:
                theta = np.concatenate([[log_a], coef[k], d[k], np.log(s[k])])
                found.append((float(sse[k]), theta))
    found.sort(key=lambda item: item[0])
    return [theta for _, theta in found[:N_STARTS]]


def _centred_start(start: PointFit, centre: float, floor: float, n: int) -> np.ndarray:
    p = start.params
    if len(np.atleast_1d(p["c"])) != n:
        raise ValueError(f"start has {len(np.atleast_1d(p['c']))} breaks; this fit has {n}")
    log_a = max(p["log_a"], floor)
    beta = p["beta"] - p["c0"] * centre
    return np.concatenate(
        [[log_a, beta, p["c0"]], p["c"], np.asarray(p["delta"]) - centre, np.log(p["f"])]
    )


def fit_bnsl_point(x: Any, y: Any, breaks: int = 1, *, start: PointFit | None = None) -> PointFit:
    """Fit a BNSL with ``breaks`` breaks (0 to 3) by grid search, then least squares on log y.

    ``start``: a previous fit with the same number of breaks to refine instead of searching
    the grid (the residual bootstrap uses it to refit quickly). Returns a
    :class:`PointFit` named ``bnsl_<breaks>`` whose params feed
    :func:`bayes_unsl.forms.bnsl` at ``log x``.
    """
    if isinstance(breaks, bool) or not isinstance(breaks, (int, np.integer)) or breaks not in GRID:
        raise ValueError(f"breaks must be an integer from 0 to 3; got {breaks!r}")
    n = int(breaks)
    n_params = 3 + 3 * n
    x, y = check_xy(x, y, n_params, f"a BNSL with {n} break(s)")
    log_x, log_y = np.log(x), np.log(y)
    centre = float(np.mean(log_x))  # centring decorrelates beta from the slopes
    u = log_x - centre
    lo, hi = float(u.min()), float(u.max())
    pad = max(0.5 * (hi - lo), 0.5)
    floor = float(np.log(y.min())) - LOG_A_FLOOR

    def residuals(theta: np.ndarray) -> np.ndarray:
        return bnsl_log_y(_unpack(theta, n), u) - log_y

    def jac(theta: np.ndarray) -> np.ndarray:
        return _jacobian(theta, u, n)

    if start is not None:
        starts = [_centred_start(start, centre, floor, n)]
    else:
        starts = _grid_starts(u, y, n, floor)
    lower = np.concatenate(
        [
            [floor, -np.inf, -MAX_SLOPE],
            np.full(n, -MAX_SLOPE),
            np.full(n, lo - pad),
            np.full(n, np.log(F_MIN)),
        ]
    )
    upper = np.concatenate(
        [
            [float(np.log(y.max())), np.inf, MAX_SLOPE],
            np.full(n, MAX_SLOPE),
            np.full(n, hi + pad),
            np.full(n, np.log(2.0 * (hi - lo) + 1.0)),
        ]
    )
    res = best_least_squares(residuals, jac, starts, lower, upper)

    p = _unpack(res.x, n)
    order = np.argsort(p["delta"], kind="stable")
    log_a = float(p["log_a"])
    params = {
        "log_a": -np.inf if log_a <= floor + 1e-6 else log_a,
        "beta": float(p["beta"]) + float(p["c0"]) * centre,
        "c0": float(p["c0"]),
        "c": p["c"][order],
        "delta": p["delta"][order] + centre,
        "f": p["f"][order],
    }
    frozen = frozen_params(params)

    def log_predict(lx: np.ndarray) -> np.ndarray:
        return bnsl_log_y(frozen, lx)

    msle = float(np.mean((log_predict(log_x) - log_y) ** 2))
    return PointFit(f"bnsl_{n}", frozen, log_predict, n_params, msle)
