"""Multivariate benchmark: UNSL against the Chinchilla (CF) and data-constrained (DC) forms.

Every dataset holds out its largest scale by a rule fixed before any fit (``TASKS``, column
``rule``); every method sees the training rows only and gives predictive draws of y at the
held-out rows, scored by ``bayes_unsl.evaluation.score_all`` (RMSLE, log predictive
density, coverage at 50/80/90/95%, CRPS, 90% interval width).

Methods (where the dataset has the inputs they need):

* ``unsl``: the UNSL posterior, one bottleneck component per input with ``--breaks``
  breaks, and an oppositional force on each input that hurts past a point (learning rate,
  batch size, epochs of repetition, tokens for a downstream metric that degrades);
* ablations: ``unsl-no-breaks``, ``unsl-no-opposition`` (inputs that only drive a force
  are dropped), ``unsl-no-bottleneck`` (one non-bottleneck component over all inputs, no
  breaks, forces kept);
* ``unsl-loo``: of ``unsl`` and ``unsl-no-breaks``, the one with the better PSIS-LOO on
  the training rows (the break count chosen without the held-out rows);
* ``cf``, ``dc``: the Bayesian Chinchilla and data-constrained forms;
* ``cf-point``, ``dc-point``: Huber/L-BFGS point fits made into draws by a residual
  bootstrap.

It also reports the compute-optimal allocation of the CF and UNSL posteriors on all of the
Chinchilla data (against Epoch AI's a = 0.5126, s.e. 0.02; about 20 tokens per parameter at
Chinchilla's 5.76e23 FLOPs), and the posterior optimal learning rate of the Step Law UNSL
at the held-out model size, against the best learning rate its held-out runs found.

    python benchmarks/multivariate.py --data-root ../shared/data
    python benchmarks/multivariate.py --data-root ../shared/data --tasks datablations_repetition

Rows are appended to ``multivariate.csv`` as each fit finishes, and a re-run skips the
(task, method) pairs already there, so a long run can be stopped and resumed.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.allocation import allocation_exponents, compute_optimal
from bayes_unsl.baselines import bootstrap_draws, fit_chinchilla_point, fit_data_constrained_point
from bayes_unsl.datasets import read_folder
from bayes_unsl.evaluation import score_all, score_names, select_by_loo
from bayes_unsl.hyperparameters import optimal_input
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.5, 0.8, 0.9, 0.95)
COVERAGE_TOLERANCE = 0.075
CHINCHILLA_BUDGET = 5.76e23
EPOCH_A, EPOCH_A_SE = 0.5126, 0.02


@dataclass(frozen=True)
class Task:
    """One dataset: its inputs, the rule that holds out its largest scale, and its forces.

    ``load(root)`` returns the rows used (filters documented in ``note``) with a boolean
    column ``held_out``. ``opposition``: one entry per rising force, an input or a tuple of
    inputs it rises with; ``force_only``: inputs with no bottleneck component.
    ``cf``/``dc``: the columns of N, D (and unique tokens) when the dataset has them.
    """

    name: str
    x: tuple[str, ...]
    y: str
    rule: str
    note: str
    load: Callable[[Path], pd.DataFrame]
    opposition: tuple[str, ...] = ()
    force_only: tuple[str, ...] = ()
    cf: tuple[str, str] | None = None
    dc: tuple[str, str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _chinchilla(root: Path) -> pd.DataFrame:
    frame = read_folder("chinchilla_approach3_epoch", root)
    frame = frame[frame["epoch_excluded_high_loss"] == 0].copy()
    frame["held_out"] = frame["training_flops"] >= 1e21
    return frame


def _largest_model_out(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(held_out=frame["n_params"] == frame["n_params"].max())


def _datablations(root: Path) -> pd.DataFrame:
    frame = read_folder("datablations_repetition", root)
    return _largest_model_out(frame[frame["finished"] == 1])


def _steplaw(root: Path) -> pd.DataFrame:
    return _largest_model_out(read_folder("steplaw_dense_lr_bs", root))


def _gadre(root: Path) -> pd.DataFrame:
    frame = read_folder("gadre2024_overtraining", root)
    frame = frame[
        (frame["eval_name"] == "c4_val") & (frame["train_dataset"] == "c4_original")
    ].copy()
    frame["held_out"] = frame["n_params"] >= 1e9
    return frame


def _misfitting(root: Path) -> pd.DataFrame:
    return _largest_model_out(read_folder("misfitting_li2025_openlm", root))


def _pythia(root: Path) -> pd.DataFrame:
    frame = read_folder("pythia_training_evals", root)
    frame = frame[
        (frame["task"] == "lambada_openai")
        & (frame["metric"] == "acc")
        & (frame["deduped"] == 0)
        & (frame["shots"] == 0)
        & (frame["step"] >= 1000)
    ].copy()
    frame["error"] = 1.0 - frame["metric_value"]
    frame["held_out"] = frame["step"] > 100_000
    return frame


TASKS = {
    t.name: t
    for t in [
        Task(
            "chinchilla_approach3_epoch",
            ("n_params", "n_tokens"),
            "loss",
            "held out: training FLOPs >= 1e21 (the largest compute budgets)",
            "the 5 runs Epoch AI excluded for high loss are left out",
            _chinchilla,
            cf=("n_params", "n_tokens"),
        ),
        Task(
            "datablations_repetition",
            ("n_params", "n_tokens", "epochs"),
            "val_loss",
            "held out: the largest model (8.67e9 parameters)",
            "finished runs only; UNSL sees epochs = tokens / unique tokens, which drives the "
            "repetition force with the parameter count (large models overfit repeated data "
            "sooner; epochs has no bottleneck component); DC sees unique tokens",
            _datablations,
            opposition=(("n_params", "epochs"),),
            force_only=("epochs",),
            cf=("n_params", "n_tokens"),
            dc=("n_params", "n_tokens", "unique_tokens"),
        ),
        Task(
            "steplaw_dense_lr_bs",
            ("n_params", "n_tokens", "lr", "batch_size_tokens"),
            "smooth_train_loss",
            "held out: the largest model (1.07e9 parameters)",
            "smoothed final training loss; every learning rate and batch size",
            _steplaw,
            opposition=("lr", "batch_size_tokens"),
            cf=("n_params", "n_tokens"),
        ),
        Task(
            "gadre2024_overtraining",
            ("n_params", "n_tokens"),
            "metric_value",
            "held out: models of 1e9 parameters or more (the two largest)",
            "C4-trained models, C4 validation loss",
            _gadre,
            cf=("n_params", "n_tokens"),
        ),
        Task(
            "misfitting_li2025_openlm",
            ("n_params", "n_tokens", "peak_lr"),
            "c4_eval_loss",
            "held out: the largest model (1b)",
            "every checkpoint (tokens seen so far), every peak learning rate",
            _misfitting,
            opposition=("peak_lr",),
            cf=("n_params", "n_tokens"),
        ),
        Task(
            "pythia_training_evals",
            ("n_params", "n_tokens"),
            "error",
            "held out: checkpoints after step 100,000 (the last steps of every model)",
            "LAMBADA (OpenAI) 0-shot error rate, standard Pythia models, steps >= 1000",
            _pythia,
            opposition=("n_tokens",),
            cf=("n_params", "n_tokens"),
        ),
    ]
}


def _largest_model(train: pd.DataFrame) -> pd.Series:
    return train["n_params"] == train["n_params"].max()


#: Inner held-out rule per dataset, applied to the outer training rows: (description, rule).
#: Studies that choose defaults split the training rows by these, never reading the
#: outer held-out rows (Step Law and the misfitting data are left out for their cost).
INNER: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {
    "chinchilla_approach3_epoch": (
        "training FLOPs >= 10^20.5 (outer: >= 1e21)",
        lambda t: t["training_flops"] >= 10**20.5,
    ),
    "datablations_repetition": ("the largest training model (4.25e9)", _largest_model),
    "gadre2024_overtraining": ("the largest training model (4.1e8)", _largest_model),
    "pythia_training_evals": ("steps > 60,000 (outer: > 100,000)", lambda t: t["step"] > 60_000),
}


def inner_split(task: Task, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The inner training and held-out rows of a dataset's outer training rows."""
    frame = task.load(root)
    train = frame[~frame["held_out"]].reset_index(drop=True)
    out = INNER[task.name][1](train).to_numpy(bool)
    return train[~out].reset_index(drop=True), train[out].reset_index(drop=True)


