"""Chinchilla's residual scatter by compute budget: a diagnostic of the multivariate miss.

The CF point fit (Huber on log-sum-exp, ``bayes_unsl.baselines.fit_chinchilla_point``) is
fitted to the multivariate benchmark's Chinchilla training rows (FLOPs < 1e21, Epoch AI's
five high-loss outliers left out). Its residuals of log loss are summarised by half-decade
of training FLOPs, for the training rows and for the held-out rows (FLOPs >= 1e21), and
the held-out residuals are listed with their model sizes. A diagnostic only: no choice of
the package reads it.

    python benchmarks/chinchilla_residuals.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from multivariate import TASKS
from provenance import git_commit, machine

from bayes_unsl.baselines import fit_chinchilla_point
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ["n_params", "n_tokens"]


def residuals(root: Path) -> pd.DataFrame:
    frame = TASKS["chinchilla_approach3_epoch"].load(root).reset_index(drop=True)
    train = frame[~frame["held_out"]]
    fit = fit_chinchilla_point(train[INPUTS].to_numpy(float), train["loss"].to_numpy(float))
    predicted = fit.log_predict(np.log(frame[INPUTS].to_numpy(float)))
    return frame.assign(
        residual=np.log(frame["loss"].to_numpy(float)) - predicted,
        budget=np.floor(2 * np.log10(frame["training_flops"])) / 2,
    )


def by_budget(frame: pd.DataFrame) -> pd.DataFrame:
    table = (
        frame.groupby(["held_out", "budget"])["residual"]
        .agg(rows="count", mean="mean", sd="std")
        .reset_index()
    )
    table["budget"] = [f"10^{b:g}" for b in table["budget"]]
    return table


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    frame = residuals(args.data_root)
    summary = frame.groupby("held_out")["residual"].agg(rows="count", mean="mean", sd="std")
    held = frame[frame["held_out"]].sort_values("training_flops")
    command = "python benchmarks/chinchilla_residuals.py " + shlex.join(sys.argv[1:])
    text = "\n".join(
        [
            "# Chinchilla: residual scatter of the CF point fit by compute budget",
            "",
            f"Command: `{command.strip()}`. Machine: {machine()}; commit {git_commit()}.",
            "",
            (__doc__ or "").split("\n\n")[1].replace("\n", " "),
            "",
            "## Training against held-out rows",
            "",
            markdown_table(summary.reset_index()),
            "",
            "## By half-decade of training FLOPs",
            "",
            markdown_table(by_budget(frame)),
            "",
            "## Held-out rows",
            "",
            markdown_table(held[["n_params", "n_tokens", "training_flops", "loss", "residual"]]),
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chinchilla_residuals.md").write_text(text)
    by_budget(frame).to_csv(args.out / "chinchilla_residuals.csv", index=False)
    print(text)


if __name__ == "__main__":
    main()
