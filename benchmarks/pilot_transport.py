"""Does straightening the posterior's curved tube with a map fitted to pilot draws let NUTS
mix the 1-break BNSL at max tree depth 6?

`posterior_pairs.py` found the hard posteriors to be thin curved tubes: most of the
variance lies along one direction and a cubic curve in it explains most of the rest. A
dense mass matrix is a linear map and cannot straighten a curve. This prototype measures
two nonlinear maps fitted to a short pilot run, NUTS then running in the mapped
coordinates ``u`` (the draws mapped back):

- ``shear``: in the pilot's standardised principal coordinates ``q``, the first
  coordinate ``t`` is kept and every other one is shifted by a cubic in ``t`` fitted to the
  pilot (``q_j = u_j + P_j(u_1)``): a triangular map with unit Jacobian;
- ``scale-shear``: the same, with each residual scaled by ``exp(a_j + b_j t)`` fitted to the
  pilot's log absolute residuals (``b_j`` clipped to [-1, 1]); the log-Jacobian enters
  the potential.

Arms, each 4 chains at max tree depth 6, target acceptance 0.95, dense mass matrix, from
the best of 16 multi-start MAP searches, in NumPyro's ``MCMC`` driver (not the package's
compiled programs, so the baseline differs from a `fit` in its initialisation and random
stream): ``no map`` 1000 warm-up + 1000 draws; the mapped arms share a pilot of 500
warm-up + 250 draws, then 500 warm-up + 1000 draws in ``u`` (2,250 iterations against
2,000; every gradient evaluation counted, warm-up included). R-hat and bulk ESS of the
sampler's unconstrained coordinates (rank-based, so equal to those of the sampled sites).

    python benchmarks/pilot_transport.py --data-root ../shared/data --curves NAME [NAME ...]
        # writes benchmarks/results/pilot_transport.{md,csv}

A prototype to decide whether the maps earn a place in the sampler, not part of it. The
scale-shear map it measured is now the package's (``bayes_unsl.inference.transport``, fitted
to a failed fit's draws by the automatic remedy; ``benchmarks/remedy.py`` measures that).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from convergence import X, Y, curves
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model
from provenance import git_commit, machine, write_report

from bayes_unsl.data import validate
from bayes_unsl.inference.engine import map_starts
from bayes_unsl.inference.rank_stats import ess_bulk, rhat
from bayes_unsl.models import ModelSpec
from bayes_unsl.models.registry import form_model
from bayes_unsl.tables import markdown_table

RESULTS = Path(__file__).resolve().parent / "results"
CHAINS, DEPTH, TARGET_ACCEPT = 4, 6, 0.95
WARMUP, DRAWS = 1000, 1000
PILOT_WARMUP, PILOT_DRAWS, MAPPED_WARMUP = 500, 250, 500
DEGREE = 3
Map = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def potential_of(train: pd.DataFrame) -> tuple[Callable, jax.Array]:
    """The 1-break BNSL's potential on its flat unconstrained vector, and a start point."""
    spec = ModelSpec.build("bnsl", 1)
    dataset = validate(train, X, Y, min_points=spec.n_params)
    form = form_model("bnsl")
    args = (jnp.asarray(dataset.z), form.context(dataset, spec), jnp.asarray(dataset.log_y))
    info = initialize_model(jax.random.PRNGKey(0), partial(form.model, spec=spec), model_args=args)
    flat, unravel = ravel_pytree(info.param_info.z)
    return (lambda v: info.potential_fn(unravel(v))), flat


def best_start(potential, flat: jax.Array, key: jax.Array) -> jax.Array:
    starts = flat + 0.5 * jax.random.normal(key, (16, flat.size))
    optima, values = map_starts(potential, starts)
    return optima[jnp.argmin(values)]


