"""Two convergence.py runs side by side on the curves both scored, per group.

    python benchmarks/compare_runs.py RUN_A RUN_B [--form-a bnsl-auto] [--form-b bnsl-auto]
        --name NAME

RUN_A and RUN_B are result names under benchmarks/results (their CSVs). Per group and in
all: curves, converged share, mean held-out RMSLE, coverage of the 50% and 90% intervals
pooled over held-out points, mean 90% width. Writes results/NAME.{md,csv}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import git_commit, machine, write_report

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _aggregate(rows: pd.DataFrame) -> dict:
    weights = rows["n_heldout"]
    return {
        "curves": len(rows),
        "converged": rows["converged"].astype(bool).mean(),
        "rmsle": rows["rmsle"].mean(),
        "coverage_50": np.average(rows["coverage_50"], weights=weights),
        "coverage_90": np.average(rows["coverage_90"], weights=weights),
        "width_90": rows["width_90"].mean(),
    }


def compare(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per group (and "all") and run, on the curves every run scored."""
    scored = {name: t.dropna(subset=["converged"]) for name, t in runs.items()}
    common = set.intersection(*(set(t["curve"]) for t in scored.values()))
    rows = []
    for name, table in scored.items():
        table = table[table["curve"].isin(common)]
        for group, part in [("all", table), *table.groupby("group", sort=True)]:
            rows.append({"group": group, "run": name, **_aggregate(part)})
    return pd.DataFrame(rows).sort_values(["group", "run"], kind="stable")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--form-a", default="bnsl-auto")
    parser.add_argument("--form-b", default="bnsl-auto")
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    runs = {}
    for run, form in ((args.run_a, args.form_a), (args.run_b, args.form_b)):
        table = pd.read_csv(RESULTS / f"{run}.csv")
        runs[f"{run} ({form})"] = table[table["form"] == form]
    table = compare(runs).round(4)
    table.to_csv(RESULTS / f"{args.name}.csv", index=False)
    command = (
        f"python benchmarks/compare_runs.py {args.run_a} {args.run_b} "
        f"--form-a {args.form_a} --form-b {args.form_b} --name {args.name}"
    )
    lines = [
        f"# {args.run_a} against {args.run_b}",
        "",
        f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}. Read from the "
        "two runs' CSVs (each states its own command and commit); no fit here.",
        "",
        "On the curves both runs scored: converged share, mean held-out RMSLE, coverage "
        "pooled over held-out points, mean 90% width in log y.",
    ]
    write_report(RESULTS / f"{args.name}.md", lines, table)


if __name__ == "__main__":
    main()
