"""BNSL or M4 for one input? Judged on training splits, with the choice by PSIS-LOO.

On the calibration benchmark the bootstrapped M4 point fit predicts double descent better
than every Bayesian BNSL (`calibration_breaks01.md`), and the package has a Bayesian M4
(``form="m4"``). Whether a user should fit both and keep the one PSIS-LOO prefers must
not be decided on the benchmark's held-out points. As in benchmarks/future_break.py, each
curve's context points only are used: the largest-x ``--hold`` share of them is held out,
BNSL with 1 break (the default) and M4 are fitted to the rest, and each rule's choice
predicts the held-out training points.

Rules: ``bnsl1`` and ``m4`` (always that form) and ``loo-form`` (per curve, the form with
the higher PSIS-LOO on the fitted points, ``bayes_unsl.evaluation.select_by_loo``).

Decision rule, fixed before the run: the README recommends choosing the form by PSIS-LOO
if ``loo-form`` has a lower mean over groups of the pooled MSCE than ``bnsl1`` and no
group's mean LPD more than 0.1 below ``bnsl1``'s.

    python benchmarks/form_choice.py --data-root ../shared/data
"""

from __future__ import annotations

import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from break_rule import summarise
from calibration import LEVELS
from future_break import group_of, inner_splits, split_study_parser, study_curves
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.evaluation import score_all, select_by_loo
from bayes_unsl.tables import markdown_table

FORMS = {"bnsl1": {"form": "bnsl", "breaks": 1}, "m4": {"form": "m4"}}
RULES = ("bnsl1", "m4", "loo-form")
LPD_DROP = 0.1


def fit_forms(table: pd.DataFrame, args) -> dict[str, bu.FitCollection]:
    runs = {}
    for name, form in FORMS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs[name] = bu.fit_many(
                table,
                "curve",
                "x",
                "y",
                **form,
                chains=args.chains,
                warmup=args.warmup,
                draws=args.draws,
                seed=args.seed,
                retries=0,
                warn=False,
                progress_bar=False,
            )
        print(f"{name}: {len(runs[name])} fits, {len(runs[name].errors)} not fitted", flush=True)
    return runs


def choose(rule: str, fits: dict[str, bu.Fit]) -> str:
    if rule in fits:
        return rule
    return select_by_loo(fits) if len(fits) > 1 else next(iter(fits))


def score(curves, splits, runs) -> pd.DataFrame:
    rows = []
    for curve in curves:
        fits = {name: run[curve.key] for name, run in runs.items() if curve.key in run}
        if curve.key not in splits or set(fits) != set(FORMS):
            continue
        train, held = splits[curve.key]
        for rule in RULES:
            name = choose(rule, fits)
            draws = fits[name].samples(held["x"].to_numpy())
            rows.append(
                {
                    "group": group_of(curve.domain),
                    "curve": curve.key,
                    "rule": rule,
                    "chosen": name,
                    "breaks": fits[name].spec.breaks,
                    "converged": bool(fits[name].converged),
                    **score_all(draws, held["y"].to_numpy(), LEVELS, scale=float(train["y"].max())),
                }
            )
    return pd.DataFrame(rows)


def verdict(summary: pd.DataFrame) -> str:
    by_rule = summary.set_index(["rule", "group"])
    msce = summary.groupby("rule")["msce"].mean()
    drops = [
        g
        for g in summary["group"].unique()
        if by_rule.loc[("loo-form", g), "lpd"] < by_rule.loc[("bnsl1", g), "lpd"] - LPD_DROP
    ]
    adopt = msce["loo-form"] < msce["bnsl1"] and not drops
    return (
        f"Mean over groups of the pooled MSCE: loo-form {msce['loo-form']:.4f}, bnsl1 "
        f"{msce['bnsl1']:.4f}, m4 {msce['m4']:.4f}. Groups where loo-form's mean LPD is more "
        f"than {LPD_DROP} below bnsl1's: {', '.join(drops) or 'none'}. "
        + (
            "**Recommend choosing the form by PSIS-LOO.**"
            if adopt
            else "**Not recommended** (rule not met)."
        )
    )


def report(rows, summary, skipped, args, seconds, command) -> str:
    chosen = rows[rows["rule"] == "loo-form"].groupby("group")["chosen"].value_counts()
    return "\n".join(
        [
            "# BNSL or M4 for one input, chosen by PSIS-LOO, on training splits",
            "",
            f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}; "
            f"{seconds:.0f} s in all.",
            "",
            f"Per curve, the largest-x {args.hold:.0%} of the context points held out; BNSL "
            f"with 1 break and M4 fitted to the rest ({args.chains} chains x ({args.warmup} + "
            f"{args.draws}), no refit, seed {args.seed}, default priors and likelihoods). No "
            "benchmark held-out point is read. Coverage pooled over held-out points; LPD, "
            "RMSLE mean over curves (DD and IC scored on y over the largest inner-training "
            "y). Converged: the chosen fit passed R-hat, ESS and divergence checks.",
            "",
            f"Curves: {rows['curve'].nunique()} scored; {len(skipped)} skipped (too few "
            "inner-training points).",
            "",
            verdict(summary),
            "",
            markdown_table(summary),
            "",
            "loo-form's choices by group: "
            + "; ".join(f"{g} {n}: {c}" for (g, n), c in chosen.items()),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = split_study_parser(__doc__.splitlines()[0], "DD,addition,NMT,LM,BB,IC", 16).parse_args(
        argv
    )
    command = "python benchmarks/form_choice.py " + shlex.join(sys.argv[1:])
    started = time.perf_counter()
    curves = study_curves(args)
    splits, skipped, table = inner_splits(curves, args.hold)
    rows = score(curves, splits, fit_forms(table, args))
    summary = summarise(rows)
    out = Path(args.out)
    rows.to_csv(out / "form_choice.csv", index=False)
    text = report(rows, summary, skipped, args, time.perf_counter() - started, command)
    (out / "form_choice.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
