"""Scores of predictive draws against held-out truth.

Every function here takes

* ``draws``: array of shape ``(n_draws, n_points)``, posterior predictive draws of ``y`` on
  the natural scale (not ``log y``), all strictly positive and finite;
* ``y_true``: array of shape ``(n_points,)``, the held-out observations, all strictly positive
  and finite.

Nothing here knows how the draws were made: any model that can produce draws can be scored.

Conventions (they follow the evaluation protocol of the NSL-PFN paper, arXiv 2505.23032):

* Quantiles are the sample quantiles of each column of ``draws`` (``numpy.quantile`` with its
  default linear interpolation). The central interval at level ``l`` is
  ``[q_{(1-l)/2}, q_{(1+l)/2}]`` and a point is covered when ``lo <= y <= hi``.
* RMSLE uses the predictive median and the natural log.
* The log predictive density is that of ``y`` itself, not of ``log y`` (see
  :func:`log_predictive_density` for the estimator and the Jacobian term).
* MSCE over a domain pools the held-out points of all its curves before computing coverage:
  use :func:`coverage_counts` (whose results add up) or :func:`pooled_msce` for that; the
  single-array :func:`msce` is the MSCE of one set of points only.
* CRPS, the interval score and the interval width are in the units of ``y``; divide ``y`` and
  the draws by a constant first (the ``scale`` argument of :func:`score_all`) to put curves
  of different magnitude on a common footing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "COVERAGE_LEVELS",
    "MSCE_LEVELS",
    "CoverageCounts",
    "central_interval",
    "coverage",
    "coverage_counts",
    "coverage_table",
    "crps",
    "interval_score",
    "interval_width",
    "log_predictive_density",
    "msce",
    "pit",
    "pool_coverage",
    "pooled_coverage_interval",
    "pooled_msce",
    "rmsle",
    "score_all",
    "score_names",
]

#: Levels of the coverage table reported beside the published protocol.
COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
#: Levels over which MSCE averages the squared coverage error.
MSCE_LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_draws(draws) -> np.ndarray:
    d = np.asarray(draws, dtype=float)
    if d.ndim != 2:
        raise ValueError(
            f"draws must be a 2-D array of shape (n_draws, n_points); got shape {d.shape}"
        )
    if d.shape[0] < 2:
        raise ValueError(f"draws must hold at least 2 draws (rows); got shape {d.shape}")
    if d.shape[1] < 1:
        raise ValueError(f"draws must hold at least 1 point (column); got shape {d.shape}")
    _check_finite_positive(d, "draws")
    return d


def _check_finite_positive(values: np.ndarray, name: str) -> None:
    """Scores take logs of natural-scale y: every value must be finite and > 0."""
    if not np.all(np.isfinite(values)):
        n_bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(f"{name} must be finite; found {n_bad} nan/inf")
    n_bad = int(np.sum(values <= 0))
    if n_bad:
        raise ValueError(
            f"{name} must be strictly positive (natural-scale y); found {n_bad} value(s) <= 0"
        )


def _check(draws, y_true) -> tuple[np.ndarray, np.ndarray]:
    d = _check_draws(draws)
    y = np.asarray(y_true, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of shape (n_points,); got shape {y.shape}")
    if y.shape[0] != d.shape[1]:
        raise ValueError(
            f"shape mismatch: draws has {d.shape[1]} points (columns) but y_true has "
            f"{y.shape[0]}; draws must have shape (n_draws, n_points)"
        )
    _check_finite_positive(y, "y_true")
    return d, y


def _check_level(level) -> float:
    lv = float(level)
    if not 0.0 < lv < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1; got {level!r}")
    return lv


def _check_levels(levels) -> tuple[float, ...]:
    lv = tuple(_check_level(v) for v in np.atleast_1d(np.asarray(levels, dtype=float)))
    if not lv:
        raise ValueError("levels must hold at least one level")
    return lv


def _apply_scale(d: np.ndarray, y: np.ndarray, scale) -> tuple[np.ndarray, np.ndarray]:
    """Divide draws and y by ``scale`` (a positive scalar or one value per point)."""
    s = np.asarray(scale, dtype=float)
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] != y.shape[0]):
        raise ValueError(
            f"scale must be a scalar or have shape (n_points,) = ({y.shape[0]},); "
            f"got shape {s.shape}"
        )
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("scale must be finite and strictly positive")
    return d / s, y / s


# --------------------------------------------------------------------------------------------
# intervals and coverage
# --------------------------------------------------------------------------------------------


def _nested_intervals(d: np.ndarray, levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Central intervals for several levels at once, shape (n_levels, n_points) each.

    Intervals are made exactly nested (a wider level never gives a narrower interval), so that
    rounding in the quantile interpolation cannot make coverage decrease with the level.
    """
    lv = np.asarray(levels, dtype=float)
    order = np.argsort(lv, kind="stable")
    lv_sorted = lv[order]
    q = np.concatenate([(1.0 - lv_sorted) / 2.0, (1.0 + lv_sorted) / 2.0])
    qs = np.quantile(d, q, axis=0)
    k = lv_sorted.shape[0]
    lo = np.minimum.accumulate(qs[:k], axis=0)
    hi = np.maximum.accumulate(qs[k:], axis=0)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.shape[0])
    return lo[inverse], hi[inverse]


