"""Simulation-based calibration (SBC) of a model's NUTS posterior.

Draw parameters from the prior, simulate a curve at fixed inputs, sample the posterior and
record the rank of each true parameter among the posterior draws. If the model, its priors
and the sampler agree, every rank is uniform (Talts et al. 2018). The prior constants that a
fit takes from its data (the context) are held fixed at those of one real curve, for
simulation and fit alike: recomputing them from each simulated curve would change the
prior, and SBC would then test that change rather than the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import Predictive
from scipy import stats

from bayes_unsl._precision import precision_scope
from bayes_unsl.data import Dataset
from bayes_unsl.inference.nuts import SamplerSettings, run_nuts_batch
from bayes_unsl.models import ModelSpec, form_model
from bayes_unsl.models.likelihood import masked

__all__ = ["SBCResult", "ecdf_uniformity", "rank_statistics", "run_sbc", "uniformity"]


@dataclass
class SBCResult:
    """Ranks (simulation x parameter component) and the convergence of each simulation."""

    ranks: pd.DataFrame
    n_draws: int
    converged: np.ndarray
    max_r_hat: np.ndarray
    divergences: np.ndarray

    def uniformity(self, bins: int = 10) -> pd.DataFrame:
        return uniformity(self.ranks, self.n_draws, bins)

    def ecdf_uniformity(self, prob: float = 0.99) -> pd.DataFrame:
        return ecdf_uniformity(self.ranks, self.n_draws, prob)


def rank_statistics(truth: np.ndarray, draws: np.ndarray, n_keep: int) -> np.ndarray:
    """Rank of ``truth`` among ``n_keep`` evenly thinned ``draws`` (last axis), 0..n_keep.

    Thinning to fewer draws than the effective sample size keeps autocorrelation from
    piling ranks up at the ends.
    """
    draws = np.asarray(draws)
    step = max(1, draws.shape[-1] // n_keep)
    kept = draws[..., ::step][..., :n_keep]
    return np.sum(kept < np.asarray(truth)[..., None], axis=-1)


def uniformity(ranks: pd.DataFrame, n_draws: int, bins: int = 10) -> pd.DataFrame:
    """Chi-square test of uniform ranks per parameter: statistic, p-value, counts per bin."""
    rows = []
    edges = np.linspace(0, n_draws + 1, bins + 1)
    for name in ranks.columns:
        counts, _ = np.histogram(ranks[name].to_numpy(), bins=edges)
        test = stats.chisquare(counts)
        rows.append(
            {
                "parameter": name,
                "chi2": float(test.statistic),
                "p_value": float(test.pvalue),
                "counts": counts.tolist(),
            }
        )
    return pd.DataFrame(rows)


def ecdf_uniformity(ranks: pd.DataFrame, n_draws: int, prob: float = 0.99) -> pd.DataFrame:
    """Simultaneous ECDF test of uniform ranks per parameter (Säilynoja, Bürkner and Vehtari
    2022), through ArviZ's confidence band: the ECDF of a parameter's ranks, read at every
    rank value, must stay inside the band that holds the whole ECDF of as many uniform
    ranks with probability ``prob``. Unlike the chi-square test it needs no bins and sees
    a drift spread over many ranks (too narrow or shifted posteriors) as one excursion.

    Ranks run 0..``n_draws``; read at ``j / (n_draws + 1)``, a uniform rank's ECDF is
    exactly ``j / (n_draws + 1)``, so the continuous band applies to the discrete ranks.
    ``ecdf_excess``: how far the ECDF leaves the band at worst (0 inside it).
    """
    from arviz.stats.ecdf_utils import ecdf_confidence_band

    levels = n_draws + 1
    points = np.arange(1, levels) / levels
    lower, upper = ecdf_confidence_band(len(ranks), points, points, prob=prob)
    rows = []
    for name in ranks.columns:
        values = ranks[name].to_numpy()
        ecdf = np.mean(values[:, None] < np.arange(1, levels)[None, :], axis=0)
        excess = float(np.max(np.maximum(lower - ecdf, ecdf - upper).clip(min=0.0)))
        rows.append({"parameter": name, "ecdf_inside": excess == 0.0, "ecdf_excess": excess})
    return pd.DataFrame(rows)


def _components(name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """Scalar components of a site: (sims, draws, ...) -> {name[i]: (sims, draws)}."""
    flat = values.reshape(values.shape[:2] + (-1,))
    if flat.shape[-1] == 1:
        return {name: flat[..., 0]}
    return {f"{name}[{i}]": flat[..., i] for i in range(flat.shape[-1])}


def run_sbc(
    dataset: Dataset,
    spec: ModelSpec | None = None,
    *,
    simulations: int = 100,
    settings: SamplerSettings | None = None,
    n_keep: int = 99,
    seed: int = 0,
    precision: str | None = None,
    batch_size: int | None = None,
) -> SBCResult:
    """SBC of ``spec`` (default: BNSL, 1 break) at the inputs and context of ``dataset``.

    Simulations are sampled by batched NUTS, ``batch_size`` at a time (default: all at
    once; on a CPU one at a time is faster, see ``benchmarks/results/throughput.md``).
    ``n_keep``: posterior draws each rank is computed against (ranks run 0..n_keep); keep it
    below the bulk ESS.
    """
    spec = spec or ModelSpec.build("bnsl", 1)
    settings = settings or SamplerSettings()
    form_ = form_model(spec.form)
    context = form_.context(dataset, spec)
    model = form_.model

    def bound(z, context, log_y=None):
        return model(z, context, log_y, spec=spec)

    sim_key, fit_key = jax.random.split(jax.random.PRNGKey(seed))
    with precision_scope(precision):
        z = jnp.asarray(dataset.z)
        prior = Predictive(bound, num_samples=simulations)(sim_key, z, context)
        n = dataset.n_points
        stack = jax.tree_util.tree_map
        args = (
            jnp.broadcast_to(z, (simulations,) + z.shape),
            stack(lambda v: jnp.full((simulations,), v), context),
            jnp.ones((simulations, n), bool),
            prior["log_y"],
        )
        keys = jax.random.split(fit_key, simulations)
        # One model function for every batch: the compiled programs are cached by it, and
        # a new function per batch compiled (and kept) new programs for each batch.
        batched_model = masked(bound)
        runs = []
        step = batch_size or simulations
        for start in range(0, simulations, step):
            part = jax.tree_util.tree_map(lambda v, s=start: v[s : s + step], (keys, args))
            if len(part[0]) < step:  # keep one batch shape: pad with copies, then drop them
                pad = step - len(part[0])
                part = jax.tree_util.tree_map(
                    lambda v, pad=pad: jnp.concatenate([v, jnp.repeat(v[:1], pad, 0)]), part
                )
            runs += run_nuts_batch(part[0], batched_model, part[1], settings)[: simulations - start]
    sampled = [s for s in form_.sampled_sites if s in runs[0].posterior]
    ranks: dict[str, np.ndarray] = {}
    for site in sampled:
        post = np.stack(
            [r.posterior[site].reshape((-1,) + r.posterior[site].shape[2:]) for r in runs]
        )
        truth = np.asarray(prior[site])[:, None]
        for name, draws in _components(site, post).items():
            true = _components(site, truth)[name][:, 0]
            ranks[name] = rank_statistics(true, draws, n_keep)
    diags = [_convergence(r, sampled) for r in runs]
    return SBCResult(
        ranks=pd.DataFrame(ranks),
        n_draws=n_keep,
        converged=np.array([d[0] for d in diags]),
        max_r_hat=np.array([d[1] for d in diags]),
        divergences=np.array([d[2] for d in diags]),
    )


def _pool_chains(values: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (chain * draw, ...)."""
    return values.reshape((-1,) + values.shape[2:])


def _convergence(run, sampled) -> tuple[bool, float, int]:
    import arviz as az

    post = az.from_dict(posterior={k: run.posterior[k] for k in sampled})
    r_hat = max(float(np.nanmax(v.values)) for v in az.rhat(post).data_vars.values())
    divergences = int(run.sample_stats["diverging"].sum())
    return bool(r_hat <= 1.01 and divergences == 0), r_hat, divergences
