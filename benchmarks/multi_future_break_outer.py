"""Further breaks for several inputs on the multivariate benchmark's outer split: a record.

``multi_future_break.py`` decided, on the training splits, that multi-input UNSL fits keep
no further break by default. This script reads the outer held-out rows once, after that
decision and for no choice, to record what the option does there: UNSL (the benchmark's
plan) fitted to each dataset's outer training rows, the held-out rows scored with no
further break and with the same variants. ``past_share``: held-out rows beyond the
training rows in some input (the breaks change nothing elsewhere).

    python benchmarks/multi_future_break_outer.py --data-root ../shared/data \
        --tasks chinchilla_approach3_epoch,pythia_training_evals
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from multi_future_break import VARIANTS, past_share
from multivariate import LEVELS, TASKS, _scores, bayes_row, plan
from provenance import git_commit, machine

from bayes_unsl.evaluation import score_names
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tasks", type=lambda s: s.split(","), required=True)
    ap.add_argument("--breaks", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    started, commit = time.perf_counter(), git_commit()
    sampler = dict(chains=4, warmup=args.warmup, draws=args.draws, progress_bar=False)
    rows = []
    for name in args.tasks:
        task = TASKS[name]
        frame = task.load(args.data_root)
        train = frame[~frame["held_out"]].reset_index(drop=True)
        test = frame[frame["held_out"]].reset_index(drop=True)
        p = plan(task, "unsl", args.breaks)
        row, fit = bayes_row(task, "unsl", p, train, test, sampler, 0)
        for label, rate, toward, away in VARIANTS:
            draws = fit.with_future_break(rate, toward, away).samples(test[list(p.x)])
            rows.append(
                {
                    "task": name,
                    "variant": label,
                    "n_train": len(train),
                    "n_test": len(test),
                    "past_share": past_share(train, test, p.x),
                    **_scores(draws, test[task.y].to_numpy()),
                    "r_hat_max": row["r_hat_max"],
                    "converged": row["converged"],
                }
            )
    table = pd.DataFrame(rows)
    columns = ["task", "variant", "n_train", "n_test", "past_share", *score_names(LEVELS)]
    command = "python benchmarks/multi_future_break_outer.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = [
        "# Further breaks for several inputs on the outer split (a record, not a choice)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Commit: {commit}  ",
        f"Sampler: 4 chains, {args.warmup} warm-up, {args.draws} draws, seed 0; UNSL with "
        f"{args.breaks} break(s) per bottleneck component as the multivariate benchmark plans "
        "it.  ",
        f"Wall time: {(time.perf_counter() - started) / 60:.1f} min",
        "",
        " ".join(__doc__.split("\n\n")[1].split()),
        "",
        markdown_table(table[[*columns, "r_hat_max", "converged"]]),
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "multi_future_break_outer.csv", index=False)
    (args.out / "multi_future_break_outer.md").write_text("\n".join(text))
    print("\n".join(text))
    return table


if __name__ == "__main__":
    main()