def central_interval(draws, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Central predictive interval ``[q_{(1-l)/2}, q_{(1+l)/2}]`` per point.

    Returns ``(lo, hi)``, each of shape ``(n_points,)``.
    """
    d = _check_draws(draws)
    lo, hi = _nested_intervals(d, (_check_level(level),))
    return lo[0], hi[0]


@dataclass(frozen=True, eq=False)
class CoverageCounts:
    """How many points fell inside the central interval at each level.

    Counts from different curves add up (``a + b``, ``sum(counts)`` or
    :meth:`CoverageCounts.pool`), which is how coverage and MSCE are pooled over all held-out
    points of a domain.

    Attributes
    ----------
    levels:
        The nominal levels, in the order given.
    hits:
        Integer array, ``hits[i]`` = number of points inside the interval at ``levels[i]``.
    n_points:
        Number of points counted.
    """

    levels: tuple[float, ...]
    hits: np.ndarray
    n_points: int

    def __post_init__(self) -> None:
        hits = np.asarray(self.hits, dtype=np.int64)
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        object.__setattr__(self, "hits", hits)
        object.__setattr__(self, "n_points", int(self.n_points))
        if hits.shape != (len(self.levels),):
            raise ValueError(
                f"hits must have one count per level ({len(self.levels)}); got shape {hits.shape}"
            )
        if self.n_points < 0 or np.any(hits < 0) or np.any(hits > self.n_points):
            raise ValueError("counts must satisfy 0 <= hits <= n_points")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoverageCounts):
            return NotImplemented
        return (
            self.levels == other.levels
            and self.n_points == other.n_points
            and bool(np.array_equal(self.hits, other.hits))
        )

    def __hash__(self) -> int:
        return hash((self.levels, tuple(self.hits.tolist()), self.n_points))

    def __add__(self, other: CoverageCounts) -> CoverageCounts:
        if not isinstance(other, CoverageCounts):
            return NotImplemented
        if not np.allclose(self.levels, other.levels, rtol=0.0, atol=1e-12):
            raise ValueError(
                f"cannot pool coverage counts at different levels: {self.levels} vs {other.levels}"
            )
        return CoverageCounts(self.levels, self.hits + other.hits, self.n_points + other.n_points)

    def __radd__(self, other) -> CoverageCounts:
        # lets the built-in sum() start from 0
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    @classmethod
    def pool(cls, counts: Iterable[CoverageCounts]) -> CoverageCounts:
        """Add up the counts of several curves (at the same levels)."""
        items = list(counts)
        if not items:
            raise ValueError("nothing to pool: no coverage counts given")
        total = items[0]
        for c in items[1:]:
            total = total + c
        return total

    @property
    def coverage(self) -> np.ndarray:
        """Share of points covered at each level (shape ``(n_levels,)``)."""
        if self.n_points == 0:
            raise ValueError("coverage is undefined for zero points")
        return self.hits / self.n_points

    @property
    def msce(self) -> float:
        """Mean over levels of ``(coverage - level)**2``."""
        return float(np.mean((self.coverage - np.asarray(self.levels)) ** 2))

    def as_dict(self) -> dict[float, float]:
        """``{level: coverage}``."""
        return {lv: float(c) for lv, c in zip(self.levels, self.coverage, strict=True)}


def coverage_counts(draws, y_true, levels: Sequence[float] = MSCE_LEVELS) -> CoverageCounts:
    """Count the points inside the central interval at each level.

    The result can be added to the counts of other curves to pool coverage (and MSCE) over
    all held-out points of a domain.
    """
    d, y = _check(draws, y_true)
    lv = _check_levels(levels)
    lo, hi = _nested_intervals(d, lv)
    inside = (lo <= y) & (y <= hi)
    return CoverageCounts(lv, inside.sum(axis=1), y.shape[0])


def pool_coverage(
    curves: Iterable[tuple[np.ndarray, np.ndarray]], levels: Sequence[float] = MSCE_LEVELS
) -> CoverageCounts:
    """Pooled coverage counts over several ``(draws, y_true)`` pairs (e.g. curves of a domain).

    Each pair may have its own number of draws and of points.
    """
    return CoverageCounts.pool(coverage_counts(d, y, levels) for d, y in curves)


def pooled_coverage_interval(
    counts: Sequence[CoverageCounts],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Percentile interval of pooled coverage, resampling whole curves.

    The held-out points of one curve share its extrapolation error, so they are not
    independent draws: a pooled coverage of 40% over 15,000 points from 72 curves is known
    about as well as 72 points would tell. Curves are resampled with replacement and their
    counts pooled; returns an array of shape ``(n_levels, 2)`` (lower, upper).
    """
    items = list(counts)
    if not items:
        raise ValueError("nothing to resample: no coverage counts given")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    CoverageCounts.pool(items)  # checks that every curve has the same levels
    hits = np.stack([c.hits for c in items])
    n_points = np.array([c.n_points for c in items])
    if n_points.sum() == 0:
        raise ValueError("coverage is undefined for zero points")
    picks = np.random.default_rng(seed).integers(0, len(items), (n_resamples, len(items)))
    total = n_points[picks].sum(axis=1)
    # A resample of only empty curves has no coverage; it is left out.
    keep = total > 0
    pooled = hits[picks].sum(axis=1)[keep] / total[keep, None]
    tail = 100.0 * (1.0 - confidence) / 2.0
    return np.percentile(pooled, [tail, 100.0 - tail], axis=0).T


def coverage(draws, y_true, level: float) -> float:
    """Share of points inside the central interval ``[q_{(1-l)/2}, q_{(1+l)/2}]``."""
    return float(coverage_counts(draws, y_true, (level,)).coverage[0])


def coverage_table(draws, y_true, levels: Sequence[float] = COVERAGE_LEVELS) -> dict[float, float]:
    """Coverage at several levels, as ``{level: coverage}``."""
    return coverage_counts(draws, y_true, levels).as_dict()


def msce(draws, y_true, levels: Sequence[float] = MSCE_LEVELS) -> float:
    """Mean squared calibration error of one set of points.

    ``mean over levels of (coverage(l) - l)**2``. For the MSCE of a domain, which pools the
    held-out points of all its curves, use :func:`pooled_msce` (or add up
    :func:`coverage_counts`); averaging per-curve MSCE values gives a different number.
    """
    return coverage_counts(draws, y_true, levels).msce


def pooled_msce(
    curves: Iterable[tuple[np.ndarray, np.ndarray]], levels: Sequence[float] = MSCE_LEVELS
) -> float:
    """MSCE over all points of several ``(draws, y_true)`` pairs, pooled before squaring."""
    return pool_coverage(curves, levels).msce


# --------------------------------------------------------------------------------------------
# point error
# --------------------------------------------------------------------------------------------


def rmsle(draws, y_true) -> float:
    """Root mean squared log error of the predictive median.

    ``sqrt(mean((log median - log y)**2))`` with the natural log; the median is taken over
    draws, separately at each point.
    """
    d, y = _check(draws, y_true)
    med = np.median(d, axis=0)
    return float(np.sqrt(np.mean((np.log(med) - np.log(y)) ** 2)))


# --------------------------------------------------------------------------------------------
# log predictive density
# --------------------------------------------------------------------------------------------


def _kde_logpdf(samples: np.ndarray, x: np.ndarray, bw_method) -> np.ndarray:
    """Per-column Gaussian KDE log density of ``x[j]`` from ``samples[:, j]``.

    Same estimator as ``scipy.stats.gaussian_kde`` in one dimension: bandwidth = factor x the
    sample standard deviation (ddof=1), factor ``n**(-1/5)`` (Scott) or ``(3n/4)**(-1/5)``
    (Silverman) or a given number.
    """
    n = samples.shape[0]
    if isinstance(bw_method, str):
        if bw_method == "scott":
            factor = n ** (-0.2)
        elif bw_method == "silverman":
            factor = (0.75 * n) ** (-0.2)
        else:
            raise ValueError(
                f"bw_method must be 'scott', 'silverman' or a number; got {bw_method!r}"
            )
    else:
        factor = float(bw_method)
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError(f"a numeric bw_method must be positive; got {bw_method!r}")
    sd = np.std(samples, axis=0, ddof=1)
    flat = np.flatnonzero(~(sd > 0))
    if flat.size:
        raise ValueError(
            f"draws have zero spread at point(s) {flat.tolist()}; a density cannot be "
            "estimated from identical draws"
        )
    h = factor * sd
    z = (x[None, :] - samples) / h[None, :]
    return logsumexp(-0.5 * z**2, axis=0) - np.log(n) - np.log(h) - _LOG_SQRT_2PI


def log_predictive_density(
    draws,
    y_true,
    *,
    log_space: bool = True,
    scale=None,
    bw_method="scott",
    pointwise: bool = False,
):
    """Mean log predictive density of ``y`` itself (not of ``log y``), estimated from draws.

    At each point the predictive density is estimated by a one-dimensional Gaussian kernel
    density estimate over the draws of that point (the same estimator as
    ``scipy.stats.gaussian_kde``; Scott's bandwidth by default):

    * ``log_space=True`` (default): the KDE is fitted to ``log(draws)`` and evaluated at
      ``log y``, which gives the density of ``log y``; the Jacobian ``-log y`` is then added,
      so the result is ``log p(y) = log p_log(log y) - log y``, a density of ``y``. This suits
      the right-skewed, positive predictive distributions of scaling laws.
    * ``log_space=False``: the KDE is fitted to the draws themselves and evaluated at ``y``
      (no Jacobian). Its kernels may put mass below zero.

    Parameters
    ----------
    draws, y_true:
        Predictive draws ``(n_draws, n_points)`` and observations ``(n_points,)``.
    log_space:
        Where to fit the KDE (see above). Either way the result is a density of ``y``.
    scale:
        Optional positive constant (or one value per point). ``y`` and the draws are divided
        by it first, and the result is the log density of ``y / scale``. This equals the log
        density of ``y`` **plus** ``log(scale)``: ``log p_{y/s}(y/s) = log p_y(y) + log s``.
        The evaluation protocol divides double-descent curves by their largest context
        ``y`` before scoring; benchmark curves are not rescaled (``scale=None``).
    bw_method:
        ``"scott"`` (default), ``"silverman"``, or a positive number that multiplies the
        sample standard deviation of the (log) draws to give the bandwidth.
    pointwise:
        If true, return the per-point log densities (shape ``(n_points,)``) instead of their
        mean.

    Raises
    ------
    ValueError
        On bad shapes or non-positive values, or when the draws at some point are all equal
        (no density can be estimated from them).
    """
    d, y = _check(draws, y_true)
    if scale is not None:
        d, y = _apply_scale(d, y, scale)
    if log_space:
        log_y = np.log(y)
        lp = _kde_logpdf(np.log(d), log_y, bw_method) - log_y
    else:
        lp = _kde_logpdf(d, y, bw_method)
    return lp if pointwise else float(np.mean(lp))


# --------------------------------------------------------------------------------------------
# CRPS, interval score, width, PIT
# --------------------------------------------------------------------------------------------


def crps(draws, y_true, *, fair: bool = False, pointwise: bool = False):
    """Continuous ranked probability score of the draws, mean over points (lower is better).

    The sample CRPS at a point is that of the empirical distribution of its draws,
    ``E|X - y| - 0.5 E|X - X'|`` (``fair=False``, the default), computed in ``O(n log n)``
    through sorting by ``scoringrules.crps_ensemble``. With ``fair=True`` the second term is
    divided by ``n (n - 1)`` instead of ``n**2`` (the unbiased "fair" estimator of the CRPS
    of the distribution the draws come from).

    It is in the units of ``y`` (natural scale, not log).
    """
    d, y = _check(draws, y_true)
    try:
        import scoringrules as sr
    except ImportError as err:  # pragma: no cover - it is a declared dependency
        raise ImportError(
            "crps needs the 'scoringrules' package (pip install scoringrules)"
        ) from err
    estimator = "pwm" if fair else "qd"
    per_point = np.asarray(sr.crps_ensemble(y, d.T, estimator=estimator, backend="numpy"))
    return per_point if pointwise else float(np.mean(per_point))


def interval_score(draws, y_true, level: float = 0.9, *, pointwise: bool = False):
    """Interval score of the central interval at ``level`` (Gneiting & Raftery 2007), mean.

    With ``alpha = 1 - level`` and the interval ``[lo, hi]``::

        S = (hi - lo) + (2 / alpha) * (lo - y) * [y < lo] + (2 / alpha) * (y - hi) * [y > hi]

    Lower is better; in the units of ``y``.
    """
    d, y = _check(draws, y_true)
    lv = _check_level(level)
    lo, hi = _nested_intervals(d, (lv,))
    lo, hi = lo[0], hi[0]
    alpha = 1.0 - lv
    s = (hi - lo) + (2.0 / alpha) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))
    return s if pointwise else float(np.mean(s))