def inner_study_parser(doc: str, out: Path) -> argparse.ArgumentParser:
    """The options every study on the inner splits takes (``out``: its results' stem)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tasks", type=lambda s: s.split(","), default=list(INNER))
    ap.add_argument("--breaks", type=int, default=1)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=out)
    return ap


def variant_rows(
    args: argparse.Namespace,
    sampler: dict,
    methods: Sequence[str],
    column: str,
    values: Sequence[Any],
    vary: Callable[[Plan, dict, Any], tuple[Plan, dict]],
    extras: Callable[[bu.Fit], dict],
) -> pd.DataFrame:
    """Fit every (task, method) of ``args.tasks`` on its inner split once per value of
    ``column``, scored on the inner held-out rows: ``vary(plan, sampler, value)`` gives the
    plan and sampler settings to fit, ``extras(fit)`` columns of its own."""
    rows = []
    for name in args.tasks:
        task = TASKS[name]
        train, test = inner_split(task, args.data_root)
        for method in methods:
            base = plan(task, method, args.breaks)
            if base is None:
                continue
            for value in values:
                p, settings = vary(base, sampler, value)
                print(f"{name} / {method} / {column} {value}", flush=True)
                row, fit = bayes_row(task, method, p, train, test, settings, args.seed)
                rows.append(
                    {
                        "task": name,
                        "method": method,
                        "breaks": p.breaks,
                        column: value,
                        "n_train": len(train),
                        "n_test": len(test),
                        **row,
                        **extras(fit),
                    }
                )
                print(
                    f"  msce={row['msce']:.4f} lpd={row['lpd']:.3f} "
                    f"cov90={row['coverage_90']:.2f} r_hat={row['r_hat_max']:.3f} "
                    f"{row['seconds']:.0f} s",
                    flush=True,
                )
    return pd.DataFrame(rows)


INNER_SCORES = (
    "Every fit sees only the outer training rows of the multivariate benchmark, split "
    "again by the inner rule below; the scores are on the inner held-out rows."
)


def study_columns(column: str, extras: Sequence[str]) -> tuple[str, ...]:
    """The columns an inner study shows: the pair, its ``column``, scores and ``extras``."""
    return (
        "task",
        "method",
        "breaks",
        column,
        "n_train",
        "n_test",
        *score_names(LEVELS),
        *extras,
        "r_hat_max",
        "divergences",
        "seconds",
    )


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def paired_verdict(table: pd.DataFrame, column: str, baseline: Any, label: str) -> list[str]:
    """The inner studies' rule: each value of ``column`` other than ``baseline`` becomes the
    default if, over the (dataset, method) pairs both have, its mean MSCE is lower and its
    mean LPD is not lower. ``label`` names the column in the lines."""
    off = table[table[column] == baseline].set_index(["task", "method"])
    lines = []
    for value in sorted(set(table[column]) - {baseline}):
        on = table[table[column] == value].set_index(["task", "method"])
        pairs = off.index.intersection(on.index)
        msce = on.loc[pairs, "msce"].mean(), off.loc[pairs, "msce"].mean()
        lpd = on.loc[pairs, "lpd"].mean(), off.loc[pairs, "lpd"].mean()
        adopt = msce[0] < msce[1] and lpd[0] >= lpd[1]
        lines.append(
            f"- {label} {_shown(value)} against {_shown(baseline)}, over {len(pairs)} "
            f"(dataset, method) pairs: mean MSCE {msce[0]:.4f} against "
            f"{msce[1]:.4f}, mean LPD {lpd[0]:.3f} against {lpd[1]:.3f}: "
            + ("**adopt** as the default" if adopt else "**not** the default (rule not met)")
        )
    return lines


def run_inner_study(
    args: argparse.Namespace, script: str, title: str, run, describe
) -> pd.DataFrame:
    """Run a study on the inner splits and write its CSV and Markdown at ``args.out``.

    ``run(args, sampler)`` returns the table; ``describe(table, args)`` the paragraph that
    explains it, the columns to show and the lines of the decision (every such study
    decides by lower mean MSCE and no lower mean LPD). The header gives the command,
    machine, sampler and the commit the run started at (and the one it was written at,
    where they differ).
    """
    unknown = sorted(set(args.tasks) - set(INNER))
    if unknown:
        raise SystemExit(f"no inner rule for {unknown}; known: {sorted(INNER)}")
    command = f"python benchmarks/{script} " + " ".join(sys.argv[1:])
    commit, started = git_commit(), time.perf_counter()
    sampler = dict(chains=args.chains, warmup=args.warmup, draws=args.draws, progress_bar=False)
    table = run(args, sampler)
    now = git_commit()
    if now != commit:
        commit = f"{commit} when started ({now} when written)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    explanation, columns, decision = describe(table, args)
    text = "\n".join(
        [
            f"# {title}",
            "",
            f"Command: `{command.strip()}`  ",
            f"Machine: {machine()}  ",
            f"Commit: {commit}  ",
            f"Sampler: {args.chains} chains, {args.warmup} warm-up, {args.draws} draws; "
            f"seed {args.seed}; UNSL with {args.breaks} break(s) per bottleneck component "
            "as the multivariate benchmark plans it.  ",
            f"Wall time: {(time.perf_counter() - started) / 60:.1f} min",
            "",
            explanation,
            "",
            "| task | inner held-out rule |",
            "|---|---|",
            *(f"| {n} | {INNER[n][0]} |" for n in args.tasks),
            "",
            markdown_table(table[[c for c in columns if c in table]]),
            "",
            "## Decision (rule fixed before the runs: lower mean MSCE and no lower mean LPD)",
            "",
            *decision,
            "",
        ]
    )
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return table


BAYES_METHODS = ("unsl", "unsl-no-breaks", "unsl-no-opposition", "unsl-no-bottleneck", "cf", "dc")
POINT_METHODS = ("cf-point", "dc-point")


@dataclass(frozen=True)
class Plan:
    """What one method fits: form, input columns, breaks and priors (None: not applicable)."""

    form: str
    x: tuple[str, ...]
    breaks: int
    priors: dict[str, Any]


def plan(task: Task, method: str, breaks: int) -> Plan | None:
    def idx(names: Sequence[str], x: Sequence[str]) -> list[int]:
        return [x.index(n) for n in names]

    forces = {
        "opposition": [
            idx(f, task.x) if isinstance(f, tuple) else task.x.index(f) for f in task.opposition
        ],
        "no_bottleneck": idx(task.force_only, task.x),
    }
    if method == "unsl":
        return Plan("unsl", task.x, breaks, forces)
    if method == "unsl-no-breaks":
        return Plan("unsl", task.x, 0, forces) if breaks > 0 else None
    if method == "unsl-no-opposition":
        if not task.opposition:
            return None
        x = tuple(n for n in task.x if n not in task.force_only)
        return Plan("unsl", x, breaks, {})
    if method == "unsl-no-bottleneck":
        if len(task.x) < 2:
            return None
        every = list(range(len(task.x)))
        return Plan("unsl", task.x, 0, {**forces, "no_bottleneck": every, "joint_component": True})
    if method in ("cf", "cf-point") and task.cf:
        return Plan("chinchilla", task.cf, 0, {})
    if method in ("dc", "dc-point") and task.dc:
        return Plan("data_constrained", task.dc, 0, {})
    return None


def _scores(draws: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return score_all(draws, y, LEVELS)


def fit_plan(task: Task, p: Plan, train: pd.DataFrame, seed: int, **options: Any) -> bu.Fit:
    """The Bayesian fit of a plan to a task's training rows (``options``: sampler settings)."""
    return bu.fit(
        train,
        x=list(p.x),
        y=task.y,
        form=p.form,
        breaks=p.breaks,
        priors=p.priors,
        seed=seed,
        **options,
    )


