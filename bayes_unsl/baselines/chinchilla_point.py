"""Chinchilla form (CF) and data-constrained form (DC) fitted as in Chinchilla's approach 3.

Hoffmann et al. 2022 (approach 3), as replicated by Epoch AI (arXiv 2404.10102), fit
``y = E + A / N^alpha + B / D^beta`` by minimising, over the points, the sum of
``Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log y)`` with delta = 1e-3 and
``a, b, e = log A, log B, log E``, by L-BFGS from every point of a grid (alpha, beta in
0..2.5 step 0.5; e in -1..1.5 step 0.5; a, b in 0..25 step 5), keeping the lowest
objective. The tiny delta makes the loss nearly an absolute error in log y: robust to a
few bad runs, which is why the method uses it. Three deliberate departures, none of which
changes the objective:

* The objective is evaluated at all 7,776 grid points at once (vectorised), and L-BFGS is
  run only from the ``N_STARTS`` best of them (grid points that tie, i.e. one fit in
  disguise, count once); these get ``SCREEN_ITER`` iterations each and the ``KEEP`` best
  are run to convergence. Most of the grid lies far from the data (intercepts of 25 with
  slopes of 0, ...) and flows into the same few optima; the best starts reach them, at a
  small fraction of the cost of 7,776 full runs (about 0.5 s for 200 points).
* L-BFGS works on intercepts centred at the mean log N and log D (``a - alpha mean(log N)``,
  likewise b). Raw log counts near 20 make a and alpha almost collinear, which slows
  quasi-Newton steps; the shift is undone in the reported parameters.
* The objective is divided by delta, so it reads as a sum of absolute log errors and
  L-BFGS-B's stopping rule, relative to ``max(|f|, 1)``, does not stop it early on a loss
  that is small only because delta is small.

DC (Muennighoff et al. 2023, arXiv 2305.16264) is CF at effective counts N', D' that
discount repeated tokens and excess parameters (:func:`bayes_unsl.forms.data_constrained`);
it adds ``log_r_d_star`` and ``log_r_n_star`` and takes ``log_tokens_per_param`` as given.
Its objective is computed with that JAX form, so fit and form agree by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import OptimizeResult, minimize
from scipy.special import logsumexp

from bayes_unsl._precision import precision_scope
from bayes_unsl.baselines._core import PointFit, check_xy, frozen_params
from bayes_unsl.forms.chinchilla import (
    DEFAULT_LOG_TOKENS_PER_PARAM,
    data_constrained,
    effective_counts,
)

__all__ = [
    "CF_NAMES",
    "DC_NAMES",
    "GRID",
    "N_STARTS",
    "R_STAR_GRID",
    "chinchilla_log_y",
    "fit_chinchilla_point",
    "fit_data_constrained_point",
]

CF_NAMES = ("log_e", "log_a", "log_b", "alpha", "beta")
DC_NAMES = (*CF_NAMES, "log_r_d_star", "log_r_n_star")
CF_COLUMNS = ("N", "D")
DC_COLUMNS = ("N", "D", "U_D")

GRID = {
    "log_e": np.arange(-1.0, 1.51, 0.5),
    "log_a": np.arange(0.0, 25.1, 5.0),
    "log_b": np.arange(0.0, 25.1, 5.0),
    "alpha": np.arange(0.0, 2.51, 0.5),
    "beta": np.arange(0.0, 2.51, 0.5),
}
"""The approach-3 grid of starting values: 6^5 = 7,776 points."""

N_STARTS = 20
"""Best grid points (by initial objective) from which L-BFGS is run."""

R_STAR_GRID = {"r_d_star": (3.0, 15.0, 75.0), "r_n_star": (1.0, 5.0, 25.0)}
"""DC: decay constants crossed with the CF grid, a factor of 5 either side of the
paper's fits (about 15 and 5)."""

R_STAR_BOUNDS = (math.log(1e-2), math.log(1e4))
"""DC: bounds on log R*. Without repetition R* has no effect on the fit (zero gradient);
with little, it can drift far in a flat direction. The bounds keep L-BFGS from chasing it."""

PAPER_R_STAR = (math.log(15.0), math.log(5.0))
"""Log R_D*, log R_N* used when a DC fit is started from a CF fit."""

LBFGS_OPTIONS = {"ftol": 1e-15, "gtol": 1e-10, "maxcor": 20}
"""Tight tolerances: the objective is small near a good fit, and noise-free data should
give back their parameters to many digits."""
MAX_ITER = 2000
SCREEN_ITER = 30
"""Iterations each start gets before the ``KEEP`` best are run to convergence."""
KEEP = 3

