"""Convergence diagnostics computed from an InferenceData, and the warning they raise."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayes_unsl.inference.rank_stats import rank_summary

if TYPE_CHECKING:
    import arviz as az

__all__ = [
    "ConvergenceWarning",
    "Thresholds",
    "chain_separation",
    "check_convergence",
    "convergence_problems",
    "summarise_convergence",
    "summarise_draws",
]


class ConvergenceWarning(UserWarning):
    """The sampler did not converge: the posterior and its predictions are not reliable."""


@dataclass(frozen=True)
class Thresholds:
    r_hat_max: float = 1.01
    ess_bulk_min: float = 400.0
    divergences: int = 0
    #: Chains whose means of a parameter lie this many within-chain sds apart explore
    #: separate modes (well-mixed chains of 1,000 draws differ by a few hundredths).
    modes_apart: float = 3.0


def summarise_convergence(idata: az.InferenceData, var_names: list[str] | None = None) -> dict:
    """R-hat, bulk and tail ESS over the sampled parameters, and the sampler's statistics."""
    post = idata.posterior if var_names is None else idata.posterior[var_names]
    draws = {k: v.transpose("chain", "draw", ...).values[None] for k, v in post.items()}
    stats = idata.get("sample_stats")
    stat_arrays = {}
    if stats is not None:
        stat_arrays = {
            k: stats[k].values[None] for k in ("diverging", "tree_depth", "n_steps") if k in stats
        }
    return summarise_draws(draws, stat_arrays)[0]


def summarise_draws(
    draws: Mapping[str, np.ndarray],
    sample_stats: Mapping[str, np.ndarray] | None = None,
    *,
    fits_per_pass: int = 64,
) -> list[dict]:
    """:func:`summarise_convergence` for many fits at once, one dict per fit.

    ``draws``: parameter name -> array ``(fit, chain, draw, ...)``; ``sample_stats``:
    ``diverging``, ``tree_depth`` and ``n_steps`` as ``(fit, chain, draw)``. The rank
    statistics of every parameter of every fit run vectorised, in slices of
    ``fits_per_pass`` fits on several threads, which is what makes thousands of batched
    curves cheap to check.
    """
    names, blocks = [], []
    for name, values in draws.items():
        values = np.asarray(values, dtype=float)
        block = values.reshape(values.shape[:3] + (-1,))
        if block.shape[-1]:
            names += [str(name)] * block.shape[-1]
            blocks.append(block)
    n_fits, n_chains, n_draws = blocks[0].shape[:3]
    series = np.moveaxis(np.concatenate(blocks, axis=-1), -1, 1)  # (fit, series, chain, draw)

    def one_pass(start: int):
        x = series[start : start + fits_per_pass]
        return (*rank_summary(x), _separation(x))

    starts = range(0, n_fits, fits_per_pass)
    if len(starts) > 1:
        # Sorting and FFTs release the GIL: passes run side by side on the host's cores.
        with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
            parts = list(pool.map(one_pass, starts))
    else:
        parts = [one_pass(0)]
    r_hat, bulk, tail, gaps = (np.concatenate(p) for p in zip(*parts, strict=True))
    stats = dict(sample_stats or {})
    out = []
    for i in range(n_fits):
        row: dict = {"chains": n_chains, "draws": n_draws}
        row["r_hat_max"] = _nan_extreme(r_hat[i], np.nanmax) if n_chains > 1 else float("nan")
        if n_chains > 1:
            worst = int(np.argmax(gaps[i]))
            positive = gaps[i][worst] > 0
            row["chain_separation"] = float(gaps[i][worst]) if positive else 0.0
            row["chain_separation_site"] = names[worst] if positive else ""
        row["ess_bulk_min"] = _nan_extreme(bulk[i], np.nanmin)
        row["ess_tail_min"] = _nan_extreme(tail[i], np.nanmin)
        row["divergences"] = int(stats["diverging"][i].sum()) if "diverging" in stats else 0
        if "tree_depth" in stats:
            row["tree_depth_mean"] = float(stats["tree_depth"][i].mean())
            row["tree_depth_max"] = int(stats["tree_depth"][i].max())
        if "n_steps" in stats:
            row["gradient_evals"] = int(stats["n_steps"][i].sum())
            row["gradient_evals_per_ess"] = row["gradient_evals"] / max(row["ess_bulk_min"], 1e-9)
        out.append(row)
    return out


