"""Convergence diagnostics computed from an InferenceData, and the warning they raise."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np

__all__ = [
    "ConvergenceWarning",
    "Thresholds",
    "chain_separation",
    "check_convergence",
    "convergence_problems",
    "summarise_convergence",
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
    n_chains = int(post.sizes["chain"])
    out: dict = {"chains": n_chains, "draws": int(post.sizes["draw"])}
    if n_chains > 1:
        rhat = az.rhat(post)
        out["r_hat_max"] = _max_over(rhat)
        out["chain_separation"], out["chain_separation_site"] = chain_separation(post)
    else:
        out["r_hat_max"] = float("nan")
    out["ess_bulk_min"] = _min_over(az.ess(post, method="bulk"))
    out["ess_tail_min"] = _min_over(az.ess(post, method="tail"))
    stats = idata.get("sample_stats")
    if stats is not None and "diverging" in stats:
        out["divergences"] = int(stats["diverging"].sum())
    else:
        out["divergences"] = 0
    if stats is not None and "tree_depth" in stats:
        out["tree_depth_mean"] = float(stats["tree_depth"].mean())
        out["tree_depth_max"] = int(stats["tree_depth"].max())
    if stats is not None and "n_steps" in stats:
        out["gradient_evals"] = int(stats["n_steps"].sum())
        out["gradient_evals_per_ess"] = out["gradient_evals"] / max(out["ess_bulk_min"], 1e-9)
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
        values = np.asarray(post[name].values, dtype=float)
        if values.size == 0:
            continue
        values = values.reshape(values.shape[0], values.shape[1], -1)
        means = values.mean(axis=1)
        within = np.sqrt(values.var(axis=1, ddof=1).mean(axis=0))
        gap = (means.max(axis=0) - means.min(axis=0)) / np.where(within > 0, within, np.inf)
        if np.nanmax(gap) > worst:
            worst, site = float(np.nanmax(gap)), str(name)
    return worst, site


def _max_over(ds) -> float:
    vals = [np.nanmax(ds[v].values) for v in ds.data_vars if np.size(ds[v].values)]
    return float(np.nanmax(vals)) if vals else float("nan")


def _min_over(ds) -> float:
    vals = [np.nanmin(ds[v].values) for v in ds.data_vars if np.size(ds[v].values)]
    return float(np.nanmin(vals)) if vals else float("nan")


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
            "not reliable. Try: more warm-up and draws (warmup=, draws=), a higher "
            "target_accept (e.g. 0.95 or 0.99), fewer breaks, or likelihood='student_t' if "
            "the data have outliers.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return problems