def nuts(potential, inits: jax.Array, key: jax.Array, warmup: int, draws: int):
    """Draws (chain, draw, dim), gradient evaluations (warm-up included), divergences."""
    kernel = NUTS(
        potential_fn=potential,
        dense_mass=True,
        max_tree_depth=DEPTH,
        target_accept_prob=TARGET_ACCEPT,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=draws,
        num_chains=CHAINS,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.warmup(key, init_params=inits, extra_fields=("num_steps",), collect_warmup=True)
    grads = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps", "diverging"))
    extra = mcmc.get_extra_fields()
    draws_ = np.asarray(mcmc.get_samples(group_by_chain=True))
    return draws_, grads + int(np.sum(extra["num_steps"])), int(np.sum(extra["diverging"]))


def curve_map(pilot: np.ndarray, scaled: bool) -> tuple[Map, Callable]:
    """Forward map u -> (x, log|Jacobian| up to a constant) and its inverse, fitted to
    pilot draws (n, dim) along their first principal component."""
    mean, sd = pilot.mean(0), pilot.std(0)
    _, _, vt = np.linalg.svd((pilot - mean) / sd, full_matrices=False)
    q = ((pilot - mean) / sd) @ vt.T
    t_sd = q[:, 0].std()
    tt = q[:, 0] / t_sd
    powers = np.stack([tt**k for k in range(2, DEGREE + 1)], 1)
    powers_mean = powers.mean(0)
    design = np.c_[np.ones_like(tt), tt, powers - powers_mean]
    coef, *_ = np.linalg.lstsq(design, q[:, 1:], rcond=None)
    log_scale = np.zeros((2, q.shape[1] - 1))
    if scaled:
        resid = np.abs(q[:, 1:] - design @ coef) + 1e-12
        # E log|N(0, 1)| = -0.635: the fitted scale is that of the residual's sd.
        log_scale, *_ = np.linalg.lstsq(design[:, :2], np.log(resid) + 0.635, rcond=None)
        log_scale[1] = np.clip(log_scale[1], -1.0, 1.0)
    else:
        coef[:2] = 0.0  # the shear's curved part only (the linear part is 0 by construction)
    V, m, s, c, pm, ls = map(jnp.asarray, (vt, mean, sd, coef, powers_mean, log_scale))

    def along(t):
        tt = t / t_sd
        basis = jnp.stack([jnp.ones_like(tt), tt, *(tt**k for k in range(2, DEGREE + 1))], -1)
        basis = basis.at[..., 2:].add(-pm)
        return basis @ c, basis[..., :2] @ ls

    def forward(u):
        shift, log_s = along(u[0])
        q = jnp.concatenate([u[:1], shift + jnp.exp(log_s) * u[1:]])
        return m + s * (q @ V), jnp.sum(log_s)

    def inverse(x):
        q = ((x - m) / s) @ V.T
        shift, log_s = along(q[..., 0])
        return jnp.concatenate([q[..., :1], (q[..., 1:] - shift) / jnp.exp(log_s)], -1)

    return forward, inverse


def diagnose(draws: np.ndarray) -> dict:
    """Max R-hat and min bulk ESS over the coordinates of draws (chain, draw, dim)."""
    per_coordinate = np.moveaxis(draws, -1, 0)
    return {
        "r_hat_max": float(np.max(rhat(per_coordinate))),
        "ess_bulk_min": float(np.min(ess_bulk(per_coordinate))),
    }


def run_curve(name: str, train: pd.DataFrame, seed: int) -> list[dict]:
    potential, flat = potential_of(train)
    key_map, key_direct, key_pilot, key_mapped = jax.random.split(jax.random.PRNGKey(seed), 4)
    start = best_start(potential, flat, key_map)
    inits = start + 0.05 * jax.random.normal(key_map, (CHAINS, start.size))
    rows = []
    began = time.perf_counter()
    draws, grads, divergent = nuts(potential, inits, key_direct, WARMUP, DRAWS)
    rows.append(_row(name, "no map", draws, grads, divergent, time.perf_counter() - began))
    began = time.perf_counter()
    pilot, pilot_grads, _ = nuts(potential, inits, key_pilot, PILOT_WARMUP, PILOT_DRAWS)
    pilot_seconds = time.perf_counter() - began
    for arm, scaled in (("shear", False), ("scale-shear", True)):
        began = time.perf_counter()
        forward, inverse = curve_map(pilot.reshape(-1, pilot.shape[-1]), scaled)

        def mapped(u, forward=forward):
            x, log_jacobian = forward(u)
            return potential(x) - log_jacobian

        u_inits = inverse(jnp.asarray(pilot[:, -1, :]))  # each chain from its last pilot draw
        u, grads, divergent = nuts(mapped, u_inits, key_mapped, MAPPED_WARMUP, DRAWS)
        x = np.asarray(jax.vmap(jax.vmap(lambda v, f=forward: f(v)[0]))(jnp.asarray(u)))
        seconds = pilot_seconds + time.perf_counter() - began
        rows.append(_row(name, arm, x, pilot_grads + grads, divergent, seconds))
    return rows


def _row(name, arm, draws, grads, divergent, seconds) -> dict:
    d = diagnose(draws)
    row = {"curve": name, "arm": arm, **d, "divergences": divergent, "grad_evals": grads}
    row["target_met"] = d["r_hat_max"] <= 1.01 and d["ess_bulk_min"] >= 400
    row["grad_evals_per_ess"] = grads / d["ess_bulk_min"]
    row["seconds"] = round(seconds, 1)
    print(row, flush=True)
    return row


def summary(table: pd.DataFrame) -> pd.DataFrame:
    return table.groupby("arm", sort=False).agg(
        curves=("curve", "size"),
        r_hat_and_ess=("target_met", "mean"),
        median_r_hat=("r_hat_max", "median"),
        median_ess=("ess_bulk_min", "median"),
        median_grad_evals_per_ess=("grad_evals_per_ess", "median"),
        divergences=("divergences", "sum"),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=os.environ.get("BAYES_UNSL_DATA"))
    p.add_argument("--curves", nargs="+", required=True, help="curve names (convergence.py's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="pilot_transport")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    by_name = {c[0]: c for c in curves(args.data_root, benchmark=args.data_root is not None)}
    missing = [n for n in args.curves if n not in by_name]
    if missing:
        raise SystemExit(f"unknown curves: {missing}")
    began = time.perf_counter()
    rows = []
    for done, name in enumerate(args.curves, 1):
        rows += run_curve(name, by_name[name][2], args.seed)
        jax.clear_caches()  # every curve compiles its own programs; free the last ones
        # Rewritten after every curve, so that a stopped run leaves a valid partial report.
        report(pd.DataFrame(rows), args, done, time.perf_counter() - began)


DESCRIPTION = (
    "Each curve's training points, 1-break BNSL with the default priors and likelihood. "
    "Arms, each 4 chains at max tree depth 6, target acceptance 0.95, dense mass matrix, "
    "from the best of 16 multi-start MAP searches, in NumPyro's `MCMC` driver (not the "
    "package's compiled programs, so `no map` differs from a `fit` in its initialisation "
    "and random stream): `no map`, 1000 warm-up + 1000 draws; `shear` and `scale-shear` "
    "share a pilot of 500 warm-up + 250 draws, fit a map to it, then run 500 warm-up + 1000 "
    "draws in the mapped coordinates (2,250 iterations against 2,000; every gradient "
    "evaluation counted, warm-up and pilot included). `shear`: in the pilot's standardised "
    "principal coordinates, every coordinate but the first is shifted by a cubic in the "
    "first, fitted to the pilot (unit Jacobian); `scale-shear`: also scaled by the "
    "exponential of a line in the first, fitted to the pilot's log absolute residuals. "
    "R-hat and bulk ESS over the sampler's unconstrained coordinates (rank-based, so those "
    "of the sampled sites). r_hat_and_ess: share of curves with max R-hat <= 1.01 and bulk "
    "ESS >= 400."
)


def report(table: pd.DataFrame, args, done: int, seconds: float) -> None:
    table.to_csv(RESULTS / f"{args.name}.csv", index=False)
    curves_arg = " ".join(f"'{n}'" for n in args.curves)
    lines = [
        "# Pilot-fitted maps that straighten the posterior's tube: a NUTS prototype",
        "",
        f"Command: `python benchmarks/pilot_transport.py --data-root <dataset folders> "
        f"--seed {args.seed} --curves {curves_arg}`. Machine: {machine()}; commit "
        f"{git_commit()}; {done} of {len(args.curves)} curves done in {seconds:.0f} s.",
        "",
        DESCRIPTION,
        "",
        markdown_table(summary(table).reset_index()),
        "",
        "## Every curve",
    ]
    write_report(RESULTS / f"{args.name}.md", lines, table)


if __name__ == "__main__":
    main()
