"""The demo curve's sampling time and convergence by NUTS's max tree depth, over seeds.

The 4-digit addition demo (14 points fitted) with the defaults and ``retries=0``, seeds 0
to 3, at max tree depth 6, 7, 8 and 10, with the depth limited to 6 during warm-up only
(NumPyro's ``max_tree_depth=(warm-up, draws)``, which the package does not expose: this
script passes it to the kernel itself), and with it limited to 6 in warm-up's first chunk
only (the package's ``early_tree_depth``). Warm-up's first iterations, before a mass matrix
is learnt, run to the depth limit, which is where a deeper limit costs time. Writes
benchmarks/results/<name>.{md,csv} (default name demo_depth).

    python benchmarks/demo_depth.py [--seeds 0,1,2,3] [--arms "depth 6;depth 10 (default)"]
        [--name demo_depth]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
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
# (label, max_tree_depth, depth limit during warm-up only or None, early_tree_depth)
ARMS = [("depth 6", 6, None, None), ("depth 7", 7, None, None), ("depth 8", 8, None, None)]
ARMS += [("depth 10 (default)", 10, None, None), ("warm-up 6, draws 10", 10, 6, None)]
ARMS += [("first chunk 6, then 10", 10, None, 6)]


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


def measure(seeds: list[int], arms: list[tuple]) -> pd.DataFrame:
    frame = bu.datasets.load("four_digit_addition")
    train = frame.iloc[:14]
    kernels, rows = engine._kernels, []
    for label, depth, warmup_limit, early in arms:
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
                    early_tree_depth=early,
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
    parser.add_argument("--arms", default=None, help="labels separated by ;, default all")
    parser.add_argument("--name", default="demo_depth")
    args = parser.parse_args()
    arms = ARMS
    if args.arms:
        wanted = args.arms.split(";")
        unknown = set(wanted) - {arm[0] for arm in ARMS}
        if unknown:
            parser.error(f"unknown arms {sorted(unknown)}; known: {[arm[0] for arm in ARMS]}")
        arms = [arm for arm in ARMS if arm[0] in wanted]
    bu.use_cpu_cores()
    table = measure([int(s) for s in args.seeds.split(",")], arms)
    table.to_csv(RESULTS / f"{args.name}.csv", index=False)
    summary = table.groupby("arm", sort=False).agg(
        seconds_sampling_min=("seconds_sampling", "min"),
        seconds_sampling_max=("seconds_sampling", "max"),
        converged=("converged", "sum"),
        seeds=("seed", "size"),
    )
    lines = [
        "# The demo curve by max tree depth: sampling time and convergence over seeds",
        "",
        f"Command: `python benchmarks/demo_depth.py {shlex.join(sys.argv[1:])}`. Machine: "
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
    write_report(RESULTS / f"{args.name}.md", lines)


if __name__ == "__main__":
    main()
