"""The demo curve's sampling time and convergence by NUTS's max tree depth, over seeds.

The 4-digit addition demo (14 points fitted) with the defaults and ``retries=0``, seeds 0
to 3, at max tree depth 6, 7, 8 and 10, and with the depth limited to 6 during warm-up
only (NumPyro's ``max_tree_depth=(warm-up, draws)``, which the package does not expose:
this script passes it to the kernel itself). Warm-up's first iterations, before a mass
matrix is learnt, run to the depth limit, which is where a deeper limit costs time.
Writes benchmarks/results/demo_depth.{md,csv}.

    python benchmarks/demo_depth.py
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import pandas as pd
from provenance import git_commit, machine, write_report

# The warm-up-limited arm changes the kernel, which the stored programs' key does not see:
# store nothing, so that every arm is traced from its own kernel.
os.environ["BAYES_UNSL_CACHE_DIR"] = "0"

import bayes_unsl as bu  # noqa: E402
import bayes_unsl.inference.engine as engine  # noqa: E402
import bayes_unsl.inference.nuts as nuts  # noqa: E402
from bayes_unsl.tables import markdown_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# (label, max_tree_depth, depth limit during warm-up only or None)
ARMS = [("depth 6", 6, None), ("depth 7", 7, None), ("depth 8", 8, None)]
ARMS += [("depth 10 (default)", 10, None), ("warm-up 6, draws 10", 10, 6)]


def _warmup_limited(kernels, limit: int):
    def patched(potential, *, warmup, target_accept, max_tree_depth, dense_mass):
        depth = (min(limit, max_tree_depth), max_tree_depth)
        return kernels(
            potential,
            warmup=warmup,
            target_accept=target_accept,
            max_tree_depth=depth,
            dense_mass=dense_mass,
        )

    return patched


def measure(seeds: list[int]) -> pd.DataFrame:
    frame = bu.datasets.load("four_digit_addition")
    train = frame.iloc[:14]
    kernels, rows = engine._kernels, []
    for label, depth, warmup_limit in ARMS:
        limited = warmup_limit is not None
        engine._kernels = _warmup_limited(kernels, warmup_limit) if limited else kernels
        nuts._PROGRAMS.clear()  # this process's programs, keyed on the settings only
        for seed in seeds:
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bu.fit(
                    train,
                    "train_dataset_size",
                    "test_cross_entropy",
                    seed=seed,
                    max_tree_depth=depth,
                    retries=0,
                    warn=False,
                    progress_bar=False,
                )
            d = fit.diagnostics()
            rows.append(
                {
                    "arm": label,
                    "seed": seed,
                    "seconds_sampling": round(d["seconds_sampling"], 2),
                    "seconds_fit": round(time.perf_counter() - started, 2),
                    "converged": bool(d["converged"]),
                    "r_hat_max": round(d["r_hat_max"], 4),
                    "ess_bulk_min": round(d["ess_bulk_min"]),
                    "tree_depth_mean": round(d["tree_depth_mean"], 2),
                    "draw_steps": int(d["gradient_evals"]),
                }
            )
            print(rows[-1], flush=True)
    engine._kernels = kernels
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    args = parser.parse_args()
    bu.use_cpu_cores()
    table = measure([int(s) for s in args.seeds.split(",")])
    table.to_csv(RESULTS / "demo_depth.csv", index=False)
    summary = table.groupby("arm", sort=False).agg(
        seconds_sampling_min=("seconds_sampling", "min"),
        seconds_sampling_max=("seconds_sampling", "max"),
        converged=("converged", "sum"),
        seeds=("seed", "size"),
    )
    lines = [
        "# The demo curve by max tree depth: sampling time and convergence over seeds",
        "",
        f"Command: `python benchmarks/demo_depth.py --seeds {args.seeds}`. Machine: "
        f"{machine()}; commit {git_commit()}. Compiled programs are neither stored nor "
        "loaded (every arm is traced from its own kernel), so `seconds_fit` includes "
        "compilation for the first seed of each arm; `seconds_sampling` does not.",
        "",
        "4-digit addition, the first 14 points, BNSL with 1 break and the defaults, 4 chains "
        "x (1000 + 1000), chains split over the CPU cores, `retries=0`. Converged: max R-hat "
        "<= 1.01, bulk ESS >= 400, no divergences. draw_steps: leapfrog steps in the draws.",
        "",
        "## Per arm",
        "",
        markdown_table(summary.reset_index()),
        "",
        "## Every fit",
        "",
        markdown_table(table),
        "",
    ]
    write_report(RESULTS / "demo_depth.md", lines)


if __name__ == "__main__":
    main()