_CHUNK = 2_000_000  # floats per batch of the vectorised grid objective


# ------------------------------------------------------------------------------------------
# the form and the objective in NumPy (CF)
# ------------------------------------------------------------------------------------------


def chinchilla_log_y(params: Mapping[str, Any], log_n: Any, log_d: Any) -> np.ndarray:
    """NumPy twin of :func:`bayes_unsl.forms.chinchilla`: log y of CF at log N, log D.

    Kept in NumPy so L-BFGS runs without JAX dispatch; a test checks it against the form.
    """
    log_n, log_d = np.asarray(log_n, dtype=float), np.asarray(log_d, dtype=float)
    terms = np.broadcast_arrays(
        params["log_e"],
        params["log_a"] - params["alpha"] * log_n,
        params["log_b"] - params["beta"] * log_d,
    )
    return logsumexp(np.stack(terms), axis=0)


def _huber_over_delta(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss divided by delta: ``r^2 / (2 delta)`` inside, ``|r| - delta / 2`` outside."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r / delta, a - 0.5 * delta)


def _grid_points() -> np.ndarray:
    """All grid points as rows of (log_e, log_a, log_b, alpha, beta)."""
    axes = np.meshgrid(*(GRID[k] for k in CF_NAMES), indexing="ij")
    return np.stack([g.ravel() for g in axes], axis=1)


def _grid_objective(
    log_n: np.ndarray, log_d: np.ndarray, log_y: np.ndarray, delta: float
) -> np.ndarray:
    """The (scaled) Huber objective of CF at every grid point, in the order of
    :func:`_grid_points`; inf where it is not finite.

    The A term depends only on (a, alpha) and the B term only on (b, beta), so each is
    exponentiated once on its 36-point subgrid and the 7,776 sums are formed by
    broadcasting. Terms are scaled by the largest of any grid point at each run, so none
    overflows; a grid point whose every term underflows scores inf, which only a point far
    worse than another can do. Runs are taken in chunks to bound memory.
    """
    e, a, b = GRID["log_e"], GRID["log_a"], GRID["log_b"]
    alpha, beta = GRID["alpha"], GRID["beta"]
    scores = np.zeros((e.size, a.size, alpha.size, b.size, beta.size))
    step = max(1, _CHUNK // scores.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        for lo in range(0, log_y.size, step):
            ln, ld, ly = log_n[lo : lo + step], log_d[lo : lo + step], log_y[lo : lo + step]
            t_a = a[:, None, None] - alpha[None, :, None] * ln  # (a, alpha, run)
            t_b = b[:, None, None] - beta[None, :, None] * ld  # (b, beta, run)
            shift = np.maximum(np.maximum(t_a.max(axis=(0, 1)), t_b.max(axis=(0, 1))), e.max())
            p_e = np.exp(e[:, None] - shift)
            p_a, p_b = np.exp(t_a - shift), np.exp(t_b - shift)
            total = (
                p_e[:, None, None, None, None, :]
                + p_a[None, :, :, None, None, :]
                + p_b[None, None, None, :, :, :]
            )
            r = np.log(total) + (shift - ly)
            scores += _huber_over_delta(r, delta).sum(axis=-1)
    scores = scores.transpose(0, 1, 3, 2, 4).ravel()  # to (e, a, b, alpha, beta) order
    return np.where(np.isfinite(scores), scores, np.inf)


def _cf_objective(
    theta: np.ndarray, u: np.ndarray, v: np.ndarray, log_y: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Objective and analytic gradient of CF at centred theta = (e, a_c, b_c, alpha, beta)."""
    t_a = theta[1] - theta[3] * u
    t_b = theta[2] - theta[4] * v
    top = np.maximum(np.maximum(t_a, t_b), theta[0])
    w_e, w_a, w_b = np.exp(theta[0] - top), np.exp(t_a - top), np.exp(t_b - top)
    total = w_e + w_a + w_b
    r = top + np.log(total) - log_y
    psi = np.clip(r, -delta, delta) / (delta * total)  # Huber'(r) / delta, over the sum
    g_a, g_b = psi @ w_a, psi @ w_b  # each term's share of y is its d lse / d term
    grad = np.array([psi @ w_e, g_a, g_b, -(psi * w_a) @ u, -(psi * w_b) @ v])
    return float(_huber_over_delta(r, delta).sum()), grad


# ------------------------------------------------------------------------------------------
# DC in JAX
# ------------------------------------------------------------------------------------------


def _cf_params(theta: Any, centre_n: float, centre_d: float) -> dict[str, Any]:
    """CF parameters from centred theta = (e, a_c, b_c, alpha, beta, ...): the inverse of
    :func:`_centred`, in NumPy or JAX."""
    return {
        "log_e": theta[0],
        "log_a": theta[1] + theta[3] * centre_n,
        "log_b": theta[2] + theta[4] * centre_d,
        "alpha": theta[3],
        "beta": theta[4],
    }


def _dc_params(theta: Any, centre_n: float, centre_d: float, log_tpp: float) -> dict[str, Any]:
    """DC parameters from centred theta = (e, a_c, b_c, alpha, beta, log R_D*, log R_N*)."""
    return {
        **_cf_params(theta, centre_n, centre_d),
        "log_r_d_star": theta[5],
        "log_r_n_star": theta[6],
        "log_tokens_per_param": log_tpp,
    }


def _dc_loss(
    theta: jax.Array,
    log_x: jax.Array,
    log_y: jax.Array,
    weight: jax.Array,
    centre_n: float,
    centre_d: float,
    log_tpp: float,
    delta: float,
) -> jax.Array:
    """The scaled Huber objective of DC; rows of weight 0 are padding."""
    params = _dc_params(theta, centre_n, centre_d, log_tpp)
    r = data_constrained(params, log_x[:, 0], log_x[:, 1], log_x[:, 2]) - log_y
    a = jnp.abs(r)
    huber = jnp.where(a <= delta, 0.5 * r * r / delta, a - 0.5 * delta)
    return jnp.sum(weight * huber)


_dc_value_and_grad = jax.jit(jax.value_and_grad(_dc_loss))
_dc_jit = jax.jit(data_constrained)


def _padded_size(n: int) -> int:
    """Inputs are padded to a power of two (at least 16), so that data sets of different
    sizes share a few compiled programs instead of compiling one each."""
    return max(16, 1 << int(np.ceil(np.log2(max(n, 1)))))


def _pad_rows(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr`` with copies of its first row appended up to ``size`` rows (valid inputs)."""
    return np.concatenate([arr, np.repeat(arr[:1], size - arr.shape[0], axis=0)])


def _dc_log_y(params: Mapping[str, Any], log_x: np.ndarray) -> np.ndarray:
    """:func:`bayes_unsl.forms.data_constrained` in float64 at rows (log N, log D, log U_D)."""
    log_x = np.asarray(log_x, dtype=float)
    padded = _pad_rows(log_x, _padded_size(log_x.shape[0]))
    with precision_scope("float64"):
        arrays = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
        cols = [jnp.asarray(padded[:, j], dtype=jnp.float64) for j in range(3)]
        return np.asarray(_dc_jit(arrays, *cols), dtype=float)[: log_x.shape[0]]


# ------------------------------------------------------------------------------------------
# shared pieces
# ------------------------------------------------------------------------------------------


def _check_delta(delta: float) -> float:
    """delta as a float; it must be finite and > 0 for the loss to be a Huber loss."""
    delta = float(delta)
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be finite and > 0; got {delta!r}")
    return delta


def _start_values(start: PointFit, names: tuple[str, ...]) -> np.ndarray:
    """The named parameters of a previous fit, refusing a fit of another form."""
    missing = [k for k in names if k not in start.params]
    if missing:
        raise ValueError(
            f"start ({start.name}) lacks parameter(s) {', '.join(missing)}; pass a fit of "
            "the same form"
        )
    return np.array([float(start.params[k]) for k in names])


def _centred(raw: np.ndarray, centre_n: float, centre_d: float) -> np.ndarray:
    """Raw (e, a, b, alpha, beta, ...) to L-BFGS's (e, a - alpha c_N, b - beta c_D, ...)."""
    theta = np.array(raw, dtype=float)
    theta[1] -= theta[3] * centre_n
    theta[2] -= theta[4] * centre_d
    return theta


Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _lbfgs(
    fun: Objective, x0: np.ndarray, maxiter: int, bounds: list | None = None
) -> OptimizeResult | None:
    """One L-BFGS-B run (``fun`` returns value and gradient); None if it went non-finite."""
    options = {**LBFGS_OPTIONS, "maxiter": maxiter}
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    return res if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) else None


def _screened(problems: list[tuple[Objective, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
    """(index, end point) of the ``KEEP`` best of several (objective, start) problems, each
    run for ``SCREEN_ITER`` iterations.

    The starts mostly flow into one or two optima, and after a few dozen iterations it is
    plain which, so running every one to convergence would repeat the same work.
    """
    runs = [(i, _lbfgs(fun, x0, SCREEN_ITER)) for i, (fun, x0) in enumerate(problems)]
    done = sorted(((i, r) for i, r in runs if r is not None), key=lambda item: item[1].fun)
    return [(i, r.x) for i, r in done[:KEEP]]


def _converged(
    fun: Objective, starts: list[np.ndarray], bounds: list | None = None
) -> OptimizeResult:
    """L-BFGS to convergence from each start; the result of lowest objective."""
    results = [r for r in (_lbfgs(fun, x0, MAX_ITER, bounds) for x0 in starts) if r is not None]
    if not results:
        raise RuntimeError("L-BFGS failed from every start (non-finite objective)")
    return min(results, key=lambda r: r.fun)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest finite values, smallest first, one per distinct value.

    Grid points that tie (to 1e-9 relative) are almost always one fit in disguise, e.g.
    any A and alpha that make the A term negligible on the data; keeping one of each makes
    the ``k`` starts ``k`` different ones.
    """
    order = np.argsort(values, kind="stable")
    order = order[np.isfinite(values[order])]
    sorted_values = values[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = np.diff(sorted_values) > 1e-9 * np.maximum(np.abs(sorted_values[1:]), 1e-300)
    return order[new][:k]


# ------------------------------------------------------------------------------------------
# the fitters
# ------------------------------------------------------------------------------------------


def fit_chinchilla_point(
    x: Any, y: Any, *, delta: float = 1e-3, start: PointFit | None = None
) -> PointFit:
    """Fit CF, ``y = E + A / N^alpha + B / D^beta``, by approach 3 (see the module doc).

    x: (n, 2) raw counts, N parameters and D training tokens, one row a run; y: the loss.
    ``start``: a previous CF fit to refine instead of searching the grid (the residual
    bootstrap uses it). Returns a :class:`PointFit` named ``chinchilla`` with params
    ``log_e, log_a, log_b, alpha, beta``, which :func:`bayes_unsl.forms.chinchilla` takes
    at (log N, log D).
    """
    delta = _check_delta(delta)
    x, y = check_xy(x, y, len(CF_NAMES), "the Chinchilla form", len(CF_COLUMNS), CF_COLUMNS)
    log_n, log_d, log_y = np.log(x[:, 0]), np.log(x[:, 1]), np.log(y)
    centre_n, centre_d = float(log_n.mean()), float(log_d.mean())
    u, v = log_n - centre_n, log_d - centre_d

    objective = partial(_cf_objective, u=u, v=v, log_y=log_y, delta=delta)
    if start is not None:
        starts = [_centred(_start_values(start, CF_NAMES), centre_n, centre_d)]
    else:
        grid = _grid_points()
        top = _top(_grid_objective(log_n, log_d, log_y, delta), N_STARTS)
        problems = [(objective, _centred(grid[i], centre_n, centre_d)) for i in top]
        starts = [x0 for _, x0 in _screened(problems)]
    res = _converged(objective, starts)
    params = frozen_params(_cf_params(res.x, centre_n, centre_d))

    def log_predict(log_x: np.ndarray) -> np.ndarray:
        return chinchilla_log_y(params, log_x[:, 0], log_x[:, 1])

    msle = float(np.mean((log_predict(np.log(x)) - log_y) ** 2))
    return PointFit("chinchilla", params, log_predict, len(CF_NAMES), msle, 2, CF_COLUMNS)


def fit_data_constrained_point(
    x: Any,
    y: Any,
    *,
    delta: float = 1e-3,
    log_tokens_per_param: float = DEFAULT_LOG_TOKENS_PER_PARAM,
    start: PointFit | None = None,
) -> PointFit:
    """Fit DC (Muennighoff et al. 2023) by the approach-3 objective and L-BFGS.

    x: (n, 3) raw counts, N parameters, D training tokens and U_D unique tokens available,
    one row a run; y: the loss. ``log_tokens_per_param`` is fixed, not fitted (it sets the
    parameter count that the unique tokens seen can use, as in the paper).

    Starts: the CF grid crossed with ``R_STAR_GRID`` (9 pairs of R_D*, R_N*). DC with R*
    held fixed is CF at fixed effective counts, so each pair's counts are computed once
    (with the JAX form) and the grid and the screening runs use the CF objective at them;
    each grid point keeps its best pair. The ``KEEP`` best screened starts are then run on
    all 7 parameters with the JAX DC objective. The grid is searched jointly rather than in
    two stages (CF fitted to the runs without repetition, then all 7 from there) because
    that needs at least 5 such runs spanning N and D, and because the CF parameters that
    fit a data set with repetition best depend on R*. Where no run repeats data or has
    excess parameters (D <= U_D and N <= D / tokens_per_param), every pair scores alike,
    R* gets no gradient, and the fit is the CF fit.

    ``start``: a previous DC fit to refine instead (the bootstrap uses it), or a CF fit,
    taken with the paper's R* (15 and 5). Returns a :class:`PointFit` named
    ``data_constrained`` whose params (the CF ones plus ``log_r_d_star``, ``log_r_n_star``
    and the given ``log_tokens_per_param``) :func:`bayes_unsl.forms.data_constrained` takes
    at (log N, log D, log U_D). ``n_params`` is 7.
    """
    delta = _check_delta(delta)
    log_tpp = float(log_tokens_per_param)
    if not np.isfinite(log_tpp):
        raise ValueError(f"log_tokens_per_param must be finite; got {log_tokens_per_param!r}")
    x, y = check_xy(x, y, len(DC_NAMES), "the data-constrained form", 3, DC_COLUMNS)
    log_x, log_y = np.log(x), np.log(y)
    centre_n, centre_d = float(log_x[:, 0].mean()), float(log_x[:, 1].mean())

    with precision_scope("float64"):
        if start is not None:
            cf = _start_values(start, CF_NAMES)
            has_r_star = all(k in start.params for k in DC_NAMES[5:])
            r_star = _start_values(start, DC_NAMES[5:]) if has_r_star else np.array(PAPER_R_STAR)
            starts = [_centred(np.concatenate([cf, r_star]), centre_n, centre_d)]
        else:
            starts = _dc_screened_starts(log_x, log_y, log_tpp, delta, centre_n, centre_d)

        size = _padded_size(log_x.shape[0])
        args = (
            jnp.asarray(_pad_rows(log_x, size)),
            jnp.asarray(_pad_rows(log_y[:, None], size)[:, 0]),
            jnp.asarray(np.arange(size) < log_x.shape[0], dtype=jnp.float64),
            centre_n,
            centre_d,
            log_tpp,
            delta,
        )

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = _dc_value_and_grad(theta, *args)
            return float(value), np.asarray(grad, dtype=float)

        bounds = [(None, None)] * len(CF_NAMES) + [R_STAR_BOUNDS] * 2
        res = _converged(objective, starts, bounds)
    params = frozen_params(
        {k: float(val) for k, val in _dc_params(res.x, centre_n, centre_d, log_tpp).items()}
    )

    def log_predict(lx: np.ndarray) -> np.ndarray:
        return _dc_log_y(params, lx)

    msle = float(np.mean((log_predict(log_x) - log_y) ** 2))
    return PointFit("data_constrained", params, log_predict, len(DC_NAMES), msle, 3, DC_COLUMNS)


def _dc_screened_starts(
    log_x: np.ndarray,
    log_y: np.ndarray,
    log_tpp: float,
    delta: float,
    centre_n: float,
    centre_d: float,
) -> list[np.ndarray]:
    """Centred 7-parameter starts: the CF grid under each R* pair, best pair per grid
    point, the ``N_STARTS`` best screened with R* held fixed, the ``KEEP`` best kept."""
    grid = _grid_points()
    pairs = [
        (math.log(rd), math.log(rn))
        for rd in R_STAR_GRID["r_d_star"]
        for rn in R_STAR_GRID["r_n_star"]
    ]
    scores = np.empty((len(pairs), grid.shape[0]))
    counts = []
    for k, (lrd, lrn) in enumerate(pairs):
        fixed = {"log_r_d_star": lrd, "log_r_n_star": lrn, "log_tokens_per_param": log_tpp}
        log_n_eff, log_d_eff = (
            np.asarray(c, dtype=float) for c in effective_counts(fixed, *log_x.T)
        )
        counts.append((log_n_eff, log_d_eff))
        scores[k] = _grid_objective(log_n_eff, log_d_eff, log_y, delta)
    best_pair = np.argmin(scores, axis=0)
    top = _top(scores[best_pair, np.arange(grid.shape[0])], N_STARTS)

    objectives = [
        partial(_cf_objective, u=ln - centre_n, v=ld - centre_d, log_y=log_y, delta=delta)
        for ln, ld in counts
    ]
    problems = [(objectives[best_pair[i]], _centred(grid[i], centre_n, centre_d)) for i in top]
    return [np.concatenate([x0, pairs[best_pair[top[j]]]]) for j, x0 in _screened(problems)]
