"""Correlated errors over several inputs on the multivariate training splits: does
likelihood "gp" (a Gaussian-process discrepancy plus independent noise) calibrate
extrapolations better than independent normal errors?

A grid of runs deviates from any form in regions, not run by run: a form that misses how
the loss trades model size against data is off along that direction. Independent errors
count every run as fresh evidence, so the form's parameters, and its forecasts, come out
too sure. Each dataset's training rows (the multivariate benchmark's ``TASKS``; its
held-out rows are never read) are split again by the inner rule (``multivariate.INNER``);
UNSL (the benchmark's plan) and the Bayesian CF form are fitted to the inner training rows
with each likelihood and scored on the inner held-out rows as the benchmark scores.

Decision rule, fixed before the runs (the noise-trend study's): "gp" becomes the default of
the multi-input forms if, over every (dataset, method) pair here, the mean MSCE is lower
with it and the mean LPD is not lower. Otherwise it stays an option. Step Law and the
misfitting data have more rows than "gp" takes.

    python benchmarks/likelihood_gp.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
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
METHODS = ("unsl", "cf")
SITES = ("sigma", "noise_corr_share", "log_noise_length")


def run(args: argparse.Namespace, sampler: dict) -> pd.DataFrame:
    def vary(base, sampler, likelihood):
        return base, {**sampler, "likelihood": likelihood}

    def medians(fit) -> dict:
        post = fit.idata.posterior
        return {f"{s}_median": float(post[s].median()) for s in SITES if s in post}

    return variant_rows(args, sampler, METHODS, "likelihood", args.likelihoods, vary, medians)


COLUMNS = study_columns("likelihood", tuple(f"{s}_median" for s in SITES))


def describe(table: pd.DataFrame, args: argparse.Namespace) -> tuple[str, Sequence, list]:
    explanation = (
        f"{INNER_SCORES} "
        "Posterior medians: sigma, the sd of each error; noise_corr_share, the correlated "
        "share of its variance (times 0.99); log_noise_length, the log of the correlation's "
        "length in standardised log inputs (blank for independent errors)."
    )
    return explanation, COLUMNS, paired_verdict(table, "likelihood", "normal", "likelihood")


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = inner_study_parser(__doc__, RESULTS / "likelihood_gp")
    ap.add_argument("--likelihoods", type=lambda s: s.split(","), default=["normal", "gp"])
    title = 'Likelihood "gp" on the multivariate training splits'
    return run_inner_study(ap.parse_args(argv), "likelihood_gp.py", title, run, describe)


if __name__ == "__main__":
    main()
