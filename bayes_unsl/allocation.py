"""Compute-optimal allocation of a budget between model size N and data D, with uncertainty.

Under a fitted law L(N, D), a compute budget C is spent best at the N that minimises the
curve along the iso-cost line ``cost(N, D) = C``. Every posterior draw has its own optimum,
so the allocation comes out as draws: their spread says how firmly the data fix where the
next budget should go, which a point fit cannot say.

The optimiser is numeric and knows nothing of the form: for each budget it solves the D that
spends the budget at each N of a log-N grid (bisection in log D, so any cost increasing in D
works), evaluates every draw's noise-free curve there, takes the best grid point and refines
it with a parabola through its neighbours. A draw whose optimum is at the edge of the search
range has no interior optimum there (the allocation is not identified by that draw); such
draws are flagged and warned about rather than silently clipped.

For the Chinchilla form with cost 6ND there is also a closed form (N* ∝ C^a with
a = beta / (alpha + beta)); :func:`allocation_exponents` gives the posterior of its exponents.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayes_unsl._precision import precision_scope
from bayes_unsl.prediction import interval_table

if TYPE_CHECKING:
    from bayes_unsl.fit import Fit

__all__ = [
    "Allocation",
    "AllocationEdgeWarning",
    "IsoCostOptimum",
    "allocation_exponents",
    "compute_optimal",
    "iso_cost_minimum",
]

Cost = Callable[[np.ndarray, np.ndarray], Any]
"""``cost(N, D) -> FLOPs`` (or any unit of the budget): vectorised, increasing in D."""

LogLoss = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``log_loss(log_n, log_d) -> (draws, k)``: inputs shared (k,) or one row per draw (draws, k)."""

DEFAULT_N_GRID = 256
RATIO_MARGIN = 1e3
"""The default search reaches this factor past the data's smallest and largest D/N."""

QUANTITIES = ("N", "D", "tokens_per_param", "loss")

# Searches for log N and log D stay where 6 N D neither overflows nor underflows.
_LOG_BOUND = 230.0
_EXPANSIONS = 16
_BISECTIONS = 64


class AllocationEdgeWarning(UserWarning):
    """Some draws put the optimum at the edge of the search range: not identified there."""


@dataclass(frozen=True)
class IsoCostOptimum:
    """One budget's optimum per draw: logs of N*, D* and the loss, and the edge flags."""

    log_n: np.ndarray
    log_d: np.ndarray
    log_loss: np.ndarray
    at_edge: np.ndarray


