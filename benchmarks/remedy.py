"""Which automatic remedy rescues the fits that fail their convergence checks?

Every curve of the convergence benchmark is fitted once as ``fit`` fits it (BNSL with 1
break, 0 where the curve has too few points; 4 chains x (1000 + 1000), the default priors
and likelihood) at a given max tree depth. Each fit that fails the package's convergence
checks is refitted from the same seed under every remedy ``fit`` offers
(``bayes_unsl.fit.remedy``):

- ``longer``: target acceptance 0.99, twice the warm-up, twice the draws;
- ``map``: the same settings, sampled in the coordinates of a tube map fitted to the
  failed run's draws (``bayes_unsl.inference.transport``);
- ``map+longer``: both.

Reported per remedy: the share of failed fits it rescues (the package's checks: R-hat,
bulk and tail ESS, divergences, separate chains; and the issue's R-hat <= 1.01 with bulk
ESS >= 400), gradient evaluations after warm-up and sampling seconds (warm-up
included, compilation apart).

    python benchmarks/remedy.py --data-root ../shared/data [--depth 6]
        # writes benchmarks/results/remedy.{md,csv}
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import pandas as pd
from convergence import X, Y, curves
from provenance import git_commit, machine, write_report

from bayes_unsl.data import TooFewPoints, validate
from bayes_unsl.fit import REMEDIES, _result, _sample, parse_options, remedy
from bayes_unsl.inference.diagnostics import convergence_problems
from bayes_unsl.models.registry import form_model
from bayes_unsl.tables import markdown_table

RESULTS = Path(__file__).resolve().parent / "results"


def prepared(train: pd.DataFrame, depth: int):
    """Options, data and context of the curve's fit: 1 break, or 0 if too few points."""
    for breaks in (1, 0):
        run = parse_options("bnsl", breaks, 4, 1000, 1000, {"max_tree_depth": depth})
        try:
            dataset = validate(train, X, Y, min_points=run.spec.n_params)
        except TooFewPoints:
            continue
        return run, dataset, form_model("bnsl").context(dataset, run.spec)
    raise TooFewPoints(f"{len(train)} points")


def attempt(run, dataset, context, settings, seed, tube=None) -> tuple[dict, object]:
    args = (dataset, run.spec, context, settings, seed, "float64", "cpu", False, tube)
    posterior_run = _sample(*args)
    _, diag = _result(posterior_run, dataset, run.spec, posterior_run.info["seconds"])
    problems = convergence_problems(diag)
    row = {
        "converged": not problems,
        "r_hat_and_ess": diag["r_hat_max"] <= 1.01 and diag["ess_bulk_min"] >= 400,
        "r_hat_max": diag["r_hat_max"],
        "ess_bulk_min": diag["ess_bulk_min"],
        "divergences": diag["divergences"],
        "gradient_evals": diag["gradient_evals"],
        "tree_depth_mean": diag["tree_depth_mean"],
        "seconds_sampling": diag["seconds_sampling"],
        "problems": "; ".join(problems),
    }
    return row, posterior_run


def run_curve(name: str, train: pd.DataFrame, depth: int, seed: int, kinds) -> list[dict]:
    run, dataset, context = prepared(train, depth)
    base = {"curve": name, "breaks": run.spec.breaks, "max_tree_depth": depth}
    first, first_run = attempt(run, dataset, context, run.settings, seed)
    rows = [{**base, "remedy": "none (first fit)", **first}]
    print(rows[-1], flush=True)
    if first["converged"]:
        return rows
    for kind in kinds:
        settings, tube, _ = remedy(run.settings, first_run.unconstrained, kind)
        row, _ = attempt(run, dataset, context, settings, seed, tube)
        rows.append({**base, "remedy": kind, **row})
        print(rows[-1], flush=True)
    return rows


def summary(table: pd.DataFrame) -> pd.DataFrame:
    failed = set(table.loc[table.remedy != "none (first fit)", "curve"])
    table = table[table.curve.isin(failed)]
    return table.groupby("remedy", sort=False).agg(
        curves=("curve", "size"),
        converged=("converged", "mean"),
        r_hat_and_ess=("r_hat_and_ess", "mean"),
        median_r_hat=("r_hat_max", "median"),
        median_ess=("ess_bulk_min", "median"),
        divergences=("divergences", "sum"),
        gradient_evals=("gradient_evals", "sum"),
        seconds_sampling=("seconds_sampling", "sum"),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=os.environ.get("BAYES_UNSL_DATA"))
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curves", nargs="*", help="curve names (default: every curve)")
    p.add_argument("--remedies", default=",".join(reversed(REMEDIES)))
    p.add_argument("--curves-file", help="curve names, one per line (added to --curves)")
    p.add_argument("--name", default="remedy")
    p.add_argument(
        "--merge",
        nargs="+",
        help="write the report of the rows in these CSVs (parts run side by side) and stop",
    )
    p.add_argument("--seconds", type=float, default=0.0, help="with --merge: wall time")
    args = p.parse_args(argv)
    if args.curves_file:
        args.curves = [*(args.curves or []), *Path(args.curves_file).read_text().split("\n")]
    if args.merge:
        table = pd.concat([pd.read_csv(path) for path in args.merge], ignore_index=True)
        n = int((table.remedy == "none (first fit)").sum())
        report(table, args, n, n, args.seconds)
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    found = list(curves(args.data_root, benchmark=args.data_root is not None))
    if args.curves:
        found = [c for c in found if c[0] in set(args.curves)]
    kinds = args.remedies.split(",")
    began, rows = time.perf_counter(), []
    for done, (name, _, train, _) in enumerate(found, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows += run_curve(name, train, args.depth, args.seed, kinds)
        # Rewritten after every curve, so that a stopped run leaves a valid partial report.
        report(pd.DataFrame(rows), args, done, len(found), time.perf_counter() - began)


def report(table: pd.DataFrame, args, done: int, total: int, seconds: float) -> None:
    table.to_csv(RESULTS / f"{args.name}.csv", index=False)
    first = table[table.remedy == "none (first fit)"]
    lines = [
        "# Automatic remedies for fits that fail their convergence checks",
        "",
        f"Command: `python benchmarks/remedy.py --data-root <dataset folders> --depth "
        f"{args.depth} --seed {args.seed} --remedies {args.remedies}"
        + (" --curves-file <names>" if args.curves else "")
        + "`"
        + (" (parts side by side, then `--merge`)" if args.merge else "")
        + f". Machine: {machine()}; commit {git_commit()}; {done} of {total} curves done in "
        f"{seconds:.0f} s.",
        "",
        (__doc__ or "").split("\n\n", 1)[1].split("\n\n    python")[0],
        "",
        f"First fits: {len(first)} curves, {int(first.converged.sum())} pass the package's "
        f"checks ({first.converged.mean():.0%}), {int(first.r_hat_and_ess.sum())} reach R-hat "
        f"<= 1.01 and bulk ESS >= 400 ({first.r_hat_and_ess.mean():.0%}). Each remedy on the "
        "fits that failed (the first-fit row: the same fits before any remedy):",
        "",
        markdown_table(summary(table).reset_index()) if len(first) > first.converged.sum() else "",
        "",
        "## Every fit",
    ]
    write_report(RESULTS / f"{args.name}.md", lines, table)


if __name__ == "__main__":
    main()