def chain_separation(post) -> tuple[float, str]:
    """How far apart the chains sit: the largest gap between two chains' means of one
    parameter, in units of the within-chain sd, and that parameter's name.

    R-hat says that chains disagree; this says how: a gap of many sds means that the
    chains settled in separate modes (the data allow different curves), which more
    warm-up does not cure, whereas a gap below one sd is slow mixing within one mode.
    """
    worst, site = 0.0, ""
    for name in post.data_vars:
        values = np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)
        if values.size == 0:
            continue
        series = np.moveaxis(values.reshape(values.shape[:2] + (-1,)), -1, 0)
        gap = float(np.max(_separation(series)))
        if gap > worst:
            worst, site = gap, str(name)
    return worst, site


def _separation(x: np.ndarray) -> np.ndarray:
    """Largest gap between chain means in within-chain sds, for ``(..., chain, draw)``."""
    means = x.mean(axis=-1)
    within = np.sqrt(x.var(axis=-1, ddof=1).mean(axis=-1))
    gap = (means.max(axis=-1) - means.min(axis=-1)) / np.where(within > 0, within, np.inf)
    return np.nan_to_num(gap, nan=0.0)


def _nan_extreme(values: np.ndarray, reduce) -> float:
    """``reduce`` over the non-NaN values; NaN when there are none."""
    if np.all(np.isnan(values)):
        return float("nan")
    return float(reduce(values))


def convergence_problems(diag: dict, thresholds: Thresholds = Thresholds()) -> list[str]:
    """Plain-language list of failed checks (empty when the fit converged)."""
    problems = []
    r_hat = diag.get("r_hat_max", float("nan"))
    if diag.get("chains", 1) > 1 and not (r_hat <= thresholds.r_hat_max):
        text = f"max R-hat {r_hat:.3f} > {thresholds.r_hat_max}"
        gap = diag.get("chain_separation", 0.0)
        if gap >= thresholds.modes_apart:
            text += (
                f": the chains settled in separate modes ({diag['chain_separation_site']}: "
                f"chain means {gap:.0f} within-chain sd apart), so the data allow different "
                "curves; compare fewer breaks with loo_compare or add points"
            )
        problems.append(text)
    ess = diag.get("ess_bulk_min", float("nan"))
    if not (ess >= thresholds.ess_bulk_min):
        problems.append(f"min bulk ESS {ess:.0f} < {thresholds.ess_bulk_min:.0f}")
    if diag.get("divergences", 0) > thresholds.divergences:
        problems.append(f"{diag['divergences']} divergent transitions")
    if diag.get("map_starts_finite", 1) == 0:
        problems.append(
            "no MAP start reached a finite log density (the chains started from random "
            "points; try more map_starts or check the priors)"
        )
    return problems


def check_convergence(diag: dict, thresholds: Thresholds = Thresholds(), *, warn: bool = True):
    """Warn loudly when the fit did not converge; return the list of problems."""
    problems = convergence_problems(diag, thresholds)
    if problems and warn:
        warnings.warn(
            "the posterior did not converge (" + "; ".join(problems) + "). Its intervals are "
            "not reliable. Try: another refit (retries=2; the default remedy samples in a "
            "map fitted to the last draws), more warm-up and draws (warmup=, draws=), a "
            "higher target_accept (e.g. 0.95 or 0.99), fewer breaks (breaks='auto'), or a "
            "Student-t likelihood "
            "(likelihood='student_t', the default for form 'bnsl') if the data have outliers.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return problems