def interval_width(draws, level: float = 0.9) -> float:
    """Mean width ``hi - lo`` of the central interval at ``level``, in the units of ``y``."""
    lo, hi = central_interval(draws, level)
    return float(np.mean(hi - lo))


def pit(draws, y_true, rng: np.random.Generator | None = None) -> np.ndarray:
    """Probability integral transform of each observation under its predictive draws.

    ``PIT = (#{draws < y} + V * #{draws == y}) / n_draws``, where ``V = 1/2`` without ``rng``
    and ``V ~ Uniform(0, 1)`` drawn from ``rng`` (a ``numpy.random.Generator``) with it. For a
    calibrated forecast and many draws the values are close to uniform on ``[0, 1]``.

    Returns an array of shape ``(n_points,)``.
    """
    d, y = _check(draws, y_true)
    below = np.sum(d < y, axis=0)
    ties = np.sum(d == y, axis=0)
    if rng is None:
        v = 0.5
    else:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None; got {type(rng)}")
        v = rng.uniform(size=y.shape[0])
    return (below + v * ties) / d.shape[0]


# --------------------------------------------------------------------------------------------
# all together
# --------------------------------------------------------------------------------------------


def _level_tag(level: float) -> str:
    return f"{100.0 * level:.10g}"


def score_names(
    levels: Sequence[float] = COVERAGE_LEVELS, interval_level: float = 0.9
) -> list[str]:
    """The keys of :func:`score_all` with these levels, in order (``n_points`` apart)."""
    tag = _level_tag(_check_level(interval_level))
    coverage_keys = [f"coverage_{_level_tag(lv)}" for lv in _check_levels(levels)]
    return ["rmsle", "lpd", *coverage_keys, "msce", "crps", f"interval_score_{tag}", f"width_{tag}"]