def bayes_row(task, method, p: Plan, train, test, sampler, seed) -> tuple[dict, bu.Fit]:
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bu.ConvergenceWarning)
        fit = fit_plan(task, p, train, seed, **sampler)
    for w in caught:
        print(f"  {w.category.__name__}: {str(w.message).splitlines()[0]}", flush=True)
    draws = fit.samples(test[list(p.x)])
    diag = fit.diagnostics()
    row = {
        **_scores(draws, test[task.y].to_numpy()),
        "converged": bool(diag["converged"]),
        "r_hat_max": float(diag["r_hat_max"]),
        "divergences": int(diag["divergences"]),
        "ess_bulk_min": float(diag["ess_bulk_min"]),
        "tree_depth_mean": float(diag.get("tree_depth_mean", np.nan)),
        "seconds": time.perf_counter() - started,
    }
    return row, fit


def point_row(task, method, p: Plan, train, test, n_boot, seed) -> dict:
    started = time.perf_counter()
    fitter = fit_chinchilla_point if p.form == "chinchilla" else fit_data_constrained_point
    x = train[list(p.x)].to_numpy(float)
    draws = bootstrap_draws(
        fitter,
        x,
        train[task.y].to_numpy(float),
        test[list(p.x)].to_numpy(float),
        n_boot=n_boot,
        seed=seed,
    )
    return {
        **_scores(draws, test[task.y].to_numpy()),
        "converged": np.nan,
        "r_hat_max": np.nan,
        "divergences": np.nan,
        "ess_bulk_min": np.nan,
        "seconds": time.perf_counter() - started,
    }


