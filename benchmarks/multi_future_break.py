"""The further-break prior for several inputs, judged on the multivariate training splits.

A single-input fit predicts past its data with one further break per posterior draw
(``future_break_rate`` per decade past the largest observation; ``prediction.FutureBreak``).
A multi-input UNSL can carry one such break per input, each past that input's largest
observation (their terms add); the posterior does not change, since the breaks are drawn
at prediction time. This study fits UNSL once per dataset to its inner training rows
(``multivariate.INNER``; the outer held-out rows are never read) and scores the inner
held-out rows with no further break, with the single-input default (rate 1 per decade,
data-relative slope sd) and with the single-input training splits' pick (rate 0.5, sd 2
toward the limit). ``past_share``: the share of inner held-out rows beyond the inner
training rows in some input (the breaks change nothing elsewhere).

Decision rule, fixed before the run: the further break becomes the multi-input default
(rate 1, as for one input) if, over the datasets here, its mean MSCE is lower than with no
further break and its mean LPD is not lower. Otherwise multi-input fits keep no further
break by default and the breaks stay an option (``Fit.with_future_break``).

    python benchmarks/multi_future_break.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from multivariate import (
    LEVELS,
    TASKS,
    _scores,
    bayes_row,
    inner_split,
    inner_study_parser,
    plan,
    run_inner_study,
)

from bayes_unsl.evaluation import score_names

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: (label, rate per decade, slope sd toward the limit, away; 0: data-relative)
VARIANTS = (("none", 0.0, 0.0, 0.0), ("rate 1", 1.0, 0.0, 0.0), ("rate 0.5, sd 2", 0.5, 2.0, 0.0))


def past_share(train: pd.DataFrame, test: pd.DataFrame, x: Sequence[str]) -> float:
    """The share of held-out rows beyond the fitted rows in some input."""
    top = train[list(x)].to_numpy(float).max(axis=0)
    return float((test[list(x)].to_numpy(float) > top).any(axis=1).mean())


def run(args: argparse.Namespace, sampler: dict) -> pd.DataFrame:
    rows = []
    for name in args.tasks:
        task = TASKS[name]
        train, test = inner_split(task, args.data_root)
        base = plan(task, "unsl", args.breaks)
        p = dataclasses.replace(base, priors={**base.priors, "future_break_rate": 0.0})
        print(f"{name} / unsl", flush=True)
        row, fit = bayes_row(task, "unsl", p, train, test, sampler, args.seed)
        for label, rate, toward, away in VARIANTS:
            draws = fit.with_future_break(rate, toward, away).samples(test[list(p.x)])
            scores = _scores(draws, test[task.y].to_numpy())
            rows.append(
                {
                    "task": name,
                    "variant": label,
                    "breaks": p.breaks,
                    "n_train": len(train),
                    "n_test": len(test),
                    "past_share": past_share(train, test, p.x),
                    **scores,
                    **{k: row[k] for k in ("r_hat_max", "divergences", "seconds")},
                }
            )
            print(f"  {label}: msce={scores['msce']:.4f} lpd={scores['lpd']:.3f}", flush=True)
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> list[str]:
    """The decision rule of the module doc, applied to the table."""
    by = table.groupby("variant")[["msce", "lpd"]].mean()
    none = by.loc["none"]
    lines = []
    for label in by.index.drop("none"):
        d_msce, d_lpd = by.loc[label, "msce"] - none["msce"], by.loc[label, "lpd"] - none["lpd"]
        better = d_msce < 0 and d_lpd >= 0
        rule = " (the rule's candidate)" if label == "rate 1" else ""
        lines.append(
            f"- {label}{rule} against none, over {table['task'].nunique()} datasets: mean MSCE "
            f"{by.loc[label, 'msce']:.4f} against {none['msce']:.4f}, mean LPD "
            f"{by.loc[label, 'lpd']:.3f} against {none['lpd']:.3f}: "
            + ("lower MSCE, LPD not lower" if better else "rule not met")
        )
    adopt = by.loc["rate 1", "msce"] < none["msce"] and by.loc["rate 1", "lpd"] >= none["lpd"]
    lines.append(
        "- **adopt** rate 1 as the multi-input default"
        if adopt
        else "- **not** the multi-input default: no further break unless asked for"
    )
    return lines


COLUMNS = (
    "task",
    "variant",
    "breaks",
    "n_train",
    "n_test",
    "past_share",
    *score_names(LEVELS),
    "r_hat_max",
    "divergences",
    "seconds",
)


def describe(table: pd.DataFrame, args: argparse.Namespace) -> tuple[str, Sequence, list]:
    explanation = (
        "One UNSL fit per dataset to the inner training rows (the outer training rows split "
        "again by the inner rule below); every variant predicts the inner held-out rows "
        "from that posterior. past_share: held-out rows beyond the fitted rows in some "
        "input; seconds: the one fit."
    )
    return explanation, COLUMNS, verdict(table)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = inner_study_parser(__doc__, RESULTS / "multi_future_break")
    title = "Further breaks past the data for several inputs, on the multivariate training splits"
    return run_inner_study(ap.parse_args(argv), "multi_future_break.py", title, run, describe)


if __name__ == "__main__":
    main()
