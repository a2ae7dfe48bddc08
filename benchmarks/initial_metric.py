"""Does a mass matrix from the MAP's Hessian shorten NUTS warm-up on the BNSL?

On this CPU about half of a fit's gradient evaluations are spent in warm-up, the first
iterations of which run near the maximum tree depth: NUTS starts with an identity mass
matrix and learns one in windows. This measures the alternative of starting it from the
Laplace approximation at the best of the 16 MAP starts (the inverse of the potential's
Hessian there, eigenvalues clipped to [1e-2, 1e6]), with everything else as the package
samples: BNSL with 1 break, the default priors and likelihood, 4 chains x (1000 + 1000),
target acceptance 0.95, dense mass matrix adapted in NumPyro's windows, chains started at
the best optimum plus N(0, 0.1) jitter, NumPyro's NUTS kernels vmapped over chains in one
compiled ``lax.scan``. Arms: ``identity`` (the package's start) and ``laplace``.

Curves: those of ``convergence.py`` without the 92-curve benchmark (curves with fewer
points than a 1-break BNSL has parameters are skipped). Per curve and arm: gradient
evaluations in warm-up (and in its first 250 iterations) and in the draws, max R-hat and
least bulk ESS over the unconstrained coordinates, divergences, and the sampling seconds
of a second call (after compilation).

    python benchmarks/initial_metric.py [--max-tree-depth 6] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from convergence import X, Y, curves
from numpyro.infer.hmc import hmc
from provenance import git_commit, machine
from step_cost import bnsl_potential

from bayes_unsl.data import TooFewPoints
from bayes_unsl.inference.engine import map_starts
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
CHAINS, WARMUP, DRAWS, EARLY = 4, 1000, 1000, 250
ARMS = ("identity", "laplace")


def laplace_inverse_mass(potential, at: jax.Array) -> jax.Array:
    """Inverse Hessian of the potential at ``at``, its eigenvalues clipped to [1e-2, 1e6]."""
    hessian = jax.hessian(potential)(at)
    values, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
    values = jnp.clip(values, 1e-2, 1e6)
    return (vectors / values) @ vectors.T


def sampler(potential, dim: int, arm: str, max_tree_depth: int):
    """A compiled run: MAP starts, then every NUTS iteration's draws and tree sizes."""

    def run(key):
        start_key, jitter_key, chain_key = jax.random.split(key, 3)
        starts = jax.random.uniform(start_key, (16, dim), minval=-2, maxval=2)
        optima, values = map_starts(potential, starts)
        best = optima[jnp.argmin(values)]
        inits = best[None] + 0.1 * jax.random.normal(jitter_key, (CHAINS, dim))
        inverse_mass = laplace_inverse_mass(potential, best) if arm == "laplace" else None
        init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")

        def init(k, z):
            return init_kernel(
                z,
                num_warmup=WARMUP,
                dense_mass=True,
                target_accept_prob=0.95,
                max_tree_depth=max_tree_depth,
                rng_key=k,
                inverse_mass_matrix=inverse_mass,
            )

        state = jax.vmap(init)(jax.random.split(chain_key, CHAINS), inits)
        step = jax.vmap(sample_kernel)

        def one(s, _):
            s = step(s)
            return s, (s.z, s.num_steps, s.diverging)

        return jax.lax.scan(one, state, None, length=WARMUP + DRAWS)[1]

    return jax.jit(run)


def measure(max_tree_depth: int, limit: int | None) -> pd.DataFrame:
    rows = []
    for name, group, train, _ in curves(None, False):
        if limit is not None and len({r["curve"] for r in rows}) >= limit:
            break
        try:
            potential, dim = bnsl_potential(train, X, Y)
        except TooFewPoints:
            continue
        for arm in ARMS:
            run = sampler(potential, dim, arm, max_tree_depth)
            jax.block_until_ready(run(jax.random.PRNGKey(0)))  # compiles
            started = time.perf_counter()
            z, steps, diverging = jax.block_until_ready(run(jax.random.PRNGKey(0)))
            seconds = time.perf_counter() - started
            draws = {"z": np.swapaxes(np.asarray(z), 0, 1)[:, WARMUP:]}
            steps = np.asarray(steps)
            r_hat = float(az.rhat(az.convert_to_dataset(draws))["z"].max())
            ess = float(az.ess(az.convert_to_dataset(draws))["z"].min())
            divergences = int(np.asarray(diverging)[WARMUP:].sum())
            rows.append(
                {
                    "curve": name,
                    "group": group,
                    "arm": arm,
                    "r_hat_max": r_hat,
                    "ess_bulk_min": ess,
                    "divergences": divergences,
                    "passed": r_hat <= 1.01 and ess >= 400 and divergences == 0,
                    "warmup_grad_evals": int(steps[:WARMUP].sum()),
                    "early_grad_evals": int(steps[:EARLY].sum()),
                    "draw_grad_evals": int(steps[WARMUP:].sum()),
                    "seconds": seconds,
                }
            )
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    return (
        table.groupby("arm", sort=False)
        .agg(
            curves=("curve", "size"),
            passed=("passed", "sum"),
            median_ess_bulk_min=("ess_bulk_min", "median"),
            median_warmup_grad_evals=("warmup_grad_evals", "median"),
            median_early_grad_evals=("early_grad_evals", "median"),
            median_draw_grad_evals=("draw_grad_evals", "median"),
            median_seconds=("seconds", "median"),
        )
        .reset_index()
    )


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-tree-depth", type=int, default=6)
    ap.add_argument("--limit", type=int, default=None, help="first N curves only")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "initial_metric")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    started, commit = time.perf_counter(), git_commit()
    table = measure(args.max_tree_depth, args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    command = "python benchmarks/initial_metric.py " + " ".join(sys.argv[1:])
    text = "\n".join(
        [
            "# A mass matrix from the MAP's Hessian to start NUTS warm-up",
            "",
            f"Command: `{command.strip()}`  ",
            f"Machine: {machine()}  ",
            f"Commit: {commit}  ",
            f"Max tree depth: {args.max_tree_depth}; wall time "
            f"{(time.perf_counter() - started) / 60:.1f} min",
            "",
            (__doc__ or "").split("\n\n")[1].strip(),
            "",
            "Passed: max R-hat <= 1.01, bulk ESS >= 400 and no divergences. Gradient "
            "evaluations are summed over the 4 chains.",
            "",
            markdown_table(summary(table)),
            "",
            markdown_table(table),
            "",
        ]
    )
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return table


if __name__ == "__main__":
    main()