def _done(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["task", "method"])


def _append(path: Path, row: dict) -> None:
    """Add one result row, replacing an earlier row of the same task and method."""
    frame = pd.DataFrame([row])
    if path.exists():
        old = pd.read_csv(path)
        same = (old["task"] == row["task"]) & (old["method"] == row["method"])
        frame = pd.concat([old[~same], frame], ignore_index=True)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def run_task(task: Task, root: Path, args, csv: Path, extras: dict) -> None:
    frame = task.load(root)
    train = frame[~frame["held_out"]].reset_index(drop=True)
    test = frame[frame["held_out"]].reset_index(drop=True)
    done = _done(csv)
    done = set(zip(done["task"], done["method"], strict=True))
    sampler = {
        "chains": args.chains,
        "warmup": args.warmup,
        "draws": args.draws,
        "progress_bar": False,
    }
    rows: dict[str, dict] = {}
    for method in args.methods:
        p = plan(task, method, args.breaks)
        if p is None or (task.name, method) in done and method not in args.refit:
            continue
        print(f"{task.name} / {method}: {len(train)} train, {len(test)} held out", flush=True)
        seed = args.seed
        try:
            if method in POINT_METHODS:
                row = point_row(task, method, p, train, test, args.n_boot, seed)
            else:
                row, fit = bayes_row(task, method, p, train, test, sampler, seed)
                extras.setdefault(task.name, {})[method] = fit
        except Exception as error:  # a failed method is a result, not a crash
            print(f"  failed: {type(error).__name__}: {error}", flush=True)
            row = {"error": f"{type(error).__name__}: {error}"[:300]}
        row = {
            "task": task.name,
            "method": method,
            "breaks": p.breaks,
            "n_train": len(train),
            "n_test": len(test),
            **row,
            # Rows stay in the CSV across invocations: each carries its own settings.
            **({} if method in POINT_METHODS else {"warmup": args.warmup, "draws": args.draws}),
            "commit": git_commit(),
        }
        _append(csv, row)
        print(f"  {_brief(row)}", flush=True)
        rows[method] = row
    chosen = _loo_choice(extras.get(task.name, {}))
    if chosen is not None:
        _append(csv, {**rows[chosen], "method": "unsl-loo", "chosen": chosen})
        print(f"  unsl-loo: {chosen}", flush=True)


