"""Convergence and held-out calibration of the default BNSL fit on real curves.

Covers, so far: the 4-digit addition curve (14 points fitted, 3 held out), the same curve cut
before its transition (x <= 512), and the 16 double-descent curves with the NSL-PFN split
(first n_context = max(3, min(round(0.5 n), n - 1)) points by x fitted, the rest held out).

    python benchmarks/convergence.py --data-root ../shared/data [--breaks 1] [--limit N]

Writes benchmarks/results/convergence.{md,csv}. Uses the public API only.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.evaluation import coverage, rmsle
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def curves(data_root: str | None):
    addition = bu.datasets.load("four_digit_addition")
    x, y = "train_dataset_size", "test_cross_entropy"
    yield "4-digit addition", "addition", addition.iloc[:14], addition.iloc[14:], x, y
    cut = addition.train_dataset_size <= 512
    yield "4-digit addition, x <= 512", "cut", addition[cut], addition[~cut], x, y
    if data_root is None:
        return
    dd = bu.datasets.read_folder("double_descent_nslpfn", data_root)
    for task, frame in dd.groupby("task", sort=True):
        frame = frame.sort_values("x_value").reset_index(drop=True)
        n = len(frame)
        n_context = max(3, min(int(0.5 * n + 0.5), n - 1))
        yield (
            task,
            "double descent",
            frame.iloc[:n_context],
            frame.iloc[n_context:],
            ("x_value"),
            "metric_value",
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", default=os.environ.get("BAYES_UNSL_DATA"))
    parser.add_argument("--breaks", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="stop after N curves")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for i, (name, group, train, held, x, y) in enumerate(curves(args.data_root)):
        if args.limit is not None and i >= args.limit:
            break
        row = {"curve": name, "group": group, "n_fit": len(train), "n_heldout": len(held)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bu.fit(train, x, y, breaks=args.breaks, progress_bar=False)
        except ValueError as err:
            row["error"] = str(err)
            rows.append(row)
            continue
        d = fit.diagnostics()
        draws = fit.samples(held[x].to_numpy())
        truth = held[y].to_numpy()
        row.update(
            converged=d["converged"],
            r_hat_max=d["r_hat_max"],
            ess_bulk_min=d["ess_bulk_min"],
            divergences=d["divergences"],
            tree_depth_mean=d["tree_depth_mean"],
            grad_evals_per_ess=d["gradient_evals_per_ess"],
            remedies=len(d["remedies"]),
            seconds=d["seconds"],
            rmsle=rmsle(draws, truth),
            coverage_50=coverage(draws, truth, 0.5),
            coverage_90=coverage(draws, truth, 0.9),
        )
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "convergence.csv", index=False)
    ok = table.dropna(subset=["converged"]) if "converged" in table else table
    pooled = {}
    for group, g in ok.groupby("group"):
        w = g["n_heldout"]
        pooled[group] = (
            f"{g['converged'].mean():.0%} converged ({len(g)} curves); held-out coverage "
            f"50% {np.average(g['coverage_50'], weights=w):.0%}, "
            f"90% {np.average(g['coverage_90'], weights=w):.0%} (pooled over points)"
        )
    lines = [
        f"# Convergence and held-out coverage: default BNSL with {args.breaks} break(s)",
        "",
        f"Command: `python benchmarks/convergence.py --data-root <shared data> --breaks "
        f"{args.breaks}`. Machine: {machine()}; commit "
        f"{git_commit()}; {time.perf_counter() - started:.0f} s in all.",
        "4 chains x (1000 + 1000), target acceptance 0.95, max tree depth 10, one automatic "
        "remedy (target acceptance 0.99, twice the warm-up) where the first run failed.",
        "",
        *[f"- {group}: {text}" for group, text in pooled.items()],
        "",
        markdown_table(table),
        "",
    ]
    (out / "convergence.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
