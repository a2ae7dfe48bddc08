"""How the noise of held-out points compares with the context's, and how fitted residuals run.

Two measurements behind the calibration diagnostics (no fitting of priors, no choice made):

1. Per image-classification (IC) curve of the 92-curve benchmark: the point-to-point
   scatter of log y (robust sd from second differences, which remove a local linear trend)
   of the held-out points against the context's, and the median spacing of log x of each.
2. Per saved 1-break fit (``--fits-dir``, as written by ``calibration.py --fits-dir``): the
   lag-1 autocorrelation of the residuals of log y around the posterior-median curve, at the
   fitted points in order of x.

    python benchmarks/noise_diagnostics.py --data-root ../shared/data --fits-dir DIR

Writes noise_diagnostics.md and noise_diagnostics.csv (the per-curve rows of part 1) to
``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import ROOT
from provenance import git_commit, machine, write_report

import bayes_unsl as bu
from bayes_unsl.tables import markdown_table


def scatter(log_y: np.ndarray) -> float:
    """Robust sd of one point's noise from second differences (MAD, normal-consistent)."""
    if len(log_y) < 4:
        return np.nan
    return float(np.median(np.abs(np.diff(log_y, 2))) * 1.4826 / np.sqrt(6.0))


def ic_scatter(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for group, curve in frame[frame["domain"] == "IC"].groupby("group"):
        curve = curve.sort_values("seen_examples")
        parts = {s: curve[curve["split"] == s] for s in ("train", "extrapolate")}
        log_x = {s: np.log(p["seen_examples"].to_numpy()) for s, p in parts.items()}
        log_y = {s: np.log(p["metric_value"].to_numpy()) for s, p in parts.items()}
        rows.append(
            {
                "curve": group,
                "dataset": group.split("|")[1].split("_")[0],
                "context_points": len(log_y["train"]),
                "heldout_points": len(log_y["extrapolate"]),
                "context_spacing": float(np.median(np.diff(log_x["train"]))),
                "heldout_spacing": float(np.median(np.diff(log_x["extrapolate"])))
                if len(log_x["extrapolate"]) > 1
                else np.nan,
                "context_scatter": scatter(log_y["train"]),
                "heldout_scatter": scatter(log_y["extrapolate"]),
            }
        )
    table = pd.DataFrame(rows)
    table["ratio"] = table["heldout_scatter"] / table["context_scatter"]
    return table


def residual_autocorrelation(fits_dir: Path) -> pd.DataFrame:
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collection = bu.load_many(fits_dir)
    for key in collection:
        fit = collection[key]
        x = fit.idata.constant_data["x"].values[:, 0]
        order = np.argsort(x, kind="stable")
        log_y = np.log(fit.idata.constant_data["y"].values[order])
        curve = np.log(np.median(fit.curve_samples(x[order]), axis=0))
        r = log_y - curve
        rows.append(
            {
                "domain": key.split("|")[0],
                "curve": key,
                "points": len(r),
                "lag1": float(np.corrcoef(r[:-1], r[1:])[0, 1]),
            }
        )
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--fits-dir", required=True, help="folder of saved 1-break fits")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    command = "python benchmarks/noise_diagnostics.py " + shlex.join(argv or sys.argv[1:])
    started = time.perf_counter()
    frame = bu.datasets.read_folder("revisiting_scaling_laws_benchmark", args.data_root)
    ic = ic_scatter(frame)
    lags = residual_autocorrelation(Path(args.fits_dir))
    by_dataset = ic.groupby("dataset")[
        ["ratio", "context_spacing", "heldout_spacing", "heldout_points"]
    ].median()
    by_domain = lags.groupby("domain").agg(
        fits=("lag1", "size"), points=("points", "median"), lag1_median=("lag1", "median")
    )
    q = ic["ratio"].quantile([0.0, 0.25, 0.5, 0.75, 1.0])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ic.to_csv(out / "noise_diagnostics.csv", index=False)
    lines = [
        "# Noise of held-out points, and how fitted residuals run",
        "",
        f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}; "
        f"{time.perf_counter() - started:.0f} s in all.",
        "",
        "## 1. IC curves: held-out against context scatter",
        "",
        "Scatter: robust sd of log y from second differences (median absolute value x "
        "1.4826 / sqrt(6)); spacing: median step of log x. Over the "
        f"{int(ic['ratio'].notna().sum())} curves with both, the ratio held-out / context "
        f"has min {q[0.0]:.2f}, quartiles {q[0.25]:.2f} / {q[0.5]:.2f} / {q[0.75]:.2f}, max "
        f"{q[1.0]:.2f}. Medians by dataset:",
        "",
        markdown_table(by_dataset.reset_index()),
        "",
        "## 2. Lag-1 autocorrelation of the residuals of saved 1-break fits",
        "",
        f"Fits: `{args.fits_dir}` (residuals of log y around the posterior-median curve at the "
        "fitted points, in order of x).",
        "",
        markdown_table(by_domain.reset_index()),
        "",
    ]
    write_report(out / "noise_diagnostics.md", lines)


if __name__ == "__main__":
    main()
