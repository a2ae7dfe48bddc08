"""Power law with an offset, ``y = a + b x^(-c)``, fitted by least squares on log y.

The simplest baseline: a straight line in log-log space bent by an irreducible limit
``a >= 0``. Its loss is the squared error of log y (the MSLE that the evaluation scores),
minimised by bounded least squares from a few starts, one per trial value of ``a``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_unsl.baselines._core import (
    LOG_A_FLOOR,
    PointFit,
    best_least_squares,
    check_xy,
    frozen_params,
)

__all__ = ["A_FRACTIONS", "MAX_EXPONENT", "fit_power_law", "power_law_log"]

A_FRACTIONS = (0.0, 0.5, 0.9)
"""Trial values of ``a`` as fractions of min(y): one least-squares start for each."""

MAX_EXPONENT = 20.0
"""Bound on |c|: wide enough for any learning curve, finite to keep the search bounded."""

N_PARAMS = 3


def power_law_log(log_a: float, log_b: float, c: float, log_x: np.ndarray) -> np.ndarray:
    """``log(a + b x^(-c))`` at ``log_x``, formed without exponentiating large numbers."""
    return np.logaddexp(log_a, log_b - c * np.asarray(log_x, dtype=float))


def _linear_start(u: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
    """Log-log regression of ``y - a`` on ``u``, weighted so residuals are those of log y."""
    w = (y - a) / y  # d log y / d log(y - a)
    design = np.stack([np.ones_like(u), -u], axis=1) * w[:, None]
    coef = np.linalg.lstsq(design, w * np.log(y - a), rcond=None)[0]
    return coef


def fit_power_law(x: Any, y: Any, *, start: PointFit | None = None) -> PointFit:
    """Fit ``y = a + b x^(-c)`` (a >= 0, b > 0) by least squares on log y.

    ``start``: a previous power-law fit to start from instead of the trial values of
    ``a`` (the residual bootstrap uses it to refit quickly). Returns a :class:`PointFit`
    with params ``a``, ``b``, ``c``.
    """
    x, y = check_xy(x, y, N_PARAMS, "the power law")
    log_x, log_y = np.log(x), np.log(y)
    centre = float(np.mean(log_x))  # centring decorrelates b and c
    u = log_x - centre
    floor = float(np.log(y.min())) - LOG_A_FLOOR

    def residuals(theta: np.ndarray) -> np.ndarray:
        return power_law_log(theta[0], theta[1], theta[2], u) - log_y

    def jac(theta: np.ndarray) -> np.ndarray:
        log_m = theta[1] - theta[2] * u
        w = np.exp(log_m - np.logaddexp(theta[0], log_m))  # share of y that is b x^-c
        return np.stack([1.0 - w, w, -w * u], axis=1)

    if start is not None:
        p = start.params
        log_a = np.log(p["a"]) if p["a"] > 0 else floor
        starts = [np.array([log_a, np.log(p["b"]) - p["c"] * centre, p["c"]])]
    else:
        starts = []
        for frac in A_FRACTIONS:
            a = frac * y.min()
            log_b, c = _linear_start(u, y, a)
            starts.append(np.array([np.log(a) if a > 0 else floor, log_b, c]))
    lower = np.array([floor, -np.inf, -MAX_EXPONENT])
    upper = np.array([float(np.log(y.max())), np.inf, MAX_EXPONENT])
    res = best_least_squares(residuals, jac, starts, lower, upper)

    log_a, log_b_c, c = (float(v) for v in res.x)
    log_a = -np.inf if log_a <= floor + 1e-6 else log_a
    log_b = log_b_c + c * centre

    def log_predict(lx: np.ndarray) -> np.ndarray:
        return power_law_log(log_a, log_b, c, lx)

    params = frozen_params({"a": np.exp(log_a), "b": np.exp(log_b), "c": c})
    msle = float(np.mean((log_predict(log_x) - log_y) ** 2))
    return PointFit("power_law", params, log_predict, N_PARAMS, msle)
