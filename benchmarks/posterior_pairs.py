"""The shape of hard posteriors: pair plots and how close to one curve the draws lie.

Fits a few curves where the 1-break BNSL mixes slowly at the benchmark's settings, with long
chains (4 x (2000 + 4000), max tree depth 10) so that the picture is of the posterior and
not of a short run, and reports, in the sampler's unconstrained coordinates standardised
to unit variance:

- the share of the variance along the first principal component (1/7 for a round
  posterior; near 1 when the draws lie along one line);
- the share that the best one-dimensional smooth curve explains: each coordinate
  regressed on a cubic in the first principal component. A share well above the first
  component's means a curved tube, which a dense mass matrix (a linear map) cannot
  straighten;
- the chain separation and convergence of the long run.

    python benchmarks/posterior_pairs.py --data-root ../shared/data
        # writes benchmarks/results/posterior_pairs.{md,csv} and one PNG per curve
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from convergence import X, Y, curves  # noqa: E402
from provenance import git_commit, machine, write_report  # noqa: E402

import bayes_unsl as bu  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CURVES = ("4-digit addition", "IC|c_5|ViT/B/16", "LM|val_loss|2.62e+08")
SETTINGS = {"warmup": 2000, "draws": 4000, "max_tree_depth": 10}


def unconstrained(fit: bu.Fit) -> dict[str, np.ndarray]:
    """Draws of the 1-break BNSL's sampled sites, (chain, draw), as the sampler sees them
    (logit of the limit fraction and of the first break gap)."""
    p = fit.idata.posterior

    def logit(v):
        return np.log(v / (1.0 - v))

    return {
        "logit limit": logit(p["limit_fraction"].values),
        "m_centre": p["m_centre"].values,
        "c0_y": p["c0_y"].values,
        "logit gap": logit(p["break_gaps"].values[..., 0]),
        "c_y": p["c_y"].values[..., 0],
        "log_f_excess": p["log_f_excess"].values[..., 0],
        "log_sigma": p["log_sigma"].values,
    }


def tube_shares(draws: dict[str, np.ndarray]) -> tuple[float, float]:
    """Variance shares of the first principal component and of a cubic curve along it."""
    m = np.column_stack([v.ravel() for v in draws.values()])
    m = (m - m.mean(0)) / m.std(0)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    linear = float(s[0] ** 2 / np.sum(s**2))
    t = m @ vt[0]
    basis = np.column_stack([np.ones_like(t), t, t**2, t**3])
    fitted = basis @ np.linalg.lstsq(basis, m, rcond=None)[0]
    curved = float(1.0 - np.sum((m - fitted) ** 2) / np.sum(m**2))
    return linear, curved


def pairs_figure(name: str, draws: dict[str, np.ndarray], path: Path) -> None:
    names = list(draws)
    k = len(names)
    fig, axes = plt.subplots(k, k, figsize=(1.9 * k, 1.9 * k))
    for i, row in enumerate(names):
        for j, col in enumerate(names):
            ax = axes[i, j]
            for chain in range(draws[row].shape[0]):
                if i == j:
                    ax.hist(draws[row][chain], 40, histtype="step")
                else:
                    ax.plot(draws[col][chain, ::8], draws[row][chain, ::8], ".", ms=0.6, alpha=0.4)
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel(row, fontsize=8)
            if i == k - 1:
                ax.set_xlabel(col, fontsize=8)
    fig.suptitle(f"{name}: 1-break BNSL posterior, one colour per chain")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=60)
    plt.close(fig)
    os.replace(tmp, path)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=os.environ.get("BAYES_UNSL_DATA"))
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {c[0]: c for c in curves(args.data_root, True) if c[0] in CURVES}
    rows = []
    for name in CURVES:
        train = wanted[name][2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bu.fit(train, X, Y, breaks=1, retries=0, warn=False, **SETTINGS)
        draws = unconstrained(fit)
        linear, curved = tube_shares(draws)
        d = fit.diagnostics()
        figure = f"posterior_pairs_{slug(name)}.png"
        pairs_figure(name, draws, out / figure)
        rows.append(
            {
                "curve": name,
                "points": len(train),
                "likelihood": fit.spec.likelihood,
                "first_component_share": linear,
                "cubic_curve_share": curved,
                "r_hat_max": d["r_hat_max"],
                "ess_bulk_min": d["ess_bulk_min"],
                "divergences": d["divergences"],
                "chain_separation": d["chain_separation"],
                "tree_depth_mean": d["tree_depth_mean"],
                "figure": figure,
            }
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "posterior_pairs.csv", index=False)
    command = "python benchmarks/posterior_pairs.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    lines = [
        "# The shape of hard posteriors",
        "",
        f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}; "
        f"{time.perf_counter() - started:.0f} s in all.",
        "",
        "Each curve: the 1-break BNSL with the default priors and likelihood (column "
        "`likelihood`), 4 chains x (2000 + 4000), max "
        "tree depth 10, seed 0, fitted to the training points (the 4-digit addition curve's "
        "first 14). Shares are of the variance of the unconstrained draws standardised to "
        "unit variance per coordinate (7 coordinates: 1/7 = 0.14 for a round posterior): "
        "along the first principal component, and explained by a cubic curve in that "
        "component. Pair plots: one PNG per curve (`figure`), every 8th draw.",
    ]
    write_report(out / "posterior_pairs.md", lines, table)


if __name__ == "__main__":
    main()