def _loo_choice(fits: dict[str, bu.Fit]) -> str | None:
    """The UNSL break count with the better PSIS-LOO on the training rows."""
    pair = {m: fits[m] for m in ("unsl", "unsl-no-breaks") if m in fits}
    if len(pair) < 2:
        return None
    return select_by_loo(pair)


def _brief(row: dict) -> str:
    keys = ("rmsle", "coverage_90", "lpd", "r_hat_max", "seconds")
    return ", ".join(f"{k}={row[k]:.4g}" for k in keys if k in row and pd.notna(row[k]))


def allocation_table(root: Path, sampler: dict, seed: int, breaks: int) -> pd.DataFrame:
    """CF and UNSL allocation at Chinchilla's budget, fitted to all of the Chinchilla rows."""
    frame = _chinchilla(root)
    rows = []
    for name, form, b in (("cf", "chinchilla", 0), ("unsl", "unsl", breaks)):
        fit = bu.fit(
            frame, x=["n_params", "n_tokens"], y="loss", form=form, breaks=b, seed=seed, **sampler
        )
        alloc = compute_optimal(fit, CHINCHILLA_BUDGET).summary()
        for _, r in alloc.iterrows():
            rows.append({"model": name, **r.to_dict()})
        if form == "chinchilla":
            a = allocation_exponents(fit)["a"]
            rows.append(
                {
                    "model": name,
                    "quantity": "a = beta/(alpha+beta)",
                    "median": a.median(),
                    "lower_90": a.quantile(0.05),
                    "upper_90": a.quantile(0.95),
                }
            )
        rows.append(
            {"model": name, "quantity": "r_hat_max", "median": fit.diagnostics()["r_hat_max"]}
        )
    return pd.DataFrame(rows)


