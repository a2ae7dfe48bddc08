"""M4 of Alabdulmohsin et al. (arXiv 2209.06640) fitted by that paper's least squares.

M4 is the implicit law ``(y - eps_inf) / (eps_0 - y)^alpha = beta x^(-c)``. The paper
fits it in its linearised form: for given limits ``eps_inf`` and ``eps_0``,

    log(y - eps_inf) = log beta - c log x + alpha log(eps_0 - y)

is a linear regression with ``c >= 0`` and ``alpha >= 0``, and the limits are then moved
(by gradient and Newton steps in the authors' code) within ``0 <= eps_inf < min y`` and
``max y < eps_0 <= up_bound``, alternating until convergence, starting from ``eps_inf``
just below min y and ``eps_0 = 1``. Here the same objective is minimised from the same
start by variable projection: the constrained regression is solved exactly for any limits
(by enumerating which of ``c`` and ``alpha`` sit at zero) and the two limits are refined by
bounded least squares on the resulting residuals.

The search is local on purpose. The global minimum of this objective often lies at
``eps_inf = 0``, a plain power law, which extrapolates decelerating curves badly (on the
benchmark of arXiv 2209.06640 a grid search over the limits gave held-out RMSLE 0.053 on
IC and 0.15 on NMT, against 0.044 and 0.020 from the paper's start). Two differences from
the authors' code: the margins that keep the limits off the data are relative (factors
``1 -/+ MARGIN``) rather than an absolute 1e-3, so the fit does not depend on the units of
y; and ``log beta`` is not constrained to be >= 0. Predictions solve the implicit law with
:func:`bayes_unsl.forms.m4`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_unsl._precision import precision_scope
from bayes_unsl.baselines._core import PointFit, best_least_squares, check_xy, frozen_params
from bayes_unsl.forms import m4

__all__ = ["EPS_0_INIT", "EPS_0_SPAN", "MARGIN", "fit_m4"]

MARGIN = 1e-3
"""eps_inf <= (1 - MARGIN) min y and eps_0 >= (1 + MARGIN) max y: the linearised loss takes
logs of y - eps_inf and eps_0 - y."""

EPS_0_SPAN = 100.0
"""Without ``eps_0_max``, eps_0 is searched up to ``(1 + EPS_0_SPAN) max y``; past that,
alpha and the intercept can no longer be told apart."""

EPS_0_INIT = 1.0
"""The authors' initial eps_0 (raised to just above max y when the data exceed it)."""

_m4_jit = jax.jit(m4)


def _m4_log_y(params: dict[str, float], log_x: np.ndarray) -> np.ndarray:
    """:func:`bayes_unsl.forms.m4` in float64 at ``log_x`` (any 1-D length).

    Inputs are padded to a power of two (at least 16) so that curves of different
    lengths share a few compiled programs instead of compiling one each (about 1 s).
    """
    log_x = np.asarray(log_x, dtype=float)
    size = max(16, 1 << int(np.ceil(np.log2(max(log_x.size, 1)))))
    padded = np.concatenate([log_x, np.full(size - log_x.size, log_x[0] if log_x.size else 0.0)])
    with precision_scope("float64"):
        arrays = {k: jnp.asarray(val, dtype=jnp.float64) for k, val in params.items()}
        out = _m4_jit(arrays, jnp.asarray(padded, dtype=jnp.float64))
        return np.asarray(out, dtype=float)[: log_x.size]


def _regression(v: np.ndarray, y: np.ndarray, eps_inf: float, eps_0: float):
    """Least squares of log(y - eps_inf) on (1, -v, log(eps_0 - y)) with c, alpha >= 0.

    The problem is a convex quadratic with two sign constraints, so its solution is the
    best feasible one among the four unconstrained fits with each subset of (c, alpha)
    pinned at zero. Returns (log_beta, c, alpha) and the residuals.
    """
    target = np.log(y - eps_inf)
    design = np.stack([np.ones_like(v), -v, np.log(eps_0 - y)], axis=1)
    best_coef, best_res, best_sse = None, None, np.inf
    for free in ((0, 1, 2), (0, 1), (0, 2), (0,)):
        coef = np.zeros(3)
        coef[list(free)] = np.linalg.lstsq(design[:, free], target, rcond=None)[0]
        if coef[1] < 0 or coef[2] < 0:
            continue
        res = design @ coef - target
        sse = float(res @ res)
        if sse < best_sse:
            best_coef, best_res, best_sse = coef, res, sse
    return best_coef, best_res


