"""Predictive draws for any point fit by a residual bootstrap in log y.

A point fit gives no error bar. The residual bootstrap makes one from the fit's own
misfit: resample its log-y residuals onto the fitted curve, refit, and predict with one
more resampled residual added, so the draws carry both the refit's parameter spread and
the scatter of the points about the curve. The draws have the shape the scores in
:mod:`bayes_unsl.evaluation` take, so a point baseline is scored like any posterior.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bayes_unsl.baselines._core import PointFit, as_positive_inputs, check_xy

__all__ = ["bootstrap_draws"]

Fitter = Callable[..., PointFit]


def bootstrap_draws(
    fitter: Fitter,
    x: Any,
    y: Any,
    new_x: Any,
    n_boot: int = 200,
    seed: int | np.random.Generator = 0,
    *,
    warm_start: bool = True,
) -> np.ndarray:
    """Draws of y at ``new_x`` from a residual bootstrap of ``fitter`` on (x, y).

    ``fitter(x, y)`` returns a :class:`PointFit` (e.g. ``fit_power_law`` or
    ``functools.partial(fit_bnsl_point, breaks=2)``). The residuals of the fit to the data,
    centred and scaled by ``sqrt(n / (n - p))`` (least-squares residuals are smaller than
    the errors they estimate, by about that factor), are resampled with replacement.
    ``warm_start``: refit with ``fitter(x, y_b, start=first_fit)``, skipping each refit's
    grid search (the fitters here accept ``start``); pass False for a fitter that does not,
    or to search afresh every time. ``seed``: an int or a ``numpy.random.Generator``.
    x is 1-D for a law of one input, or (n, m) with one row a point for a law of m inputs
    (e.g. ``fit_chinchilla_point``); ``new_x`` is then (k, m) too. Returns an array of shape
    ``(n_boot, len(new_x))``, every value finite and > 0.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2; got {n_boot!r}")
    x, y = check_xy(x, y, 1, "the bootstrap", n_inputs=None)
    new_x = as_positive_inputs(new_x, "new_x", 1 if x.ndim == 1 else x.shape[1])
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    first = fitter(x, y)
    fitted = first.predict_log(x)
    resid = np.log(y) - fitted
    resid = resid - resid.mean()
    n = resid.size
    if n > first.n_params:
        resid = resid * np.sqrt(n / (n - first.n_params))

    draws = np.empty((int(n_boot), new_x.shape[0]))
    for b in range(int(n_boot)):
        y_b = np.exp(fitted + rng.choice(resid, size=n, replace=True))
        refit = fitter(x, y_b, start=first) if warm_start else fitter(x, y_b)
        noise = rng.choice(resid, size=new_x.shape[0], replace=True)
        draws[b] = np.exp(refit.predict_log(new_x) + noise)
    bad = ~np.all(np.isfinite(draws) & (draws > 0), axis=1)
    if bad.any():
        raise RuntimeError(
            f"{int(bad.sum())} of {n_boot} bootstrap refits predicted non-finite or "
            f"non-positive y (first: draw {int(np.argmax(bad))})"
        )
    return draws
