"""Can any further-break prior cover the cut curves' drop? Coverage over a grid of priors.

The convergence target asks 90% intervals to cover 85% of the held-out points of curves cut
before their transition (the 4-digit addition curve at x <= 390 and x <= 512, and the
double-descent curves cut just before their steepest descent, as in ``convergence.py``).
The data before the cut show no drop, so only the prior on a break past
the data can put one in the intervals. This script refits nothing per prior: each curve is
fitted once (as ``convergence.py`` fits it, max tree depth 6) and its predictions are
redrawn under each further-break prior (:meth:`bayes_unsl.Fit.with_future_break`).

It reads the held-out points, so it is a check of what the target asks, not a way to choose
a prior: the defaults were chosen on training splits (``future_break.md``).

    python benchmarks/cut_coverage.py    # writes benchmarks/results/cut_coverage.{md,csv}
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from convergence import X, Y, curves
from provenance import git_commit, machine, write_report

import bayes_unsl as bu
from bayes_unsl.evaluation import coverage
from bayes_unsl.models import ModelSpec
from bayes_unsl.tables import markdown_table

RESULTS = Path(__file__).resolve().parent / "results"
_DEFAULT = bu.BNSLPriors()
# (rate per decade, slope sd toward the limit, away from it; in log y per log x, 0: the
# data-relative sd of the fitted breaks' prior). The default first, then rate 0.5 with sd 2
# toward the limit (the pick of the 30% training splits, future_break.md).
PRIORS = [
    (_DEFAULT.future_break_rate, _DEFAULT.future_slope_sd, _DEFAULT.future_away_sd),
    (0.5, 2.0, 0.0),
    (1.0, 2.0, 0.0),
    (2.0, 2.0, 0.0),
    (1.0, 4.0, 0.0),
    (2.0, 8.0, 0.0),
    (1.0, 2.0, 2.0),
    (2.0, 2.0, 2.0),
    (5.0, 8.0, 8.0),
]


SETS = {"addition": "4-digit addition", "double descent": "steepest descent"}


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage pooled over held-out points and mean width, per prior, per set and in all."""
    hits = table.assign(
        hits_50=table["coverage_50"] * table["held_out"],
        hits_90=table["coverage_90"] * table["held_out"],
    )
    parts = []
    for label, rows in [
        *((k, hits[hits["curve"].str.contains(v)]) for k, v in SETS.items()),
        ("all", hits),
    ]:
        g = rows.groupby(["rate", "slope_sd", "away_sd"], sort=False)
        parts.append(
            pd.DataFrame(
                {
                    "set": label,
                    "curves": g["curve"].nunique(),
                    "points": g["held_out"].sum(),
                    "coverage_50": g["hits_50"].sum() / g["held_out"].sum(),
                    "coverage_90": g["hits_90"].sum() / g["held_out"].sum(),
                    "width_90": g["width_90"].mean(),
                }
            ).reset_index()
        )
    out = pd.concat(parts, ignore_index=True)
    return out[["set", *out.columns.drop("set")]]


def main() -> None:
    started = time.perf_counter()
    one_break = ModelSpec.build("bnsl", 1).n_params
    rows = []
    for name, group, train, held in curves(None, False):
        if group != "cut":
            continue
        breaks = 1 if len(train) >= one_break else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bu.fit(train, X, Y, breaks=breaks, retries=0, warn=False, max_tree_depth=6)
        truth, x = held[Y].to_numpy(), held[X].to_numpy()
        for rate, slope_sd, away_sd in PRIORS:
            draws = fit.with_future_break(rate, slope_sd, away_sd).samples(x)
            lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
            rows.append(
                {
                    "curve": name,
                    "breaks": breaks,
                    "held_out": len(held),
                    "rate": rate,
                    "slope_sd": slope_sd or "relative",
                    "away_sd": away_sd or "relative",
                    "coverage_50": coverage(draws, truth, 0.5),
                    "coverage_90": coverage(draws, truth, 0.9),
                    "width_90": float(np.mean(np.log(hi / lo))),
                    "upper_90_over_lower_90_max": float(np.max(hi / lo)),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "cut_coverage.csv", index=False)
    lines = [
        "# Cut curves: held-out coverage under further-break priors",
        "",
        f"Command: `{' '.join(['python benchmarks/cut_coverage.py', *sys.argv[1:]])}`. Machine: "
        f"{machine()}; commit {git_commit()}; {time.perf_counter() - started:.0f} s in all.",
        "",
        "Each cut curve fitted once (BNSL with 1 break, 0 where the curve has fewer points "
        "than 1 break needs; 4 chains x (1000 + 1000), max tree depth 6, seed 0, no remedy), "
        "then predicted under each further-break prior: rate per decade past the last "
        "observation and slope-change sd toward the curve's limit (`slope_sd`) and away "
        "from it (`away_sd`), in log y per log x (`relative`: scaled as the fitted breaks' "
        "prior). Width: mean log(upper / lower) of the 90% interval.",
        "",
        "Pooled over the held-out points of each set (target: 90% intervals cover at least "
        "85%; in each set the first row is the default prior, the second the pick of the "
        "30% training splits, `future_break.md`):",
        "",
        markdown_table(pooled(table)),
        "",
        "Per curve:",
    ]
    write_report(RESULTS / "cut_coverage.md", lines, table)


if __name__ == "__main__":
    main()