def fit_m4(
    x: Any,
    y: Any,
    *,
    eps_0: float | None = None,
    eps_0_max: float | None = None,
    start: PointFit | None = None,
) -> PointFit:
    """Fit M4 by the linearised least squares of arXiv 2209.06640, from the paper's start.

    ``eps_0``: the random-guess level if known; it must exceed max y and is then held
    fixed. ``eps_0_max``: otherwise, an upper bound on the fitted eps_0 (the authors' code
    uses 1 for error rates, none for losses). ``start``: a previous M4 fit to start from
    instead (used by the residual bootstrap). Returns a :class:`PointFit` with the params
    of :func:`bayes_unsl.forms.m4` at ``log x``: ``log_eps_inf``, ``log_eps_0``,
    ``log_beta``, ``c``, ``alpha``.
    """
    if eps_0 is not None and eps_0_max is not None:
        raise ValueError("give eps_0 (fixed) or eps_0_max (a bound on a fitted eps_0), not both")
    n_params = 4 if eps_0 is not None else 5
    x, y = check_xy(x, y, n_params, "M4" if eps_0 is None else "M4 with eps_0 given")
    y_min, y_max = float(y.min()), float(y.max())
    if eps_0 is not None and not (np.isfinite(eps_0) and eps_0 > y_max):
        raise ValueError(f"eps_0 must be finite and exceed max y = {y_max:g}; got {eps_0!r}")
    gap_max = np.log(EPS_0_SPAN)
    if eps_0_max is not None:
        if not (np.isfinite(eps_0_max) and eps_0_max > (1.0 + 2 * MARGIN) * y_max):
            raise ValueError(
                f"eps_0_max must be finite and exceed max y = {y_max:g} by a factor "
                f"{1 + 2 * MARGIN}; got {eps_0_max!r}"
            )
        gap_max = float(np.log(eps_0_max / y_max - 1.0))
    log_x = np.log(x)
    centre = float(np.mean(log_x))
    v = log_x - centre
    inf_hi = (1.0 - MARGIN) * y_min

    # theta = (eps_inf / inf_hi, log(eps_0 / max y - 1)); the second is dropped if eps_0 given.
    def limits(theta: np.ndarray) -> tuple[float, float]:
        e0 = eps_0 if eps_0 is not None else y_max * (1.0 + np.exp(theta[1]))
        return float(theta[0]) * inf_hi, float(e0)

    def residuals(theta: np.ndarray) -> np.ndarray:
        return _regression(v, y, *limits(theta))[1]

    lower = np.array([0.0, np.log(MARGIN)])
    upper = np.array([1.0, gap_max])
    if eps_0 is not None:
        lower, upper = lower[:1], upper[:1]
    if start is not None:
        # The start's limits may lie outside this data's bounds (a bootstrap sample can
        # reach past them); they are moved inside.
        frac = np.exp(start.params["log_eps_inf"]) / inf_hi
        e0_start = np.exp(start.params["log_eps_0"])
    else:
        frac, e0_start = 1.0, EPS_0_INIT
    gap = np.log(max(e0_start / y_max - 1.0, MARGIN))
    starts = [np.clip(np.array([frac, gap][: lower.size]), lower, upper)]
    res = best_least_squares(residuals, "2-point", starts, lower, upper)
    eps_inf, e0 = limits(res.x)
    (log_beta_c, c, alpha), _ = _regression(v, y, eps_inf, e0)
    params = frozen_params(
        {
            "log_eps_inf": np.log(eps_inf) if eps_inf > 0 else -np.inf,
            "log_eps_0": np.log(e0),
            "log_beta": log_beta_c + c * centre,
            "c": c,
            "alpha": alpha,
        }
    )

    def log_predict(lx: np.ndarray) -> np.ndarray:
        return _m4_log_y(params, lx)

    msle = float(np.mean((log_predict(log_x) - np.log(y)) ** 2))
    return PointFit("m4", params, log_predict, n_params, msle)