@dataclass(frozen=True, eq=False)
class Allocation:
    """Posterior draws of the compute-optimal allocation, one row per budget and draw.

    ``draws`` columns: ``budget``, ``draw``, ``N``, ``D``, ``tokens_per_param`` (D*/N*),
    ``loss`` (the noise-free curve at the optimum) and ``at_edge`` (the optimum lies at the
    edge of the search range, so N* there is a bound, not an optimum). ``inputs``: the fit's
    names of the columns used as N and D.
    """

    draws: pd.DataFrame
    inputs: tuple[str, str]

    @property
    def edge_fraction(self) -> pd.Series:
        """Fraction of draws per budget whose optimum is at the edge of the search range."""
        return self.draws.groupby("budget", sort=False)["at_edge"].mean()

    def summary(self, levels: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
        """Median and central intervals of each quantity per budget, with the edge fraction.

        One row per budget and quantity; columns ``budget``, ``quantity``, ``median``,
        ``lower_<pct>``, ``upper_<pct>`` and ``edge_fraction``. Edge draws are included at
        their bound, so a large edge fraction means the interval is too narrow.
        """
        rows = []
        for budget, group in self.draws.groupby("budget", sort=False):
            table = interval_table(group[list(QUANTITIES)].to_numpy(), levels)
            table = table.drop(columns="mean")
            table.insert(0, "quantity", list(QUANTITIES))
            table.insert(0, "budget", budget)
            table["edge_fraction"] = float(group["at_edge"].mean())
            rows.append(table)
        return pd.concat(rows, ignore_index=True)


# -- the numeric optimiser (pure numpy, any curve) ---------------------------------------


def _call_cost(cost: Cost, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = np.asarray(cost(n, d), dtype=float)
    try:
        out = np.broadcast_to(out, n.shape)
    except ValueError as err:
        raise ValueError(
            f"cost(N, D) must be vectorised: got shape {out.shape} for inputs of shape {n.shape}"
        ) from err
    bad = np.isnan(out) | (out <= 0)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise ValueError(
            f"cost(N, D) must be positive, got {float(out.ravel()[i])!r} at "
            f"N={n.ravel()[i]:.4g}, D={d.ravel()[i]:.4g}"
        )
    return out


def _solve_increasing(
    spend: Callable[[np.ndarray], np.ndarray], budget: float, guess: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """x with ``spend(x) = budget`` for increasing ``spend``, elementwise; and where it exists.

    Brackets from ``guess`` by doubling steps within +-``_LOG_BOUND``, then bisects. Where no
    x in the bounds spends the budget the result is NaN and ``feasible`` False.
    """
    guess = np.clip(guess, -_LOG_BOUND + 1.0, _LOG_BOUND - 1.0)
    lo, hi, step = guess - 1.0, guess + 1.0, 2.0
    for _ in range(_EXPANSIONS):
        low_ok = spend(lo) < budget
        high_ok = spend(hi) >= budget
        if np.all(low_ok | (lo <= -_LOG_BOUND)) and np.all(high_ok | (hi >= _LOG_BOUND)):
            break
        lo = np.where(low_ok, lo, np.maximum(lo - step, -_LOG_BOUND))
        hi = np.where(high_ok, hi, np.minimum(hi + step, _LOG_BOUND))
        step *= 2.0
    feasible = (spend(lo) < budget) & (spend(hi) >= budget)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        above = spend(mid) >= budget
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(feasible, 0.5 * (lo + hi), np.nan), feasible


def _solve_log_d(
    cost: Cost | None, log_n: np.ndarray, budget: float
) -> tuple[np.ndarray, np.ndarray]:
    """log D that spends ``budget`` at each log N; exact for the default 6 N D."""
    log_n = np.asarray(log_n, dtype=float)
    guess = math.log(budget / 6.0) - log_n
    if cost is None:
        return guess, np.ones(log_n.shape, dtype=bool)
    n = np.exp(log_n)
    return _solve_increasing(lambda x: _call_cost(cost, n, np.exp(x)), budget, guess)


def iso_cost_minimum(
    log_loss: LogLoss,
    budget: float,
    log_n_range: tuple[float, float],
    *,
    cost: Cost | None = None,
    n_grid: int = DEFAULT_N_GRID,
) -> IsoCostOptimum:
    """Each draw's minimum of ``log_loss`` along ``cost(N, D) = budget``, log N in a range.

    ``log_loss(log_n, log_d)`` returns (draws, k) for log inputs of shape (k,) shared by all
    draws or (draws, k), one row per draw. The grid is shared by all draws, so the curve is
    evaluated once per budget; the parabola through the best grid point and its neighbours
    then places the optimum well inside a grid step, and the loss is evaluated there. A draw
    whose best grid point is the first or last feasible one is flagged ``at_edge`` and kept
    at that point.
    """
    lo, hi = (float(v) for v in log_n_range)
    grid = np.linspace(lo, hi, n_grid)
    log_d, feasible = _solve_log_d(cost, grid, budget)
    if not feasible.any():
        raise ValueError(
            f"no N in [{math.exp(lo):.3g}, {math.exp(hi):.3g}] can spend the budget "
            f"{budget:.4g}: is cost(N, D) increasing in D, and in the budget's units?"
        )
    values = np.asarray(log_loss(grid, np.where(feasible, log_d, 0.0)), dtype=float)
    values = np.where(feasible[None, :] & ~np.isnan(values), values, np.inf)
    rows = np.arange(values.shape[0])
    best = np.argmin(values, axis=1)
    mid = np.clip(best, 1, n_grid - 2)
    f0, f1, f2 = values[rows, mid - 1], values[rows, mid], values[rows, mid + 1]
    edge = (best == 0) | (best == n_grid - 1) | ~np.isfinite(f0) | ~np.isfinite(f2)
    step = grid[1] - grid[0]
    curvature = f0 - 2.0 * f1 + f2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(~edge & (curvature > 0), 0.5 * step * (f0 - f2) / curvature, 0.0)
    log_n_grid = grid[best]
    log_n = log_n_grid + np.clip(shift, -step, step)
    log_d_star, ok = _solve_log_d(cost, log_n, budget)
    refined = np.asarray(
        log_loss(log_n[:, None], np.where(ok, log_d_star, 0.0)[:, None]), dtype=float
    )[:, 0]
    grid_best = values[rows, best]
    # The vertex is kept only where it is feasible and no worse than the grid point.
    use = ok & (refined <= grid_best)
    return IsoCostOptimum(
        log_n=np.where(use, log_n, log_n_grid),
        log_d=np.where(use, log_d_star, log_d[best]),
        log_loss=np.where(use, refined, grid_best),
        at_edge=edge,
    )


# -- fits ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _evaluator(curve: Callable, per_draw: bool) -> Callable:
    """The curve for every draw at once, compiled once per curve and input layout."""
    return jax.jit(jax.vmap(curve, in_axes=(0, 0 if per_draw else None)))


def _index(names: tuple[str, ...], key: int | str, what: str) -> int:
    if isinstance(key, str):
        if key not in names:
            raise ValueError(f"{what} {key!r} is not an input of the fit; it uses {list(names)}")
        return names.index(key)
    if isinstance(key, bool) or not isinstance(key, int | np.integer):
        raise TypeError(f"{what} must be an input name or index, got {key!r}")
    if not 0 <= key < len(names):
        raise ValueError(f"{what} index {key} is out of range for the inputs {list(names)}")
    return int(key)


def _input_layout(
    names: tuple[str, ...], inputs: Sequence[int | str], at: Mapping[int | str, float] | None
) -> tuple[int, int, dict[int, float]]:
    """Columns of N and D, and the logs of the values at which the other inputs are held."""
    if len(names) < 2:
        raise ValueError(
            "compute-optimal allocation needs a fit with at least two inputs (model size N "
            f"and data D); this fit has {len(names)}: {list(names)}"
        )
    if isinstance(inputs, str) or len(inputs) != 2:
        raise ValueError(f"inputs must name two columns, N then D; got {inputs!r}")
    i_n, i_d = (_index(names, key, "input") for key in inputs)
    if i_n == i_d:
        raise ValueError(f"inputs must be two different columns, got {inputs!r}")
    fixed: dict[int, float] = {}
    for key, value in (at or {}).items():
        j = _index(names, key, "at=")
        if j in (i_n, i_d):
            raise ValueError(f"at= holds {names[j]!r} fixed, but it is N or D of the allocation")
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"at={{{names[j]!r}: {value!r}}} must be positive and finite")
        fixed[j] = math.log(value)
    missing = [names[j] for j in range(len(names)) if j not in (i_n, i_d, *fixed)]
    if missing:
        raise ValueError(
            f"the fit has inputs {list(names)}; give the values at which to hold {missing} "
            "with at={name: value}"
        )
    return i_n, i_d, fixed


def _budgets(budget: Any) -> np.ndarray:
    try:
        values = np.asarray(budget, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"budget must be a number or a 1-D array of numbers: {err}") from err
    if values.ndim > 1 or values.size == 0:
        raise ValueError(f"budget must be a number or a non-empty 1-D array, got {budget!r}")
    values = np.atleast_1d(values)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        raise ValueError(f"budgets must be positive and finite, got {values[bad].tolist()}")
    return values


def _span(span: tuple[float, float] | None) -> tuple[float, float] | None:
    if span is None:
        return None
    lo, hi = (float(v) for v in span)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"span must be (N_min, N_max) with 0 < N_min < N_max, got {span!r}")
    return math.log(lo), math.log(hi)


def _default_range(
    cost: Cost | None, budget: float, log_ratios: tuple[float, float]
) -> tuple[float, float]:
    """log N on the iso-cost line between the data's extreme D/N, widened by RATIO_MARGIN."""
    targets = np.array(
        [log_ratios[1] + math.log(RATIO_MARGIN), log_ratios[0] - math.log(RATIO_MARGIN)]
    )
    guess = 0.5 * (math.log(budget / 6.0) - targets)
    if cost is None:
        return float(guess[0]), float(guess[1])
    ratios = np.exp(targets)
    log_n, ok = _solve_increasing(
        lambda x: _call_cost(cost, np.exp(x), ratios * np.exp(x)), budget, guess
    )
    if not ok.all():
        raise ValueError(
            f"could not place a default search range for the budget {budget:.4g} "
            "(is cost(N, D) increasing in N and D?); give span=(N_min, N_max)"
        )
    return float(log_n[0]), float(log_n[1])


def _fit_log_loss(fit: Fit, i_n: int, i_d: int, fixed: dict[int, float]) -> LogLoss:
    """The fit's noise-free log curve per draw as a function of log N and log D."""
    center = np.asarray(fit.scaling.center, dtype=float)
    m = len(fit.x_names)
    posterior = {k: jnp.asarray(v) for k, v in fit.parameter_draws().items()}

    def log_loss(log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
        log_n, log_d = np.broadcast_arrays(np.asarray(log_n), np.asarray(log_d))
        log_x = np.empty(log_n.shape + (m,))
        log_x[..., i_n] = log_n
        log_x[..., i_d] = log_d
        for j, value in fixed.items():
            log_x[..., j] = value
        evaluate = _evaluator(fit.form.curve, log_n.ndim == 2)
        return np.asarray(evaluate(posterior, jnp.asarray(log_x - center)))

    return log_loss


def compute_optimal(
    fit: Fit,
    budget: float | Sequence[float] | np.ndarray,
    *,
    cost: Cost | None = None,
    inputs: Sequence[int | str] = (0, 1),
    at: Mapping[int | str, float] | None = None,
    n_grid: int = DEFAULT_N_GRID,
    span: tuple[float, float] | None = None,
) -> Allocation:
    """Posterior draws of the compute-optimal N*, D*, D*/N* and loss for each budget.

    ``budget``: a compute budget C or a 1-D array of them, in the units of ``cost``.
    ``cost(N, D)``: the compute of training N parameters on D tokens (default ``6 N D``
    FLOPs); vectorised and increasing in D, and, for the default search range, in N.
    ``inputs``: the fit's columns (names or indices) that are N and D. ``at``: the values
    at which any further inputs are held (required when the fit has more than two).
    ``span``: the range (N_min, N_max) searched for every budget; by default, for each
    budget, the stretch of its iso-cost line whose tokens per parameter reach from
    ``RATIO_MARGIN`` times below the smallest to that many times above the largest D/N in
    the data. ``n_grid``: grid points in log N.

    The loss is the noise-free curve (the median of the predictive under a likelihood on
    log y). Warns (:class:`AllocationEdgeWarning`) when some draws' optimum lies at the edge
    of the search range: there the allocation is not identified, and the reported N* is
    only the edge.
    """
    if cost is not None and not callable(cost):
        raise TypeError(f"cost must be a callable cost(N, D), got {cost!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int | np.integer) or n_grid < 5:
        raise ValueError(f"n_grid must be an integer of at least 5, got {n_grid!r}")
    names = tuple(fit.x_names)
    i_n, i_d, fixed = _input_layout(names, inputs, at)
    budgets = _budgets(budget)
    log_span = _span(span)
    x_obs = np.asarray(fit.idata.constant_data["x"].values, dtype=float)
    log_ratio = np.log(x_obs[:, i_d]) - np.log(x_obs[:, i_n])
    log_ratios = (float(log_ratio.min()), float(log_ratio.max()))
    frames = []
    with precision_scope("float64"):
        log_loss = _fit_log_loss(fit, i_n, i_d, fixed)
        for c in budgets:
            c = float(c)
            log_range = log_span or _default_range(cost, c, log_ratios)
            opt = iso_cost_minimum(log_loss, c, log_range, cost=cost, n_grid=int(n_grid))
            frames.append(
                pd.DataFrame(
                    {
                        "budget": c,
                        "draw": np.arange(opt.log_n.size),
                        "N": np.exp(opt.log_n),
                        "D": np.exp(opt.log_d),
                        "tokens_per_param": np.exp(opt.log_d - opt.log_n),
                        "loss": np.exp(opt.log_loss),
                        "at_edge": opt.at_edge,
                    }
                )
            )
    result = Allocation(pd.concat(frames, ignore_index=True), (names[i_n], names[i_d]))
    _warn_edges(result.edge_fraction)
    return result


def _warn_edges(fraction: pd.Series) -> None:
    flagged = fraction[fraction > 0]
    if flagged.empty:
        return
    listed = ", ".join(f"{f:.0%} at budget {c:.3g}" for c, f in flagged.items())
    warnings.warn(
        f"the optimum lies at the edge of the search range for {listed} of the draws: the "
        "allocation is not identified there (its N* is only a bound); widen span= or check "
        "that the budget is not far outside the data",
        AllocationEdgeWarning,
        stacklevel=3,
    )


def allocation_exponents(fit: Fit) -> pd.DataFrame:
    """Posterior draws of the Chinchilla allocation exponents, one row per draw.

    With cost 6ND the optimum of ``E + A/N^alpha + B/D^beta`` scales as N* ∝ C^a and
    D* ∝ C^b, ``a = beta / (alpha + beta)`` and ``b = alpha / (alpha + beta) = 1 - a``;
    columns ``alpha``, ``beta``, ``a``, ``b``. Only the Chinchilla form has them in closed
    form; for other forms, run :func:`compute_optimal` at several budgets.
    """
    if fit.spec.form != "chinchilla":
        raise ValueError(
            f"allocation exponents are defined for the 'chinchilla' form, not {fit.spec.form!r};"
            " use compute_optimal at several budgets instead"
        )
    draws = fit.parameter_draws()
    alpha = np.asarray(draws["alpha"], dtype=float)
    beta = np.asarray(draws["beta"], dtype=float)
    frame = pd.DataFrame(
        {"alpha": alpha, "beta": beta, "a": beta / (alpha + beta), "b": alpha / (alpha + beta)}
    )
    frame.index.name = "draw"
    return frame
