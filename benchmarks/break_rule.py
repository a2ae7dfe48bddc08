"""Which rule should choose the number of breaks? Judged on training splits.

``breaks="auto"`` fits 0 to 2 breaks and keeps the fewest whose PSIS-LOO is not clearly worse
than the best. Whether only converged fits should compete, and whether to prefer fewer
breaks at all, must not be decided on the benchmarks' held-out points. This study uses the
context (training) points of each curve only, as benchmarks/future_break.py does: the
largest-x ``--hold`` share of them (at least 2) is held out, BNSL with 0, 1 and 2 breaks is
fitted to the rest, and each rule's choice predicts the held-out training points.

Rules (PSIS-LOO on the fitted points only; the first two are the package's own,
``bayes_unsl.break_choice.choose_breaks``):
- ``auto``: parsimonious among the converged fits (all when none converged), the
  ``converged-first`` rule (the default of ``breaks="auto"`` when this study was first run;
  the label is kept so that result files compare).
- ``parsimonious``: parsimonious among all fits, converged or not (the default since).
- ``loo-best``: the best expected log predictive density among all fits.
- ``loo-best-converged``: the best among the converged fits (all when none converged).
- ``breaks<k>``: always k breaks, or the most a curve is long enough for (for reference;
  not a rule).
- ``lfo`` (with ``--lfo``): leave-future-out. The inner-training points are split once more
  the same way (the largest-x ``--hold`` share, at least 2, held out), 0, 1 and 2 breaks
  are fitted to the smaller part, and the number of breaks whose forecast of the points
  just past it has the highest mean log predictive density is the choice (among those
  fitted at both stages). PSIS-LOO asks how well a fit predicts a point inside the data;
  this asks how well it forecast the next points, which is what a user does with it, at
  the cost of a second round of fits. Decision, fixed before its first run: ``lfo``
  becomes an option of ``breaks="auto"`` only if the criterion below chooses it over
  ``parsimonious``.

Criterion, fixed before the run: the mean over domain groups of the pooled MSCE (levels 0.5
to 0.99); rules within 0.002 of the best are tied, and among tied rules the one whose chosen
fits converged most often wins.

    python benchmarks/break_rule.py --data-root ../shared/data --domains DD,addition,LM,BB,IC
        [--lfo]

Writes break_rule.md and break_rule.csv to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from calibration import LEVELS
from future_break import group_of, inner_splits, pooled, split_study_parser, study_curves
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.break_choice import choose_breaks
from bayes_unsl.evaluation import score_all, select_by_loo
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
COUNTS = (0, 1, 2)
TIE = 0.002


def _loo_best(fits: Mapping[int, bu.Fit], converged_first: bool) -> int:
    named = {f"breaks{k}": f for k, f in sorted(fits.items())}
    if converged_first:
        named = {n: f for n, f in named.items() if f.converged} or named
    return named[select_by_loo(named, rule="best")].spec.breaks


RULES: dict[str, Callable[[Mapping[int, bu.Fit]], int]] = {
    "auto": lambda fits: choose_breaks(fits, "converged-first"),
    "parsimonious": lambda fits: choose_breaks(fits, "parsimonious"),
    "loo-best": lambda fits: _loo_best(fits, converged_first=False),
    "loo-best-converged": lambda fits: _loo_best(fits, converged_first=True),
    **{f"breaks{k}": (lambda fits, k=k: k if k in fits else max(fits)) for k in COUNTS},
}


def fit_counts(
    table: pd.DataFrame, args, fits_dir: Path | None, counts: Sequence[int] = COUNTS
) -> dict[int, bu.FitCollection]:
    runs = {}
    for k in counts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs[k] = bu.fit_many(
                table,
                "curve",
                "x",
                "y",
                breaks=k,
                chains=args.chains,
                warmup=args.warmup,
                draws=args.draws,
                max_tree_depth=args.max_tree_depth,
                seed=args.seed,
                priors=json.loads(args.priors) if args.priors else None,
                retries=0,
                warn=False,
                progress_bar=False,
                out=None if fits_dir is None else fits_dir / f"breaks{k}",
            )
        print(f"{k} breaks: {len(runs[k])} fits, {len(runs[k].errors)} not fitted", flush=True)
    return runs


def fit_training_splits(args, counts: Sequence[int] = COUNTS):
    """The study's curves, their inner splits, the keys too short to split, and the fits
    of each number of breaks in ``counts`` to the inner-training points."""
    curves = study_curves(args)
    splits, skipped, table = inner_splits(curves, args.hold)
    fits_dir = Path(args.fits_dir) if args.fits_dir else None
    return curves, splits, skipped, fit_counts(table, args, fits_dir, counts)


def forecast_choices(splits, args) -> dict[str, int]:
    """The ``lfo`` rule's choice per curve: each inner-training set split again at its
    largest x, every number of breaks fitted to the smaller part and scored by the mean
    log predictive density of the points just past it (curves whose smaller part is too
    short for every count, or whose fits all failed, get no choice)."""
    tables = []
    lfo_held = {}
    for key, (train, _) in splits.items():
        n_held = max(2, int(round(args.hold * len(train))))
        tables.append(train.iloc[: len(train) - n_held].assign(curve=key))
        lfo_held[key] = (train.iloc[: len(train) - n_held], train.iloc[len(train) - n_held :])
    fits_dir = Path(args.fits_dir) / "lfo" if args.fits_dir else None
    runs = fit_counts(pd.concat(tables, ignore_index=True), args, fits_dir)
    choices = {}
    for key, (before, after) in lfo_held.items():
        lpd = {}
        for k, run in runs.items():
            if key in run:
                draws = run[key].samples(after["x"].to_numpy())
                scale = float(before["y"].max())
                lpd[k] = score_all(draws, after["y"].to_numpy(), LEVELS, scale=scale)["lpd"]
        if lpd:
            choices[key] = max(lpd, key=lambda k: (lpd[k], -k))
    return choices


def score_rules(curves, splits, runs, lfo: Mapping[str, int] | None = None) -> pd.DataFrame:
    """One row per (curve, rule): the rule's number of breaks and its fit's scores on the
    held-out training points. ``lfo``: the ``lfo`` rule's choice per curve, where run."""
    rows = []
    for curve in curves:
        if curve.key not in splits:
            continue
        fits = {k: r[curve.key] for k, r in runs.items() if curve.key in r}
        if not fits:
            continue
        train, held = splits[curve.key]
        truth = held["y"].to_numpy()
        scale = float(train["y"].max())
        draws_of = {}
        rules = dict(RULES)
        if lfo is not None:
            # A curve the forecast stage could not score falls back to the package default.
            rules["lfo"] = lambda fits, key=curve.key: (
                lfo[key] if lfo.get(key) in fits else choose_breaks(fits, "parsimonious")
            )
        for rule, choose in rules.items():
            k = choose(fits)
            if k not in draws_of:
                draws_of[k] = fits[k].samples(held["x"].to_numpy())
            rows.append(
                {
                    "group": group_of(curve.domain),
                    "curve": curve.key,
                    "rule": rule,
                    "breaks": k,
                    "converged": bool(fits[k].converged),
                    **score_all(draws_of[k], truth, LEVELS, scale=scale),
                }
            )
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (group, rule), r in rows.groupby(["group", "rule"], sort=True):
        out.append(
            {
                "group": group,
                "rule": rule,
                **pooled(r),
                "rmsle": float(r["rmsle"].mean()),
                "lpd": float(r["lpd"].mean()),
                "width90": float(r["width_90"].median()),
                "mean_breaks": float(r["breaks"].mean()),
                "converged": float(r["converged"].mean()),
            }
        )
    return pd.DataFrame(out)


