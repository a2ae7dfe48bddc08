"""UNSL structure chosen by PSIS-LOO on the multivariate training splits: breaks only, or
every ablation?

The multivariate benchmark's ``unsl-loo`` chooses between UNSL with and without breaks by
PSIS-LOO on the training rows. Its ablations (no oppositional forces, no bottleneck
components) are other structures for the same rows, and LOO can weigh them as well. This
study fits every UNSL structure that applies to each dataset's inner split
(``multivariate.INNER``: the outer held-out rows are never read), chooses by the highest
LOO among {unsl, unsl-no-breaks} (``loo-breaks``, the benchmark's rule) and among every
structure (``loo-all``), and scores each choice on the inner held-out rows.

Decision rule, fixed before the runs: the benchmark's ``unsl-loo`` chooses among every
structure if, over the datasets here, ``loo-all`` has the lower mean MSCE and no lower
mean LPD than ``loo-breaks``.

    python benchmarks/structure_choice.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from multivariate import (
    TASKS,
    bayes_row,
    inner_split,
    inner_study_parser,
    plan,
    run_inner_study,
)

from bayes_unsl.evaluation import loo_compare, select_by_loo

ROOT = Path(__file__).resolve().parents[1]
STRUCTURES = ("unsl", "unsl-no-breaks", "unsl-no-opposition", "unsl-no-bottleneck")
CHOICES = {"loo-breaks": ("unsl", "unsl-no-breaks"), "loo-all": STRUCTURES}
SCORES = ("rmsle", "lpd", "coverage_50", "coverage_80", "coverage_90", "coverage_95", "msce")


def study_task(name: str, args: argparse.Namespace, sampler: dict) -> list[dict]:
    """Rows of every structure fitted to one dataset's inner split, then of each choice."""
    task = TASKS[name]
    train, test = inner_split(task, args.data_root)
    rows, fits = {}, {}
    for method in STRUCTURES:
        p = plan(task, method, args.breaks)
        if p is None:
            continue
        print(f"{name} / {method}", flush=True)
        row, fits[method] = bayes_row(task, method, p, train, test, sampler, args.seed)
        rows[method] = {"task": name, "method": method, "breaks": p.breaks, **row}
    elpd = loo_compare(fits)["elpd_loo"]
    for method, row in rows.items():
        row["elpd_loo"] = float(elpd[method])
    out = list(rows.values())
    for choice, among in CHOICES.items():
        candidates = {m: fits[m] for m in among if m in fits}
        chosen = select_by_loo(candidates) if len(candidates) > 1 else next(iter(candidates))
        out.append({**rows[chosen], "method": choice, "chosen": chosen})
    for row in out:
        row.update(n_train=len(train), n_test=len(test))
    return out


def verdict(table: pd.DataFrame) -> str:
    """The decision rule of the module doc, applied to the table."""
    means = table[table["method"].isin(CHOICES)].groupby("method")[["msce", "lpd"]].mean()
    wide, narrow = means.loc["loo-all"], means.loc["loo-breaks"]
    adopt = wide["msce"] < narrow["msce"] and wide["lpd"] >= narrow["lpd"]
    return (
        f"- loo-all against loo-breaks, means over {table['task'].nunique()} datasets: MSCE "
        f"{wide['msce']:.4f} against {narrow['msce']:.4f}, LPD {wide['lpd']:.3f} against "
        f"{narrow['lpd']:.3f}: "
        + ("**adopt** (choose among every structure)" if adopt else "**not** adopted")
    )


def describe(table: pd.DataFrame, args) -> tuple[str, Sequence, list]:
    columns = ["task", "method", "chosen", "breaks", "n_train", "n_test", *SCORES]
    columns += ["elpd_loo", "r_hat_max", "divergences", "seconds"]
    explanation = (
        "Every fit sees the outer training rows only, split again by the inner rules of "
        "`multivariate.INNER`; scores are on the inner held-out rows. elpd_loo: PSIS-LOO "
        "on the inner training rows. loo-breaks / loo-all: the structure with the highest "
        "elpd_loo among {unsl, unsl-no-breaks} / among every structure fitted (column "
        "chosen)."
    )
    return explanation, columns, [verdict(table)]


def run(args: argparse.Namespace, sampler: dict) -> pd.DataFrame:
    return pd.DataFrame([row for name in args.tasks for row in study_task(name, args, sampler)])


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = inner_study_parser(__doc__, ROOT / "benchmarks" / "results" / "structure_choice")
    title = "UNSL structure chosen by PSIS-LOO on the multivariate training splits"
    return run_inner_study(ap.parse_args(argv), "structure_choice.py", title, run, describe)


if __name__ == "__main__":
    main()
