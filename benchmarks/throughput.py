"""Throughput of ``fit_many``: seconds per curve against batch size, compilation apart.

Curves: the context parts of the 16 shipped double-descent curves (NSL-PFN split), fitted
with the default BNSL (1 break), 4 chains x (1000 + 1000) draws, no automatic remedy.

    python benchmarks/throughput.py [--batch-sizes 1,4,16] [--curves 16] [--device cpu]

Writes benchmarks/results/throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import jax
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.evaluation.splits import double_descent_split
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def table(n_curves: int) -> pd.DataFrame:
    dd = bu.datasets.load("double_descent")
    parts = [double_descent_split(f)[0] for _, f in dd.groupby("task", sort=True)]
    return pd.concat(parts[:n_curves])


def measure(data: pd.DataFrame, batch_size: int, device: str | None) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = bu.fit_many(
            data,
            "task",
            "x_value",
            "metric_value",
            batch_size=batch_size,
            device=device,
            retries=0,
            warn=False,
            progress_bar=False,
        )
    seconds = time.perf_counter() - started
    diag = fits.diagnostics()
    compile_s = max(f.diagnostics()["seconds_compile"] for f in fits.values())
    return {
        "batch_size": batch_size,
        "curves": len(fits),
        "seconds": seconds,
        "compile_seconds": compile_s,
        "seconds_per_curve_after_compile": (seconds - compile_s) / len(fits),
        "curves_per_second_after_compile": len(fits) / max(seconds - compile_s, 1e-9),
        "converged_share": float(diag["converged"].mean()),
        "r_hat_ok_share": float((diag["r_hat_max"] <= 1.01).mean()),
        "ess_ok_share": float((diag["ess_bulk_min"] >= 400).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--curves", type=int, default=16)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    data = table(args.curves)
    rows = [measure(data, int(b), args.device) for b in args.batch_sizes.split(",")]
    for row in rows:
        print(row, flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    header = {
        "command": f"python benchmarks/throughput.py --batch-sizes {args.batch_sizes} "
        f"--curves {args.curves}" + (f" --device {args.device}" if args.device else ""),
        "machine": machine(),
        "commit": git_commit(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }
    (out / "throughput.json").write_text(json.dumps({**header, "rows": rows}, indent=1))
    lines = [
        "# fit_many throughput by batch size",
        "",
        f"Command: `{header['command']}`. Machine: {header['machine']}; JAX "
        f"{header['jax']} on {header['backend']}; commit {header['commit']}.",
        "",
        "Double-descent context curves, BNSL with 1 break, 4 chains x (1000 + 1000), no "
        "remedy. A batch runs each NUTS iteration until its longest trajectory ends, so "
        "batching curves of unlike difficulty on a CPU costs time; on a GPU the batch is "
        "what fills the device.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]
    (out / "throughput.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