def rank(summary: pd.DataFrame) -> pd.DataFrame:
    table = (
        summary.groupby("rule", sort=False)
        .agg(
            msce=("msce", "mean"),
            rmsle=("rmsle", "mean"),
            width90=("width90", "mean"),
            converged=("converged", "mean"),
            mean_breaks=("mean_breaks", "mean"),
            groups=("group", "count"),
        )
        .reset_index()
    )
    table["is_rule"] = ~table["rule"].str.startswith("breaks")
    best = table.loc[table["is_rule"], "msce"].min()
    table["within_tie"] = table["is_rule"] & (table["msce"] <= best + TIE)
    return table.sort_values(["msce", "converged"], ascending=[True, False])


def report(rows, summary, ranking, skipped, args, seconds, command) -> str:
    import jax

    tied = ranking[ranking["within_tie"]].sort_values("converged", ascending=False)
    winner = tied.iloc[0]["rule"]
    settings = (
        f"{args.chains} chains, {args.warmup} warm-up + {args.draws} draws, max tree depth "
        f"{args.max_tree_depth}, no automatic remedy, seed {args.seed}; priors: "
        + (args.priors or "the defaults")
    )
    lines = [
        "# Choosing the number of breaks, judged on training splits",
        "",
        f"Command: `{command}`. Machine: {machine()}; JAX {jax.__version__} on "
        f"{jax.default_backend()}; commit {git_commit()}; {seconds:.0f} s in all.",
        "",
        "Per curve, the context (training) points only: the largest-x "
        f"{args.hold:.0%} (at least 2) held out, BNSL with 0, 1 and 2 breaks fitted to the "
        f"rest ({settings}). No benchmark held-out point is read. DD and IC curves are "
        "scored on y divided by the largest inner-training y (LPD, width); coverage does "
        "not depend on it.",
        "",
        *(
            [
                "Rule `lfo`: the inner-training points split again the same way, 0-2 breaks "
                "fitted to the smaller part (same sampler), the count whose forecast of the "
                "rest has the highest mean log predictive density chosen; "
                f"{int((rows['rule'] == 'lfo').sum())} curves.",
                "",
            ]
            if (rows["rule"] == "lfo").any()
            else []
        ),
        f"Curves: {rows['curve'].nunique()} scored; {len(skipped)} skipped (fewer than 8 "
        "inner-training points)" + (": " + ", ".join(skipped) if skipped else "") + ".",
        "",
        "Criterion (fixed before the run): mean over groups of the pooled MSCE; rules "
        f"within {TIE} of the best are tied and the one whose chosen fits converged most "
        "often wins. Fixed counts (breaks0-2) are shown for reference.",
        "",
        f"**Chosen: {winner}.**",
        "",
        "## Ranking (mean over groups)",
        "",
        markdown_table(ranking),
        "",
        "## Per group",
        "",
        markdown_table(summary),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = split_study_parser(__doc__.splitlines()[0], "DD,addition,LM,BB,IC", 12)
    p.add_argument("--max-tree-depth", type=int, default=10)
    p.add_argument("--priors", default=None, help="prior settings as JSON (default: defaults)")
    p.add_argument("--name", default="break_rule", help="results file name (no suffix)")
    p.add_argument(
        "--lfo", action="store_true", help="add the leave-future-out rule (a second round of fits)"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    command = "python benchmarks/break_rule.py " + shlex.join(argv or sys.argv[1:])
    started = time.perf_counter()
    curves, splits, skipped, runs = fit_training_splits(args)
    lfo = forecast_choices(splits, args) if args.lfo else None
    rows = score_rules(curves, splits, runs, lfo)
    summary = summarise(rows)
    ranking = rank(summary)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / f"{args.name}.csv", index=False)
    text = report(rows, summary, ranking, skipped, args, seconds, command)
    (out / f"{args.name}.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
