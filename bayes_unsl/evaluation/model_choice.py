"""Choosing among fits of one curve: PSIS-LOO selection and stacking of predictive draws.

A curve fitted with 0, 1, 2 or 3 breaks gives several posteriors. Picking the one with the
best leave-one-out predictive density (PSIS-LOO, Vehtari et al. 2017) is the usual choice;
the parsimonious rule keeps the simplest fit unless a more complex one is clearly better
(a break that the data do not need makes a posterior that mixes poorly and widens the
extrapolation for nothing); stacking (Yao et al. 2018) instead mixes their predictive
distributions with the weights that maximise the leave-one-out density of the mixture,
which hedges when no single fit is best everywhere. All use only the fitted points, never
held-out ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import arviz as az

    from bayes_unsl.fit import Fit

__all__ = [
    "check_same_data",
    "loo_compare",
    "parsimonious_choice",
    "pointwise_loo",
    "select_by_loo",
    "stacked_samples",
    "stacking_counts",
]


def check_same_data(fits: Mapping[str, Fit]) -> None:
    """Refuse to compare fits of different observations: their LOO would be meaningless.

    The fits must hold the same observations of y in the same order. Their inputs may
    differ (Chinchilla's N and D against the data-constrained form's N, D and unique
    tokens: different models of the same measurements), but an input column that two fits
    share must hold the same values.
    """
    if not fits:
        raise ValueError("no fits to compare")
    (first_name, first), *rest = fits.items()
    y0 = first.idata.observed_data["log_y"].values
    x0 = dict(zip(first.x_names, first.idata.constant_data["x"].values.T, strict=True))
    for name, other in rest:
        y = other.idata.observed_data["log_y"].values
        if y.shape != y0.shape or not np.array_equal(y, y0):
            raise ValueError(
                f"fits {first_name!r} and {name!r} were fitted to different observations; "
                "LOO compares fits of the same points only"
            )
        x = dict(zip(other.x_names, other.idata.constant_data["x"].values.T, strict=True))
        differ = [c for c in x0.keys() & x.keys() if not np.array_equal(x0[c], x[c])]
        if differ:
            raise ValueError(
                f"fits {first_name!r} and {name!r} share input column(s) {sorted(differ)} "
                "with different values; LOO compares fits of the same points only"
            )


def pointwise_loo(fit: Fit) -> az.ELPDData:
    """PSIS-LOO of one fit's log likelihood of log y, pointwise (Pareto k per point)."""
    import arviz as az  # imported on use: it is slow to import and sampling does not need it

    with warnings.catch_warnings():
        # High Pareto k is counted in the table instead of warned about once per fit.
        warnings.simplefilter("ignore", UserWarning)
        return az.loo(fit.idata, pointwise=True, var_name="log_y")


def loo_compare(fits: Mapping[str, Fit]) -> pd.DataFrame:
    """PSIS-LOO of each fit, ranked best first, with stacking weights.

    The columns are those of :func:`arviz.compare` (``rank``, ``elpd_loo``, ``p_loo``,
    ``elpd_diff``, ``weight``: the stacking weights, ``se``, ``dse``, ``warning``, ``scale``)
    plus ``pareto_k_high``, the number of points whose Pareto k exceeds ArviZ's threshold
    ``good_k`` (for them the LOO estimate is unreliable), ``pareto_k_max`` and ``good_k``.
    All fits must be of the same data; the log likelihood is that of log y.
    """
    import arviz as az

    check_same_data(fits)
    elpds = {name: pointwise_loo(fit) for name, fit in fits.items()}
    with warnings.catch_warnings():
        # Its warnings repeat the Pareto k counted below, or concern its own pandas calls.
        warnings.simplefilter("ignore")
        table = az.compare(elpds, ic="loo", method="stacking", scale="log")
    k = {name: np.asarray(e.pareto_k) for name, e in elpds.items()}
    good = {name: float(e.good_k) for name, e in elpds.items()}
    table["pareto_k_high"] = [int(np.sum(k[n] > good[n])) for n in table.index]
    table["pareto_k_max"] = [float(np.max(k[n])) for n in table.index]
    table["good_k"] = [good[n] for n in table.index]
    return table


# A fit is clearly worse than the best one when it falls short by more than this many
# units of elpd and by more than this many standard errors of the difference. Differences under 4
# are small next to the error of the LOO estimate itself (Sivula, Magnusson and Vehtari
# 2020); two standard errors is the usual bar for a difference that is clearly not noise.
ELPD_MARGIN = 4.0
SE_MULTIPLE = 2.0


