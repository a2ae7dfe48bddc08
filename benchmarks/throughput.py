"""Throughput of ``fit_many``: curves per second against batch size, by phase.

Curves: the context parts of the 16 shipped double-descent curves (NSL-PFN split); batches
larger than 16 repeat them, each copy with its own random seed (``--noise`` perturbs the
copies' log y by Gaussian noise of that sd; 0 by default, since noise added to smooth
curves makes them harder to fit than the real ones). Default model: BNSL with 1 break, 4 chains x
(1000 + 1000) draws, no automatic remedy.

    python benchmarks/throughput.py [--batch-sizes 1,16,256] [--device gpu]
        [--max-tree-depth 10] [--warmup 1000] [--draws 1000] [--label TEXT]
        [--rows benchmarks/results/throughput_rows.jsonl] [--out throughput]
        [--curves N] [--workers W] [--precision float32]

Each measurement fits one batch of ``batch size`` curves (four curves one at a time for a
batch size of 1) and is appended to ``--rows`` (JSON lines), so runs on several machines
and settings collect in one file; ``--out`` names the Markdown and JSON tables written from
all the rows (benchmarks/results/<out>.{md,json}). ``--report`` rewrites them from the rows
without fitting; findings kept in ``results/<out>.notes.md`` are included. XLA flags
(``XLA_FLAGS``) in effect are recorded with every row. ``--curves`` sets how many curves a
row fits (in batches of the batch size); ``--workers`` the CPU worker processes of
``fit_many`` (default: the package's choice); ``--precision`` the floating-point
precision (default: the package's, float64 on a CPU and float32 on a GPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import numpyro
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.batch import WORKERS_MIN_CURVES, _n_workers
from bayes_unsl.evaluation.splits import double_descent_split
from bayes_unsl.models import ModelSpec
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def curves(n: int, noise: float) -> pd.DataFrame:
    """``n`` curves: the 16 double-descent context curves, then perturbed copies of them."""
    dd = bu.datasets.load("double_descent")
    base = [double_descent_split(f)[0] for _, f in dd.groupby("task", sort=True)]
    parts = []
    for i in range(n):
        frame = base[i % len(base)].copy()
        copy = i // len(base)
        if copy:
            rng = np.random.default_rng(copy * 1000 + i)
            frame["metric_value"] *= np.exp(rng.normal(0.0, noise, len(frame)))
        frame["task"] = f"{frame['task'].iloc[0]}#{copy}"
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def lane_efficiency(fits, names: list, batch_size: int) -> float:
    """Share of the leapfrog steps run in the draws that the chains asked for.

    A batch's chains (curves x chains, vmapped) run every NUTS iteration as long as the
    longest trajectory among them; a chain that finishes early waits. Per batch (curves
    taken in order, as ``fit_many`` forms its batches), the sum over draws of the mean
    trajectory length over chains, divided by the sum of the longest. 1: no waiting.
    """
    n_batches = -(-len(names) // batch_size)
    per_batch = -(-len(names) // n_batches)
    needed = run = 0.0
    for start in range(0, len(names), per_batch):
        steps = np.concatenate(
            [fits[k].idata.sample_stats["n_steps"].values for k in names[start : start + per_batch]]
        )  # (lanes, draws)
        needed += float(steps.mean(axis=0).sum())
        run += float(steps.max(axis=0).sum())
    return needed / run


def one_process(args: argparse.Namespace, n_curves: int, batch_size: int) -> bool:
    """Whether ``fit_many`` ran every batch in this process: by its own rule, one worker
    (a GPU, a single core, ``--workers 1``, too few curves) or a single batch."""
    platform = args.device or jax.default_backend()
    workers = _n_workers(args.workers, platform, ModelSpec(), n_curves)
    return workers == 1 or math.ceil(n_curves / batch_size) == 1


def measure(args: argparse.Namespace, batch_size: int) -> dict:
    n_curves = args.curves or (4 if batch_size == 1 else batch_size)
    data = curves(n_curves, args.noise)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = bu.fit_many(
            data,
            "task",
            "x_value",
            "metric_value",
            warmup=args.warmup,
            draws=args.draws,
            max_tree_depth=args.max_tree_depth,
            batch_size=batch_size,
            device=args.device,
            workers=args.workers,
            precision=args.precision,
            retries=0,
            warn=False,
            progress_bar=False,
        )
    seconds = time.perf_counter() - started
    diag = pd.DataFrame([f.diagnostics() for f in fits.values()])

    def batch_total(column: str) -> float:
        # Every curve records its batch's phase time: one batch's worth per batch size
        # (summed over worker processes, which run side by side).
        return float(diag[column].sum()) / batch_size

    compile_s = batch_total("seconds_compile")
    # With several workers the phase times are summed over them, so the wall time less
    # their compilation means nothing: only one process gives a time after compilation.
    after = seconds - compile_s if one_process(args, n_curves, batch_size) else None
    return {
        "backend": jax.default_backend(),
        "device": str(jax.devices(args.device or jax.default_backend())[0].device_kind),
        "label": args.label,
        "noise": args.noise,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "max_tree_depth": args.max_tree_depth,
        "precision": args.precision or "default",
        "warmup": args.warmup,
        "draws": args.draws,
        "batch_size": batch_size,
        "workers": args.workers or "auto",
        "curves": len(fits),
        "seconds": round(seconds, 2),
        "compile_s": round(compile_s, 2),
        "sampling_s": round(batch_total("seconds_sampling"), 2),
        "predictive_s": round(batch_total("seconds_predictive"), 2),
        "postprocess_s": round(float(diag["seconds_postprocess"].sum()), 2),
        "curves_per_s": round(len(fits) / seconds, 4),
        "curves_per_s_after_compile": after and round(len(fits) / after, 4),
        "s_per_curve_after_compile": after and round(after / len(fits), 4),
        "converged": round(float(diag["converged"].mean()), 4),
        "r_hat_ok": round(float((diag["r_hat_max"] <= 1.01).mean()), 4),
        "ess_ok": round(float((diag["ess_bulk_min"] >= 400).mean()), 4),
        "no_divergence": round(float((diag["divergences"] == 0).mean()), 4),
        "tree_depth_mean": round(float(diag["tree_depth_mean"].mean()), 3),
        "lane_efficiency": round(lane_efficiency(fits, list(data["task"].unique()), batch_size), 3),
        "grad_evals_per_ess_median": round(float(diag["gradient_evals_per_ess"].median()), 1),
        "commit": git_commit(),
        "machine": machine(),
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "command": args.command,
    }


COLUMNS = [
    "device",
    "label",
    "noise",
    "max_tree_depth",
    "precision",
    "batch_size",
    "workers",
    "curves",
    "seconds",
    "compile_s",
    "sampling_s",
    "predictive_s",
    "postprocess_s",
    "curves_per_s",
    "curves_per_s_after_compile",
    "converged",
    "r_hat_ok",
    "ess_ok",
    "tree_depth_mean",
    "lane_efficiency",
    "commit",
]


def report(rows: list[dict], out: str) -> str:
    table = pd.DataFrame(rows)
    # Rows written before the column was left blank for worker processes (see measure).
    workers = table["workers"].astype(str)  # "auto", a count, or missing (before workers)
    summed = (table["device"] == "cpu") & ~workers.isin(["1", "nan", "None"])
    summed &= (table["curves"] > table["batch_size"]) & (table["curves"] >= WORKERS_MIN_CURVES)
    table.loc[summed, ["curves_per_s_after_compile", "s_per_curve_after_compile"]] = None
    runs = table[["device", "machine", "jax", "numpyro", "commit", "command"]].drop_duplicates()
    lines = [
        "# fit_many throughput by batch size",
        "",
        "Curves: the 16 double-descent context curves, repeated with their own seeds "
        "(perturbed by noise where the noise column says so), BNSL with 1 break, 4 "
        "chains, no automatic remedy; draws and warm-up per row. One batch per row (a "
        "batch size of 1: four curves one at a time). "
        "Phases in seconds for the whole batch: compile (once per batch shape, cached on "
        "disk across processes), sampling (warm-up and draws), predictive (log likelihood "
        "and posterior predictive on the device), postprocess (host: InferenceData and "
        "diagnostics per curve). Curves per second exclude compilation. Converged: max "
        "R-hat <= 1.01, bulk ESS >= 400, no divergences. workers: CPU worker processes "
        "running batches side by side (their phase times are summed, so rows run by "
        "several leave curves per second after compilation blank; curves_per_s is the wall "
        "rate, compilation or loading it from the cache included). lane_efficiency: in the "
        "draws, the steps the chains asked for over the steps their batch ran (each "
        "iteration of a batch's vmapped chains lasts as long as its longest trajectory; "
        "rows written before the column was added leave it blank). precision: blank or "
        "default, the package's (float64 on a CPU, float32 on a GPU).",
        "",
        markdown_table(table[[c for c in COLUMNS if c in table]]),
        "",
    ]
    notes = RESULTS / f"{Path(out).name}.notes.md"
    if notes.exists():  # findings written by hand, kept when the tables are regenerated
        lines += [notes.read_text().strip(), ""]
    lines += [
        "## Runs",
        "",
        markdown_table(runs),
        "",
    ]
    flags = sorted({r.get("xla_flags", "") for r in rows} - {""})
    if flags:
        lines += ["XLA flags used by some rows (label says which): " + "; ".join(flags), ""]
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.md").write_text(text)
    (RESULTS / f"{out}.json").write_text(json.dumps(rows, indent=1))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--device", default=None, choices=("cpu", "gpu"))
    parser.add_argument("--max-tree-depth", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--label", default="default")
    parser.add_argument("--rows", type=Path, default=RESULTS / "throughput_rows.jsonl")
    parser.add_argument("--out", default="throughput")
    parser.add_argument("--curves", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--precision",
        default=None,
        choices=("float32", "float64"),
        help="default: the package's (float64 on a CPU, float32 on a GPU)",
    )
    parser.add_argument("--report", action="store_true", help="only rewrite the tables")
    args = parser.parse_args()
    args.command = "python benchmarks/throughput.py " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k
        in (
            "batch_sizes",
            "device",
            "max_tree_depth",
            "warmup",
            "draws",
            "noise",
            "label",
            "curves",
            "workers",
            "precision",
        )
        and v is not None
    )
    if not args.report:
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        for size in (int(b) for b in args.batch_sizes.split(",")):
            row = measure(args, size)
            print(json.dumps(row), flush=True)
            with open(args.rows, "a") as handle:
                handle.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    print(report(rows, args.out))


if __name__ == "__main__":
    main()
