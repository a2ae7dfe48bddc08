"""Posterior predictions as pure functions of posterior draws and log inputs.

Nothing here knows how the draws were made: the inputs are a curve function (a form of
:mod:`bayes_unsl.forms`, as a model's ``curve``), a dict of arrays with one row per draw
holding its parameters and the noise scale ``sigma``, and the log inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

Curve = Callable[[Mapping[str, jax.Array], jax.Array], jax.Array]

__all__ = [
    "crossing_scales",
    "interval_table",
    "log_curve_draws",
    "predictive_draws",
]


def log_curve_draws(curve: Curve, posterior: Mapping[str, np.ndarray], u: np.ndarray) -> np.ndarray:
    """Mean curve log y for every draw, shape (draws, points); ``u = log x - center``, (n, m)."""
    params = {k: jnp.asarray(v) for k, v in posterior.items()}
    out = jax.jit(jax.vmap(curve, in_axes=(0, None)))(params, jnp.asarray(u))
    return np.asarray(out)


def predictive_draws(
    curve: Curve,
    posterior: Mapping[str, np.ndarray],
    u: np.ndarray,
    *,
    likelihood: str,
    student_df: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Posterior predictive draws of y (noise included), shape (draws, points)."""
    mu = log_curve_draws(curve, posterior, u)
    sigma = np.asarray(posterior["sigma"])[:, None]
    if likelihood == "student_t":
        eps = rng.standard_t(student_df, size=mu.shape)
    else:
        eps = rng.standard_normal(size=mu.shape)
    return np.exp(mu + sigma * eps)


def _pct(level: float) -> str:
    pct = 100.0 * level
    return f"{pct:g}".replace(".", "_")


def interval_table(draws: np.ndarray, levels: Sequence[float]) -> pd.DataFrame:
    """Median, mean and central intervals of draws (draws, points) at each level."""
    for level in levels:
        if not 0.0 < level < 1.0:
            raise ValueError(f"interval levels must be in (0, 1), got {level!r}")
    cols: dict[str, np.ndarray] = {
        "median": np.median(draws, axis=0),
        "mean": np.mean(draws, axis=0),
    }
    for level in levels:
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        cols[f"lower_{_pct(level)}"] = lo
        cols[f"upper_{_pct(level)}"] = hi
    return pd.DataFrame(cols)


def crossing_scales(
    curve: Curve,
    posterior: Mapping[str, np.ndarray],
    threshold: float,
    log_x_grid: np.ndarray,
    center: float,
    *,
    below: bool = True,
) -> np.ndarray:
    """Smallest scale on the grid where each draw's mean curve crosses ``threshold``.

    Returns one value per draw: the x where the curve first goes below (or above, with
    ``below=False``) the threshold, linearly interpolated in log-log space between grid
    points; NaN for draws that do not cross within the grid.
    """
    log_x_grid = np.sort(np.asarray(log_x_grid, dtype=float))
    log_y = log_curve_draws(curve, posterior, (log_x_grid - center)[:, None])
    log_t = np.log(threshold)
    side = log_y < log_t if below else log_y > log_t
    crossed = side.any(axis=1)
    first = np.argmax(side, axis=1)
    out = np.full(log_y.shape[0], np.nan)
    rows = np.flatnonzero(crossed)
    for r in rows:
        j = first[r]
        if j == 0:
            out[r] = np.exp(log_x_grid[0])
            continue
        y0, y1 = log_y[r, j - 1], log_y[r, j]
        t = (log_t - y0) / (y1 - y0) if y1 != y0 else 1.0
        out[r] = np.exp(log_x_grid[j - 1] + t * (log_x_grid[j] - log_x_grid[j - 1]))
    return out