def lr_forecast(task: Task, root: Path, fit: bu.Fit) -> pd.DataFrame:
    """Posterior optimal learning rate at the held-out model, per held-out (D, batch size),
    against the best learning rate among the held-out runs there."""
    frame = task.load(root)
    test = frame[frame["held_out"]]
    rows = []
    for (n, d, bs), runs in test.groupby(["n_params", "n_tokens", "batch_size_tokens"]):
        if runs["lr"].nunique() < 3:
            continue
        draws = optimal_input(
            fit,
            "lr",
            {"n_params": n, "n_tokens": d, "batch_size_tokens": bs},
            bounds=(frame["lr"].min() / 8, frame["lr"].max() * 8),
        )
        best = runs.loc[runs[task.y].idxmin()]
        lo, med, hi = np.quantile(draws["optimum"], [0.05, 0.5, 0.95])
        rows.append(
            {
                "n_params": n,
                "n_tokens": d,
                "batch_size_tokens": bs,
                "runs": len(runs),
                "best_observed_lr": best["lr"],
                "posterior_median": med,
                "lower_90": lo,
                "upper_90": hi,
                "inside_90": bool(lo <= best["lr"] <= hi),
                "lr_grid_step": "x2 (log2 grid)",
            }
        )
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    cols = [
        *("task", "method", "breaks", "n_train", "n_test"),
        *score_names(LEVELS),
        *("r_hat_max", "divergences", "tree_depth_mean", "seconds", "warmup", "draws", "commit"),
    ]
    present = [c for c in cols if c in table.columns]
    methods = [*BAYES_METHODS[:4], "unsl-loo", *BAYES_METHODS[4:], *POINT_METHODS]
    order = table["task"].map(list(TASKS).index) * 100 + table["method"].map(methods.index)
    return table.loc[order.sort_values(kind="stable").index, present]


def least_coverage_gap(n: int, levels: Sequence[float] = LEVELS) -> float:
    """The smallest largest gap to nominal that ``n`` held-out rows allow: their coverage
    is a multiple of 1/n, so with 3 rows no coverage lies within 0.133 of 80%."""
    k = np.arange(n + 1) / n
    return float(max(np.min(np.abs(k - lv)) for lv in levels))


def target_lines(table: pd.DataFrame) -> list[str]:
    lines = []
    ok = table[table.get("error", pd.Series(index=table.index, dtype=object)).isna()]
    for task, rows in ok.groupby("task", sort=False):
        r = rows.set_index("method")
        if "unsl" not in r.index:
            continue
        u = r.loc["unsl", "rmsle"]
        if "unsl-loo" in r.index:
            u = r.loc["unsl-loo", "rmsle"]
            lines.append(f"- {task}: LOO chose {r.loc['unsl-loo', 'chosen']}")
        for other in ("cf", "dc"):
            if other in r.index:
                lines.append(
                    f"- {task}: RMSLE unsl(-loo) / {other} = {u / r.loc[other, 'rmsle']:.3g} "
                    f"({'below' if u < r.loc[other, 'rmsle'] else 'NOT below'})"
                )
        gaps = [abs(r.loc["unsl", f"coverage_{int(100 * lv)}"] - lv) for lv in LEVELS]
        verdict = "within" if max(gaps) <= COVERAGE_TOLERANCE else "NOT within"
        least = least_coverage_gap(int(r.loc["unsl", "n_test"]))
        lines.append(
            f"- {task}: unsl coverage 50/80/90/95 = "
            + "/".join(f"{r.loc['unsl', f'coverage_{int(100 * lv)}']:.2f}" for lv in LEVELS)
            + f"; largest gap {max(gaps):.3f} ({verdict} 0.075 of nominal)"
            + (
                f"; unattainable with {int(r.loc['unsl', 'n_test'])} held-out rows (the "
                f"least possible gap is {least:.3f})"
                if least > COVERAGE_TOLERANCE
                else ""
            )
        )
        rhat = r.loc["unsl", "r_hat_max"]
        checks = "passed" if r.loc["unsl", "converged"] else "NOT passed"
        lines.append(
            f"- {task}: unsl R-hat {rhat:.3f} ({'at most' if rhat <= 1.01 else 'NOT at most'} "
            f"1.01, the target; the package's checks, which add bulk ESS >= 400 and no "
            f"divergences: {checks}, {r.loc['unsl', 'divergences']:.0f} divergences), "
            f"{r.loc['unsl', 'seconds']:.0f} s"
        )
    return lines


