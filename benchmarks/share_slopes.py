"""Share-scaled slopes on the multivariate training splits: does sampling each UNSL
component's slopes as seen in log y (``share_slopes=True``) calibrate as well as sampling
them in units of the reducible part, and does it mix better?

A component's slope seen in log y at the centre of the data is its share of y there times
its slope in log M_r; sampled in units of the reducible part ``y - a`` only, the slope and
the component's share of the Dirichlet trade off along a hyperbola (seen on the
misfitting and Datablations posteriors). ``share_slopes`` divides by the share too, which
also changes the implied prior of the slopes of log M_r.

Each dataset's training rows are split again by the inner rule (``multivariate.INNER``;
the outer held-out rows are never read) and UNSL (the benchmark's plan) is fitted to the
inner training rows with the switch off and on, scored on the inner held-out rows as the
benchmark scores. Decision rule, fixed before the runs (that of every inner study): the
switch becomes the default if its mean MSCE is lower and its mean LPD is not lower, and
if it mixes better (``--convergence``: more fits passing R-hat and ESS, a higher median
least ESS).

    python benchmarks/share_slopes.py --data-root ../shared/data

``--convergence`` instead fits UNSL (the benchmark's plan; 1 break where the plan has
breaks, none on the three- and four-input tasks) to each dataset's outer training rows with
the switch off and on, seeds 0-3, 4 chains x (500 + 500), no refit, and compares mixing:
max R-hat, least bulk ESS, divergences and mean tree depth (misfitting and Step Law
subsampled to a few hundred rows, for their cost; no held-out row is used).

    python benchmarks/share_slopes.py --convergence --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from multivariate import (
    INNER_SCORES,
    TASKS,
    fit_plan,
    inner_study_parser,
    paired_verdict,
    plan,
    run_inner_study,
    study_columns,
    variant_rows,
)
from provenance import git_commit, machine

from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("unsl",)


def run(args: argparse.Namespace, sampler: dict) -> pd.DataFrame:
    def vary(base, sampler, on):
        return dataclasses.replace(base, priors={**base.priors, "share_slopes": on}), sampler

    no_extras = lambda fit: {}  # noqa: E731
    return variant_rows(args, sampler, METHODS, "share_slopes", [False, True], vary, no_extras)


COLUMNS = study_columns("share_slopes", ("ess_bulk_min", "tree_depth_mean"))


def describe(table: pd.DataFrame, args: argparse.Namespace) -> tuple[str, Sequence, list]:
    return INNER_SCORES, COLUMNS, paired_verdict(table, "share_slopes", False, "share_slopes")


#: (task, rows of its outer training set to fit: all, or a seeded subsample, breaks).
CONVERGENCE_TASKS = (
    ("misfitting_li2025_openlm", 500, 0),
    ("chinchilla_approach3_epoch", None, 1),
    ("datablations_repetition", None, 1),
    ("pythia_training_evals", None, 1),
    ("steplaw_dense_lr_bs", 400, 0),
    ("gadre2024_overtraining", None, 0),
)
PASS = "R-hat <= 1.01 and bulk ESS >= 400"
PROBE_SAMPLER = dict(warmup=500, draws=500, retries=0, warn=False, progress_bar=False)


def convergence_rows(data_root: Path, seeds: Sequence[int]) -> pd.DataFrame:
    """One fit per (task, seed, switch) on the outer training rows, without refits."""
    rows = []
    for name, rows_kept, breaks in CONVERGENCE_TASKS:
        task = TASKS[name]
        frame = task.load(data_root)
        train = frame[~frame["held_out"]].reset_index(drop=True)
        if rows_kept is not None and rows_kept < len(train):
            train = train.sample(rows_kept, random_state=0).reset_index(drop=True)
        p = plan(task, "unsl", breaks)
        for seed in seeds:
            for on in (False, True):
                switched = dataclasses.replace(p, priors={**p.priors, "share_slopes": on})
                fit = fit_plan(task, switched, train, seed, **PROBE_SAMPLER)
                d = fit.diagnostics()
                rows.append(
                    {
                        "task": name,
                        "rows": len(train),
                        "breaks": p.breaks,
                        "seed": seed,
                        "share_slopes": on,
                        "r_hat_max": d["r_hat_max"],
                        "ess_bulk_min": d["ess_bulk_min"],
                        "divergences": d["divergences"],
                        "tree_depth_mean": d["tree_depth_mean"],
                        "seconds": d["seconds"],
                    }
                )
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def convergence_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per switch: fits passing, median least ESS, median max R-hat, divergences."""
    passed = (table.r_hat_max <= 1.01) & (table.ess_bulk_min >= 400)
    return (
        table.assign(passed=passed)
        .groupby("share_slopes")
        .agg(
            fits=("passed", "size"),
            passed=("passed", "sum"),
            median_ess_bulk_min=("ess_bulk_min", "median"),
            median_r_hat_max=("r_hat_max", "median"),
            divergences=("divergences", "sum"),
            mean_tree_depth=("tree_depth_mean", "mean"),
        )
        .reset_index()
    )


def convergence_report(table: pd.DataFrame, command: str, commit: str, minutes: float) -> str:
    per_task = table.pivot_table(
        index=["task", "seed"],
        columns="share_slopes",
        values=["r_hat_max", "ess_bulk_min", "divergences"],
    )
    per_task.columns = [f"{v}_{'on' if on else 'off'}" for v, on in per_task.columns]
    better = np.sign(per_task["ess_bulk_min_on"] - per_task["ess_bulk_min_off"])
    return "\n".join(
        [
            "# Share-scaled UNSL slopes: mixing on the multivariate training rows",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine()}  ",
            f"Commit: {commit}  ",
            f"Wall time: {minutes:.1f} min",
            "",
            "UNSL as the multivariate benchmark plans it, fitted to each dataset's outer "
            "training rows (column `rows`: the misfitting and Step Law rows are a seeded "
            "subsample) with `share_slopes` off and on, 4 chains x (500 + 500), max tree depth "
            "10, no refit. Passed: " + PASS + ".",
            "",
            markdown_table(convergence_summary(table)),
            "",
            f"Least bulk ESS higher with the switch on in {int((better > 0).sum())} of "
            f"{len(better)} (task, seed) pairs.",
            "",
            markdown_table(table, digits=5),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = inner_study_parser(__doc__, RESULTS / "share_slopes_inner")
    ap.add_argument("--convergence", action="store_true", help="compare mixing instead")
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2, 3])
    args = ap.parse_args(argv)
    if not args.convergence:
        title = "Share-scaled UNSL slopes on the multivariate training splits"
        return run_inner_study(args, "share_slopes.py", title, run, describe)
    started, commit = time.perf_counter(), git_commit()
    table = convergence_rows(args.data_root, args.seeds)
    stem = RESULTS / "share_slopes_convergence"
    table.to_csv(stem.with_suffix(".csv"), index=False)
    command = "python benchmarks/share_slopes.py " + " ".join(sys.argv[1:])
    minutes = (time.perf_counter() - started) / 60
    stem.with_suffix(".md").write_text(convergence_report(table, command, commit, minutes))
    return table


if __name__ == "__main__":
    main()