def score_all(
    draws,
    y_true,
    levels: Sequence[float] = COVERAGE_LEVELS,
    *,
    msce_levels: Sequence[float] = MSCE_LEVELS,
    interval_level: float = 0.9,
    scale=None,
    log_space: bool = True,
) -> dict[str, float]:
    """All scores of one set of points, as a flat dict with stable keys.

    Keys (with the default levels): ``rmsle``, ``lpd``, ``coverage_50``, ``coverage_80``,
    ``coverage_90``, ``coverage_95``, ``msce``, ``crps``, ``interval_score_90``, ``width_90``,
    ``n_points``. A coverage key is ``coverage_`` followed by ``100 * level`` (e.g.
    ``coverage_97.5`` for 0.975).

    ``scale`` (a positive constant, or one per point) divides ``y`` and the draws before
    scoring, so ``lpd`` is then the log density of ``y / scale`` and ``crps``,
    ``interval_score_*`` and ``width_*`` are in units of ``scale``; RMSLE, coverage and MSCE
    do not change.

    ``msce`` here covers these points only; pool over a domain with :func:`pooled_msce`.
    ``n_points`` is returned so that per-curve means can be weighted when pooling.
    """
    d, y = _check(draws, y_true)
    if scale is not None:
        d, y = _apply_scale(d, y, scale)
    cov_levels = _check_levels(levels)
    il = _check_level(interval_level)
    out: dict[str, float] = {
        "rmsle": rmsle(d, y),
        "lpd": log_predictive_density(d, y, log_space=log_space),
    }
    cov = coverage_counts(d, y, cov_levels).coverage
    for lv, c in zip(cov_levels, cov, strict=True):
        out[f"coverage_{_level_tag(lv)}"] = float(c)
    tag = _level_tag(il)
    out["msce"] = msce(d, y, msce_levels)
    out["crps"] = crps(d, y)
    out[f"interval_score_{tag}"] = interval_score(d, y, il)
    out[f"width_{tag}"] = interval_width(d, il)
    out["n_points"] = int(y.shape[0])
    return out
