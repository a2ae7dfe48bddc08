"""Noise trend on the multivariate training splits: does a noise scale that trends with the
inputs (``noise_trend_sd > 0``) calibrate extrapolations better than a constant one?

Each dataset's training rows (the multivariate benchmark's ``TASKS``; its held-out rows
are never read) are split again by an inner rule in the spirit of the outer one: the
largest compute budgets, the largest model, or the last steps of the training rows
(``multivariate.INNER``). UNSL (the benchmark's plan, ``--breaks`` breaks) and the
Bayesian CF form are fitted to the inner training rows with a constant noise scale and
with the trend, and scored on the inner held-out rows as the benchmark scores (MSCE over
0.5-0.99 coverage, LPD, coverage at 50/80/90/95%, CRPS, 90% width).

Decision rule, fixed before the runs: the trend becomes the default of the multi-input
forms if, over every (dataset, method) pair here, the mean MSCE is lower with it and the
mean LPD is not lower. Otherwise it stays an option. Step Law and the misfitting data are
left out for their cost (17 and 51 minutes for one UNSL fit in the benchmark).

    python benchmarks/noise_trend.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from multivariate import (
    INNER_SCORES,
    inner_study_parser,
    paired_verdict,
    run_inner_study,
    study_columns,
    variant_rows,
)

from bayes_unsl.models.likelihood import NOISE_TREND_SITE

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("unsl", "cf")


def run(args: argparse.Namespace, sampler: dict) -> pd.DataFrame:
    def vary(base, sampler, trend_sd):
        priors = {**base.priors, "noise_trend_sd": trend_sd}
        return dataclasses.replace(base, priors=priors), sampler

    def slopes(fit) -> dict:
        trend = fit.idata.posterior.get(NOISE_TREND_SITE)
        if trend is None:
            return {"noise_slope_median": ""}
        medians = np.median(trend.values, axis=(0, 1))
        return {"noise_slope_median": " ".join(f"{v:.2f}" for v in medians)}

    return variant_rows(args, sampler, METHODS, "noise_trend_sd", args.trend_sds, vary, slopes)


COLUMNS = study_columns("noise_trend_sd", ("noise_slope_median",))


def describe(table: pd.DataFrame, args: argparse.Namespace) -> tuple[str, Sequence, list]:
    explanation = (
        f"{INNER_SCORES} "
        "noise_slope_median: posterior median of the trend's slope per input (log sigma "
        "per unit of standardised log input; blank without the trend)."
    )
    return explanation, COLUMNS, paired_verdict(table, "noise_trend_sd", 0.0, "trend sd")


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = inner_study_parser(__doc__, RESULTS / "noise_trend")
    ap.add_argument(
        "--trend-sds", type=lambda s: [float(v) for v in s.split(",")], default=[0.0, 0.5]
    )
    title = "Noise trend on the multivariate training splits"
    return run_inner_study(ap.parse_args(argv), "noise_trend.py", title, run, describe)


if __name__ == "__main__":
    main()
