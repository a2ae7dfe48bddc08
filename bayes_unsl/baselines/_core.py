"""Shared pieces of the point-estimate baselines: the result type and the input checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, least_squares

__all__ = [
    "KEEP",
    "LOG_A_FLOOR",
    "MAX_NFEV_PER_PARAM",
    "SCREEN_NFEV",
    "PointFit",
    "as_positive",
    "as_positive_inputs",
    "best_least_squares",
    "check_xy",
    "frozen_params",
]

LOG_A_FLOOR = 20.0
"""The irreducible limit is searched down to ``min(y) * exp(-LOG_A_FLOOR)``; a fit at that
floor is reported as a = 0 (the change in any prediction is below 1e-8 relative)."""

SCREEN_NFEV = 100
"""Evaluations each start gets before the best ``KEEP`` are run to convergence."""
KEEP = 2
MAX_NFEV_PER_PARAM = 40
"""Evaluation budget of a final run, per parameter. Fits with a redundant break creep
along a flat valley for thousands of evaluations while the loss changes in its eighth
digit; the cap stops that without changing any prediction that matters."""


@dataclass(frozen=True)
class PointFit:
    """One point estimate of a scaling law: its parameters and a predictor of y.

    ``log_predict`` maps log x to log y; ``n_params`` counts the fitted parameters (the
    bootstrap uses it to inflate residuals); ``msle`` is the mean squared log error on the
    data it was fitted to. ``params`` is read-only and uses the names of the matching
    :mod:`bayes_unsl.forms` function where there is one, so the two can be cross-checked.
    ``n_inputs``: how many inputs a point has; with one, x is 1-D, with m > 1 it is an
    (n, m) array whose rows are points (``columns`` names them in error messages).
    """

    name: str
    params: Mapping[str, Any]
    log_predict: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    n_params: int
    msle: float
    n_inputs: int = 1
    columns: tuple[str, ...] | None = None

    def predict_log(self, x: Any) -> np.ndarray:
        """Log of the predicted metric at inputs ``x`` (finite and > 0): one value a point."""
        log_x = np.log(as_positive_inputs(x, "x", self.n_inputs, self.columns))
        return np.asarray(self.log_predict(log_x), dtype=float)

    def predict(self, x: Any) -> np.ndarray:
        """Predicted metric at inputs ``x`` (finite and > 0), on the natural scale."""
        return np.exp(self.predict_log(x))


def frozen_params(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Read-only copy of a parameter dict: floats stay floats, arrays become read-only."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        arr = np.array(value, dtype=float)
        if arr.ndim == 0:
            out[key] = float(arr)
        else:
            arr.setflags(write=False)
            out[key] = arr
    return MappingProxyType(out)


def as_positive(values: Any, name: str) -> np.ndarray:
    """1-D float array of finite, strictly positive values (logs are taken of them)."""
    return as_positive_inputs(values, name, 1)


def _where(bad: np.ndarray, columns: tuple[str, ...] | None) -> str:
    """`` in column(s) ...`` for a 2-D array's bad entries, so the caller can find them."""
    if bad.ndim != 2:
        return ""
    cols = np.flatnonzero(bad.any(axis=0))
    names = [columns[j] if columns else str(j) for j in cols]
    return f" in column(s) {', '.join(names)}"


def as_positive_inputs(
    values: Any, name: str, n_inputs: int | None, columns: tuple[str, ...] | None = None
) -> np.ndarray:
    """Float array of finite, strictly positive inputs (logs are taken of them).

    ``n_inputs`` = 1: a 1-D array (a scalar becomes one point); m > 1: an (n, m) array,
    one row a point; None: either, for callers that leave the check to the fitter.
    ``columns`` names the inputs in error messages.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if n_inputs is None:
        if arr.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D; got shape {arr.shape}")
    elif n_inputs == 1:
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    elif arr.ndim != 2 or arr.shape[1] != n_inputs:
        named = f" ({', '.join(columns)})" if columns else ""
        raise ValueError(
            f"{name} must be 2-D with {n_inputs} columns{named}, one row a point; "
            f"got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} must be finite; found {int(bad.sum())} nan/inf value(s){_where(bad, columns)}"
        )
    bad = arr <= 0
    if bad.any():
        raise ValueError(
            f"{name} must be strictly positive (its log is taken); found {int(bad.sum())} "
            f"value(s) <= 0{_where(bad, columns)}"
        )
    return arr


def check_xy(
    x: Any,
    y: Any,
    n_params: int,
    what: str,
    n_inputs: int | None = 1,
    columns: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated copies of ``x`` and ``y`` for a fit of ``n_params`` parameters.

    Nothing is dropped: any bad value is an error naming the problem, since a silently
    shortened curve would change the fit without the caller knowing. ``n_inputs`` and
    ``columns`` are as in :func:`as_positive_inputs`; with 2-D x, points are its rows.
    """
    x = as_positive_inputs(x, "x", n_inputs, columns)
    y = as_positive(y, "y")
    if x.shape[0] != y.size:
        raise ValueError(f"x and y must have the same length; got {x.shape[0]} and {y.size}")
    if x.ndim == 1:
        n_distinct, unit = np.unique(x).size, "distinct x values"
    else:
        n_distinct, unit = np.unique(x, axis=0).shape[0], "distinct points (rows of x)"
    if n_distinct < n_params:
        raise ValueError(
            f"{what} has {n_params} parameters and needs at least {n_params} {unit}; "
            f"got {n_distinct}"
        )
    if np.ptp(y) == 0:
        raise ValueError("y is constant; there is no trend to fit")
    return x, y


def best_least_squares(
    residuals: Callable[[np.ndarray], np.ndarray],
    jac: Callable[[np.ndarray], np.ndarray] | str,
    starts: list[np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    screen_nfev: int = SCREEN_NFEV,
    keep: int = KEEP,
) -> OptimizeResult:
    """Bounded least squares from several starts; the result of least cost.

    Several starts, because every law here has local optima (a trades off against the
    slopes, breaks against each other). With more than ``keep`` starts, each first gets
    ``screen_nfev`` evaluations and only the ``keep`` best are run to convergence: the
    long tail of iterations creeping along flat directions is where the time goes.
    Starts are clipped just inside the bounds.
    """
    width = upper - lower
    pad = np.where(np.isfinite(width), 1e-9 * width, 1e-9)
    options = {"method": "trf", "x_scale": "jac", "ftol": 1e-10, "xtol": 1e-10, "gtol": 1e-10}

    def run(x0: np.ndarray, **extra: Any) -> OptimizeResult:
        x0 = np.clip(np.asarray(x0, dtype=float), lower + pad, upper - pad)
        return least_squares(residuals, x0, jac=jac, bounds=(lower, upper), **options, **extra)

    if len(starts) > keep:
        screened = [run(x0, max_nfev=screen_nfev) for x0 in starts]
        screened = [r for r in screened if np.isfinite(r.cost)]
        screened.sort(key=lambda r: r.cost)
        starts = [r.x for r in screened[:keep]]
    max_nfev = MAX_NFEV_PER_PARAM * lower.size
    results = [r for r in (run(x0, max_nfev=max_nfev) for x0 in starts) if np.isfinite(r.cost)]
    if not results:
        raise RuntimeError("least squares failed from every start (non-finite cost)")
    return min(results, key=lambda r: r.cost)