def parsimonious_choice(
    comparison: pd.DataFrame,
    complexity: Mapping[str, float],
    margin: float = ELPD_MARGIN,
    se_multiple: float = SE_MULTIPLE,
) -> str:
    """The simplest fit whose PSIS-LOO is not clearly worse than the best one's.

    ``comparison``: a table from :func:`loo_compare` (``elpd_diff`` and ``dse`` are each
    fit's shortfall from the best and its standard error). ``complexity``: a number per fit
    (e.g. free parameters); smaller is simpler. A fit is clearly worse when its shortfall
    exceeds both ``margin`` and ``se_multiple`` standard errors. Among the fits that are
    not, the simplest wins; ties go to the higher elpd.
    """
    missing = set(comparison.index) - set(complexity)
    if missing:
        raise ValueError(f"no complexity given for fit(s) {sorted(missing)}")
    if margin < 0 or se_multiple < 0:
        raise ValueError(f"margin and se_multiple must be >= 0, got {margin}, {se_multiple}")
    if "scale" in comparison and not (comparison["scale"] == "log").all():
        raise ValueError("the comparison must be on the log scale (higher elpd is better)")
    comparison = comparison[np.isfinite(comparison["elpd_loo"].astype(float))]
    if comparison.empty:
        raise ValueError("no fit has a finite PSIS-LOO estimate")
    shortfall = comparison["elpd_loo"].max() - comparison["elpd_loo"]
    bar = np.maximum(margin, se_multiple * comparison["dse"].fillna(0.0))
    acceptable = comparison[shortfall <= bar]
    order = sorted(
        acceptable.index, key=lambda n: (complexity[n], -float(acceptable.loc[n, "elpd_loo"]))
    )
    return str(order[0])


def select_by_loo(
    fits: Mapping[str, Fit],
    comparison: pd.DataFrame | None = None,
    rule: str = "best",
) -> str:
    """Name of the fit chosen by PSIS-LOO.

    ``rule``: ``"best"`` takes the highest expected log predictive density;
    ``"parsimonious"`` the fit with the fewest free parameters among those not clearly
    worse than the best (:func:`parsimonious_choice`). ``comparison``: a table from
    :func:`loo_compare` of these fits, to avoid computing it again.
    """
    if rule not in ("best", "parsimonious"):
        raise ValueError(f"rule must be 'best' or 'parsimonious', got {rule!r}")
    table = loo_compare(fits) if comparison is None else comparison
    unknown = set(table.index) - set(fits)
    if unknown:
        raise ValueError(f"the comparison names fits that are not given: {sorted(unknown)}")
    if rule == "parsimonious":
        return parsimonious_choice(table, {n: fits[n].spec.n_params for n in table.index})
    return str(table["elpd_loo"].idxmax())


def _weights(fits: Mapping[str, Fit], weights: Mapping[str, float] | pd.Series) -> dict:
    w = {str(k): float(v) for k, v in dict(weights).items()}
    unknown = set(w) - set(fits)
    if unknown:
        raise ValueError(f"weights name fits that are not given: {sorted(unknown)}")
    values = np.array(list(w.values()))
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero; got {w}")
    total = values.sum()
    return {name: w.get(name, 0.0) / total for name in fits}


def stacking_counts(weights: Mapping[str, float], n_draws: int) -> dict[str, int]:
    """Split ``n_draws`` among fits in proportion to ``weights`` (largest remainders).

    Deterministic rounding: the mixture then has exactly the stated proportions, up to one
    draw, with no multinomial noise on top of the Monte Carlo noise of the draws.
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be positive, got {n_draws}")
    names = list(weights)
    share = np.array([weights[n] for n in names], dtype=float) * n_draws
    counts = np.floor(share).astype(int)
    remainder = n_draws - counts.sum()
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:remainder]] += 1
    return dict(zip(names, counts.tolist(), strict=True))


def _n_posterior_draws(fit: Fit) -> int:
    sizes = fit.idata.posterior.sizes
    return int(sizes["chain"] * sizes["draw"])


def stacked_samples(
    fits: Mapping[str, Fit],
    weights: Mapping[str, float] | pd.Series,
    new_x: Any,
    seed: int = 0,
    n_draws: int | None = None,
) -> np.ndarray:
    """Draws from the mixture of the fits' posterior predictives, shape (draws, points).

    Each fit contributes a share of the draws equal to its weight (``weights``: e.g. the
    ``weight`` column of :func:`loo_compare`; normalised here; fits not named get weight
    0), taken without replacement from its :meth:`Fit.samples` at ``new_x``, and the rows
    are shuffled. ``n_draws`` defaults to the smallest number of posterior draws among the
    fits. The same fits, weights, inputs and seed give the same array.
    """
    w = _weights(fits, weights)
    if n_draws is None:
        n_draws = min(_n_posterior_draws(f) for f in fits.values())
    counts = stacking_counts(w, int(n_draws))
    rng = np.random.default_rng(seed)
    parts = []
    for name, count in counts.items():
        if count == 0:
            continue
        samples = fits[name].samples(new_x)
        rows = rng.choice(samples.shape[0], size=count, replace=count > samples.shape[0])
        parts.append(samples[rows])
    draws = np.concatenate(parts, axis=0)
    return draws[rng.permutation(draws.shape[0])]