def report(table, alloc, lr, args, seconds, command) -> str:
    parts = [
        "# Multivariate benchmark: UNSL, CF and DC on held-out largest scales",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Commit: {git_commit()}  ",
        f"Sampler: {args.chains} chains, {args.warmup} warm-up, {args.draws} draws "
        "(this invocation; rows that record theirs show them in columns `warmup`, `draws` "
        f"and `commit`); bootstrap {args.n_boot}; UNSL breaks per bottleneck component in "
        f"column `breaks` (this invocation: --breaks {args.breaks})  ",
        f"Wall time of this invocation: {seconds / 60:.1f} min (rows already in the CSV are "
        "kept from earlier invocations of the same script at their own commits)",
        "",
        "## Held-out rules",
        "",
        markdown_table(
            pd.DataFrame(
                [
                    {
                        "task": t.name,
                        "inputs": ", ".join(t.x),
                        "y": t.y,
                        "rule": t.rule,
                        "rows": t.note,
                    }
                    for t in TASKS.values()
                ]
            )
        ),
        "",
        "## Scores on held-out rows",
        "",
        markdown_table(summarise(table)),
        "",
        "## Targets",
        "",
        *target_lines(table),
        "",
    ]
    if "error" in table.columns and table["error"].notna().any():
        failed = table[table["error"].notna()][["task", "method", "error"]]
        parts += ["## Methods that failed", "", markdown_table(failed), ""]
    if alloc is not None:
        parts += [
            f"## Compute-optimal allocation at {CHINCHILLA_BUDGET:.3g} FLOPs (cost 6ND)",
            "",
            "Fitted to all Chinchilla rows. Epoch AI's estimate: a = "
            f"{EPOCH_A} (s.e. {EPOCH_A_SE}); about 20 tokens per parameter.",
            "",
            markdown_table(alloc),
            "",
        ]
    if lr is not None and len(lr):
        parts += [
            "## Optimal learning rate at the held-out model size (Step Law)",
            "",
            "Posterior of the learning rate that minimises the expected loss, from the UNSL "
            "fitted without the largest model, against the best learning rate among the "
            "held-out runs at the same tokens and batch size (a log2 grid: the observed "
            "best is itself uncertain by a factor of about 2).",
            "",
            markdown_table(lr),
            "",
            f"Inside the 90% interval: {int(lr['inside_90'].sum())} of {len(lr)}.",
            "",
        ]
    return "\n".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--methods", default=",".join(BAYES_METHODS + POINT_METHODS))
    p.add_argument("--refit", default="", help="methods to refit even if already in the CSV")
    p.add_argument("--breaks", type=int, default=1)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-allocation", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.refit = [m for m in args.refit.split(",") if m]
    unknown = set(args.methods) - set(BAYES_METHODS + POINT_METHODS)
    if unknown:
        p.error(f"unknown method(s) {sorted(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    started = time.perf_counter()
    root = Path(args.data_root)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "multivariate.csv"
    fits: dict[str, dict[str, bu.Fit]] = {}
    for name in args.tasks.split(","):
        if name not in TASKS:
            raise SystemExit(f"unknown task {name!r}; choose from {list(TASKS)}")
        run_task(TASKS[name], root, args, csv, fits)
    sampler = {
        "chains": args.chains,
        "warmup": args.warmup,
        "draws": args.draws,
        "progress_bar": False,
    }
    alloc = None
    if not args.no_allocation:
        alloc = allocation_table(root, sampler, args.seed, args.breaks)
        alloc.to_csv(out / "multivariate_allocation.csv", index=False)
    elif (out / "multivariate_allocation.csv").exists():
        alloc = pd.read_csv(out / "multivariate_allocation.csv")
    lr = None
    step = fits.get("steplaw_dense_lr_bs", {}).get("unsl")
    if step is not None:
        lr = lr_forecast(TASKS["steplaw_dense_lr_bs"], root, step)
        lr.to_csv(out / "multivariate_lr.csv", index=False)
    elif (out / "multivariate_lr.csv").exists():
        lr = pd.read_csv(out / "multivariate_lr.csv")
    table = pd.read_csv(csv)
    command = "python benchmarks/multivariate.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = report(table, alloc, lr, args, time.perf_counter() - started, command)
    (out / "multivariate.md").write_text(text)
    print(text)
    return table


if __name__ == "__main__":
    main()
