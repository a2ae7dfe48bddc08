"""Where a fitted law puts the best value of one input: the optimal learning rate, say.

With an oppositional force on an input (``UNSLPriors(opposition=[j])``) the fitted curve
falls and then rises in that input, so it has a best value, and that best value moves
with the other inputs. Each posterior draw of the mean curve gives one optimum; their
spread is the uncertainty of the forecast, at scales where no run tried that value.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_unsl.fit import Fit

__all__ = ["OptimumWarning", "optimal_input"]


class OptimumWarning(UserWarning):
    """Posterior draws put the optimum at the edge of the range searched."""


def _refine(log_grid: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Argmin per row of ``values`` on ``log_grid`` and the minimum, refined by a parabola
    through the best grid point and its neighbours; also whether the best point is at an
    end of the grid (then the grid point itself)."""
    best = np.argmin(values, axis=1)
    at_edge = (best == 0) | (best == log_grid.size - 1)
    i = np.clip(best, 1, log_grid.size - 2)
    rows = np.arange(values.shape[0])
    left, mid, right = values[rows, i - 1], values[rows, i], values[rows, i + 1]
    curvature = left - 2.0 * mid + right
    step = log_grid[1] - log_grid[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
    offset = np.clip(offset, -1.0, 1.0)
    refined = np.where(at_edge, log_grid[best], log_grid[i] + offset * step)
    vertex = mid - 0.25 * (left - right) * offset
    minimum = np.where(at_edge, values[rows, best], np.minimum(vertex, mid))
    return refined, minimum, at_edge


def optimal_input(
    fit: Fit,
    name: str,
    at: Mapping[str, float] | pd.DataFrame,
    *,
    bounds: tuple[float, float],
    n_grid: int = 200,
) -> pd.DataFrame:
    """Posterior draws of the value of input ``name`` that minimises the expected metric.

    ``at``: values of every other input, one setting (a mapping) or several (a DataFrame,
    one row per setting). ``bounds``: the range of ``name`` searched (> 0), on a log grid
    of ``n_grid`` points refined by a parabola. Returns a long DataFrame, one row per
    setting and draw: the other inputs, ``optimum`` (the best value of ``name``),
    ``metric`` (the expected metric there) and ``at_edge`` (the optimum is an end of the
    range: not identified within it). Warns when more than 5% of draws of a setting sit
    at an edge.
    """
    if name not in fit.x_names:
        raise ValueError(f"unknown input {name!r}; the fit uses {list(fit.x_names)}")
    lo, hi = (float(b) for b in bounds)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"bounds must be two finite numbers with 0 < low < high, got {bounds!r}")
    if n_grid < 5:
        raise ValueError(f"n_grid must be at least 5, got {n_grid}")
    settings = pd.DataFrame([dict(at)]) if isinstance(at, Mapping) else at.reset_index(drop=True)
    others = [n for n in fit.x_names if n != name]
    missing = [n for n in others if n not in settings.columns]
    if missing:
        raise ValueError(f"`at` lacks input(s) {missing}; give a value for every other input")
    unknown = [c for c in settings.columns if c not in fit.x_names]
    if unknown:
        raise ValueError(f"`at` has column(s) {unknown} that the fit does not use")
    if name in settings.columns:
        raise ValueError(f"`at` sets {name!r}, the input being optimised")
    log_grid = np.linspace(np.log(lo), np.log(hi), int(n_grid))
    frames = []
    for _, row in settings.iterrows():
        grid = pd.DataFrame({n: np.full(log_grid.size, float(row[n])) for n in others})
        grid[name] = np.exp(log_grid)
        curve = fit.curve_samples(grid[list(fit.x_names)])
        log_opt, log_min, at_edge = _refine(log_grid, np.log(curve))
        frame = pd.DataFrame({n: np.full(log_opt.size, float(row[n])) for n in others})
        frame["optimum"] = np.exp(log_opt)
        frame["metric"] = np.exp(log_min)
        frame["at_edge"] = at_edge
        frames.append(frame)
        share = float(at_edge.mean())
        if share > 0.05:
            where = ", ".join(f"{n}={row[n]:g}" for n in others)
            warnings.warn(
                f"{share:.0%} of posterior draws put the optimal {name} at an end of the range "
                f"searched {bounds} (at {where}); widen `bounds`, or the data may not locate "
                "the optimum there",
                OptimumWarning,
                stacklevel=2,
            )
    return pd.concat(frames, ignore_index=True)
