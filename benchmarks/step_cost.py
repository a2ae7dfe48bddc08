"""Where a NUTS step's time goes on a CPU: the package's NumPyro kernels against BlackJAX's,
and the gradient alone.

One posterior (BNSL with 1 break on the 4-digit addition curve's first 14 points, the
default priors and likelihood), 4 chains vmapped inside ``lax.scan`` as the package runs
them. After the package's warm-up (1,000 iterations), the same adapted step sizes and dense
inverse mass matrices drive 1,000 further iterations of

* NumPyro's NUTS kernel (``bayes_unsl.inference.engine.advance_chains``, the package's
  sampler: its adaptation is finished but still traced);
* BlackJAX's NUTS kernel (``blackjax.nuts``, where installed: ``pip install blackjax``;
  it is not a dependency of the package);

and a loop of the vmapped potential's value and gradient alone. Times are the least of 5
runs after compilation, per leapfrog step of all 4 chains (gradient evaluations summed over chains,
divided by 4).

XLA's CPU compiler options, set in ``XLA_FLAGS`` before the run, are recorded with each row.

    python benchmarks/step_cost.py [--precision float32] [--max-tree-depth 6]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl._precision import precision_scope
from bayes_unsl.data import validate
from bayes_unsl.inference.engine import advance_chains, init_chains, map_starts
from bayes_unsl.inference.nuts import _flat_potential, _structure
from bayes_unsl.models import ModelSpec, form_model
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
CHAINS = 4


def bnsl_potential(frame: pd.DataFrame, x: str, y: str):
    """The flat potential of a 1-break BNSL (default priors and likelihood) on a curve, and
    its dimension; a curve with fewer points than the model has parameters is refused."""
    spec = ModelSpec.build("bnsl", 1)
    data = validate(frame, x, y, min_points=spec.n_params)
    form = form_model("bnsl")
    model = partial(form.model, spec=spec)
    args = (jnp.asarray(data.z), form.context(data, spec), jnp.asarray(data.log_y))
    potential_gen, _, unravel, dim = _structure(model, args)
    return _flat_potential(potential_gen, unravel, False)(*args), dim


def addition_potential():
    frame = bu.datasets.load("four_digit_addition").iloc[:14]
    return bnsl_potential(frame, "train_dataset_size", "test_cross_entropy")


def _timed(fn, *args, repeats: int = 5):
    """Output and the least wall time of ``repeats`` runs after a first (compiling) one:
    the least is the cost with the least interference from the rest of the machine."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - started)
    return out, min(times)


def measure(max_tree_depth: int, iterations: int, seed: int = 0) -> list[dict]:
    potential, dim = addition_potential()
    config = dict(warmup=1000, target_accept=0.95, max_tree_depth=max_tree_depth, dense_mass=True)
    key = jax.random.PRNGKey(seed)
    k_start, k_jitter, k_chains = jax.random.split(key, 3)
    optima, values = map_starts(potential, 0.1 * jax.random.normal(k_start, (16, dim)))
    inits = optima[jnp.argmin(values)] + 0.01 * jax.random.normal(k_jitter, (CHAINS, dim))
    keys = jax.random.split(k_chains, CHAINS)
    state = jax.jit(lambda k, z: init_chains(potential, k, z, **config))(keys, inits)
    advance = jax.jit(lambda s, n: advance_chains(potential, s, n, **config), static_argnums=1)
    state, _ = advance(state, 1000)  # the warm-up: adapted step sizes and mass matrices
    rows = []

    (_, out), seconds = _timed(advance, state, iterations)
    rows.append(_row("numpyro NUTS (the package's)", seconds, np.asarray(out.num_steps).sum()))

    try:
        import blackjax
    except ImportError:
        blackjax = None
    if blackjax is not None:
        step_size = state.adapt_state.step_size
        inverse_mass = state.adapt_state.inverse_mass_matrix

        def run(keys, positions, step_size, inverse_mass):
            def one_chain(key, position, eps, mass):
                kernel = blackjax.nuts(
                    lambda v: -potential(v), eps, mass, max_num_doublings=max_tree_depth
                )

                def body(s, k):
                    s, info = kernel.step(k, s)
                    return s, info.num_integration_steps

                return jax.lax.scan(body, kernel.init(position), jax.random.split(key, iterations))[
                    1
                ]

            return jax.vmap(one_chain)(keys, positions, step_size, inverse_mass)

        steps, seconds = _timed(jax.jit(run), keys, state.z, step_size, inverse_mass)
        rows.append(_row(f"BlackJAX {blackjax.__version__} NUTS", seconds, np.asarray(steps).sum()))

    value_and_grad = jax.vmap(jax.value_and_grad(potential))

    def gradient_loop(z):
        def body(_, carry):
            z, total = carry
            value, grad = value_and_grad(z)
            return z - 1e-12 * grad, total + value

        return jax.lax.fori_loop(0, 20_000, body, (z, jnp.zeros(CHAINS, z.dtype)))

    _, seconds = _timed(jax.jit(gradient_loop), state.z)
    rows.append(_row("value and gradient alone", seconds, 20_000 * CHAINS))
    return rows


def _row(what: str, seconds: float, gradients: int) -> dict:
    return {
        "kernel": what,
        "seconds": round(seconds, 3),
        "gradient_evaluations": int(gradients),
        "us_per_step_of_4_chains": round(1e6 * seconds / (gradients / CHAINS), 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", choices=("float64", "float32"), default="float64")
    ap.add_argument("--max-tree-depth", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "step_cost")
    args = ap.parse_args(argv)
    with precision_scope(args.precision):
        rows = measure(args.max_tree_depth, args.iterations)
    flags = os.environ.get("XLA_FLAGS", "").strip()
    command = "python benchmarks/step_cost.py " + " ".join(sys.argv[1:])
    if flags:
        command = f"XLA_FLAGS='{flags}' {command}"
    for row in rows:
        row.update(
            xla_flags=flags,
            precision=args.precision,
            max_tree_depth=args.max_tree_depth,
            jax=jax.__version__,
            commit=git_commit(),
            machine=machine(),
            command=command.strip(),
        )
    path = args.out.with_suffix(".jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    table = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    columns = (
        "kernel",
        "precision",
        "max_tree_depth",
        "xla_flags",
        "seconds",
        "gradient_evaluations",
        "us_per_step_of_4_chains",
        "commit",
    )
    text = "\n".join(
        [
            "# Cost of one NUTS step on a CPU, by kernel",
            "",
            (__doc__ or "").split("\n\n", 1)[1].split("\n    python")[0].strip(),
            "",
            markdown_table(pd.DataFrame([{c: r.get(c, "") for c in columns} for r in table])),
            "",
            "Runs (each row's command and machine): "
            + "; ".join(sorted({f"`{r['command']}` on {r['machine']}" for r in table})),
            "",
        ]
    )
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
