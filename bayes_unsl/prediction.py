"""Posterior predictions as pure functions of posterior draws and log inputs.

Nothing here knows how the draws were made: the inputs are a curve function (a form of
:mod:`bayes_unsl.forms`, as a model's ``curve``), a dict of arrays with one row per draw
holding its parameters and the noise scale ``sigma``, and the log inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayes_unsl.models.likelihood import NOISE_TREND_SITE, noise_scale

Curve = Callable[[Mapping[str, jax.Array], jax.Array], jax.Array]

__all__ = [
    "FutureBreak",
    "crossing_scales",
    "draw_future_break",
    "interval_table",
    "log_curve_draws",
    "predictive_draws",
]


@dataclass(frozen=True)
class FutureBreak:
    """One further break per draw, past the last observation ``u_max`` (u = log x - center).

    ``location``, ``slope_change`` and ``sharpness`` are arrays with one value per draw,
    in u units. The break changes the slope of log M (the reducible part) by
    ``-slope_change`` (positive: toward the limit); its term is taken relative to its value
    at ``u_max``, so that the curve is unchanged up to the last observation and only bends
    past it. ``column``: the input it bends along (a multi-input fit has one per input,
    each past that input's largest observation; their terms add).
    """

    u_max: float
    location: np.ndarray
    slope_change: np.ndarray
    sharpness: np.ndarray
    column: int = 0

    def apply(self, log_y: np.ndarray, log_a: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Bend the mean curves ``log_y`` (draws, points) at ``u`` (points,), the values of
        this break's input."""
        f = self.sharpness[:, None]
        d = self.location[:, None]
        past = np.maximum(u[None, :], self.u_max)
        term = (
            self.slope_change[:, None]
            * f
            * (np.logaddexp(0.0, (past - d) / f) - np.logaddexp(0.0, (self.u_max - d) / f))
        )
        log_a = np.broadcast_to(np.asarray(log_a, dtype=float)[:, None], log_y.shape)
        # log M = log(y - a), computed without cancellation: y > a on every draw.
        with np.errstate(divide="ignore"):
            log_m = log_y + np.log1p(-np.exp(np.minimum(log_a - log_y, 0.0)))
        # Up to the last observation the curve is returned as it was, bit for bit.
        return np.where(u[None, :] > self.u_max, np.logaddexp(log_a, log_m - term), log_y)


def draw_future_break(
    priors, n_draws: int, half_range: float, y_spread: float, u_max: float, rng, column: int = 0
) -> FutureBreak | None:
    """Draws of the break past the data from its prior; None where the rate is 0.

    The distance past the last observation is Exponential(``future_break_rate``) decades;
    the slope change of log M turns toward the limit or away from it with equal chance, by
    a half-normal of sd ``future_slope_sd`` or ``future_away_sd`` (per unit of log x), where
    that is 0 of sd ``break_slope_sd`` * ``y_spread`` per unit of z; the sharpness has the
    prior of the fitted breaks. The data carry no
    information about such a break, so its posterior is its prior: it is drawn at
    prediction time, one per posterior draw, and does not enter the likelihood.
    """
    rate = getattr(priors, "future_break_rate", 0.0)
    if rate <= 0:
        return None
    decades = rng.exponential(1.0 / rate, size=n_draws)
    relative = priors.break_slope_sd * y_spread / half_range
    toward = getattr(priors, "future_slope_sd", 0.0) or relative
    away = getattr(priors, "future_away_sd", toward) or relative
    # One standard normal per draw: its sign picks the direction, so a symmetric setting
    # gives the same draws as a normal of that sd.
    standard = rng.standard_normal(size=n_draws)
    slope = np.where(standard > 0, toward, away) * standard
    log_f = rng.normal(math.log(priors.sharpness_median), priors.sharpness_sd, size=n_draws)
    return FutureBreak(
        u_max=float(u_max),
        location=u_max + decades * math.log(10.0),
        slope_change=slope,
        sharpness=(priors.sharpness_floor + np.exp(log_f)) * half_range,
        column=column,
    )


Futures = FutureBreak | Sequence[FutureBreak] | None
"""No further break, one, or one per input."""


def _breaks(future: Futures) -> tuple[FutureBreak, ...]:
    if future is None:
        return ()
    return (future,) if isinstance(future, FutureBreak) else tuple(future)


def log_curve_draws(
    curve: Curve,
    posterior: Mapping[str, np.ndarray],
    u: np.ndarray,
    future: Futures = None,
) -> np.ndarray:
    """Mean curve log y for every draw, shape (draws, points); ``u = log x - center``, (n, m).

    ``future``: breaks past the data to bend every draw by (one per input at most).
    """
    params = {k: jnp.asarray(v) for k, v in posterior.items()}
    out = np.asarray(jax.jit(jax.vmap(curve, in_axes=(0, None)))(params, jnp.asarray(u)))
    for bend in _breaks(future):
        out = bend.apply(out, np.asarray(posterior["log_a"]), np.asarray(u)[:, bend.column])
    return out


def predictive_draws(
    curve: Curve,
    posterior: Mapping[str, np.ndarray],
    u: np.ndarray,
    *,
    likelihood: str,
    student_df: float,
    rng: np.random.Generator,
    future: Futures = None,
    half_range: np.ndarray | None = None,
    noise_floor: float = 0.0,
) -> np.ndarray:
    """Posterior predictive draws of y (noise included), shape (draws, points).

    With likelihood "ou" each new point gets the error's full sd ``sigma``, independent of
    the fitted points' errors: past the data, where the correlation has died away, that is
    the process itself; next to the last fitted point it is a little wider than it.
    Where the posterior has a noise trend (site ``noise_slope``), each point's scale is
    that of its standardised inputs ``u / half_range`` (``half_range`` then required), the
    trend carried past the data.
    """
    mu = log_curve_draws(curve, posterior, u, future)
    sigma = np.asarray(posterior["sigma"])[:, None]
    if NOISE_TREND_SITE in posterior:
        if half_range is None:
            raise ValueError("a posterior with a noise trend needs half_range")
        z = np.asarray(u, dtype=float) / np.asarray(half_range, dtype=float)
        slope = np.asarray(posterior[NOISE_TREND_SITE])
        sigma = np.asarray(noise_scale(sigma, slope, z, noise_floor))
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
    future: Futures = None,
) -> np.ndarray:
    """Smallest scale on the grid where each draw's mean curve crosses ``threshold``.

    Returns one value per draw: the x where the curve first goes below (or above, with
    ``below=False``) the threshold, linearly interpolated in log-log space between grid
    points; NaN for draws that do not cross within the grid.
    """
    log_x_grid = np.sort(np.asarray(log_x_grid, dtype=float))
    log_y = log_curve_draws(curve, posterior, (log_x_grid - center)[:, None], future)
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
