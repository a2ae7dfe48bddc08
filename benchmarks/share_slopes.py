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
benchmark scores. Decision rule, fixed before the runs: ``share_slopes`` becomes the
default if the mean MSCE is not higher and the mean LPD not lower with it (together with
the convergence comparison in ``results/share_slopes.md``).

    python benchmarks/share_slopes.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from multivariate import (
    INNER_SCORES,
    inner_study_parser,
    paired_verdict,
    run_inner_study,
    study_columns,
    variant_rows,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("unsl",)


def run(args: argparse.Namespace, sampler: dict) -> pd.DataFrame:
    def vary(base, sampler, on):
        return dataclasses.replace(base, priors={**base.priors, "share_slopes": on}), sampler

    def nothing(fit) -> dict:
        return {}

    return variant_rows(args, sampler, METHODS, "share_slopes", [False, True], vary, nothing)


COLUMNS = study_columns("share_slopes", ("ess_bulk_min", "tree_depth_mean"))


def describe(table: pd.DataFrame, args: argparse.Namespace) -> tuple[str, Sequence, list]:
    return INNER_SCORES, COLUMNS, paired_verdict(table, "share_slopes", False, "share_slopes")


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = inner_study_parser(__doc__, RESULTS / "share_slopes_inner")
    title = "Share-scaled UNSL slopes on the multivariate training splits"
    return run_inner_study(ap.parse_args(argv), "share_slopes.py", title, run, describe)


if __name__ == "__main__":
    main()
