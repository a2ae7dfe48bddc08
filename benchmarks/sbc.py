"""Simulation-based calibration of the BNSL model at the inputs of the 4-digit addition curve.

Parameters are drawn from the prior with the prior constants (the context) of the 14 fitted
points held fixed, curves simulated at those inputs and fitted by batched NUTS; the rank of
each true parameter among thinned posterior draws must be uniform (chi-square test).
``--points N`` puts N inputs log-spaced over the same range instead, with the curve's y
interpolated there (log-log) for the context: the same shape at other curve lengths.
``--form unsl`` or ``--form chinchilla`` tests a two-input model at a 5 x 5 grid of model
and data sizes instead, the context from the Chinchilla form with Hoffmann et al.'s
published constants at those sizes (``grid_curve``).

    python benchmarks/sbc.py [--breaks 1] [--simulations 100] [--warmup 500] [--draws 500]
                             [--points N] [--max-tree-depth D] [--form F]
                             [--likelihood L] [--priors '{"share_slopes": true}']

Writes benchmarks/results/sbc_<form><breaks>[_<likelihood>][_n<N>][_depth<D>][_<prior
settings>].{md,csv}.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.data import validate
from bayes_unsl.evaluation.sbc import ecdf_uniformity, run_sbc
from bayes_unsl.inference.nuts import SamplerSettings
from bayes_unsl.models import LIKELIHOODS, ModelSpec
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
X, Y = "train_dataset_size", "test_cross_entropy"
FITTED = 14  # the addition curve's fitted points (its last 3 are held out elsewhere)


def sbc_curve(points: int | None = None) -> pd.DataFrame:
    """The addition curve's fitted points, or ``points`` inputs log-spaced over their range
    with y interpolated linearly in log x and log y (the context of a curve of that length)."""
    curve = bu.datasets.load("four_digit_addition").iloc[:FITTED][[X, Y]]
    if points is None:
        return curve
    if points < 3:
        raise ValueError(f"--points must be at least 3, got {points}")
    log_x, log_y = np.log(curve[X].to_numpy()), np.log(curve[Y].to_numpy())
    new_log_x = np.linspace(log_x.min(), log_x.max(), points)
    return pd.DataFrame({X: np.exp(new_log_x), Y: np.exp(np.interp(new_log_x, log_x, log_y))})


#: Hoffmann et al. (2022), approach 3: L(N, D) = E + A / N**alpha + B / D**beta.
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
GRID_INPUTS = ("n_params", "n_tokens")


def grid_curve() -> pd.DataFrame:
    """A 5 x 5 grid of model sizes (1e7 to 1e10) and data sizes (1e9 to 1e12) with the
    Chinchilla form's loss there: the context of a two-input model's SBC."""
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 5), np.geomspace(1e9, 1e12, 5))
    n, d = n.ravel(), d.ravel()
    h = HOFFMANN
    loss = h["E"] + h["A"] * n ** -h["alpha"] + h["B"] * d ** -h["beta"]
    return pd.DataFrame({GRID_INPUTS[0]: n, GRID_INPUTS[1]: d, "loss": loss})


def prior_suffix(priors: dict | None) -> str:
    """File-name suffix of prior settings: ``_name`` for a switch that is on, else
    ``_name<value>``, in the order given."""
    if not priors:
        return ""
    return "".join(
        f"_{name}" if value is True else f"_{name}{value}" for name, value in priors.items()
    )


ECDF_HEADING = "## Simultaneous ECDF test"


def ecdf_section(ranks: pd.DataFrame, keep: int, source: str | None = None) -> list[str]:
    """The ECDF test of every parameter's ranks at an overall 1% level (Bonferroni);
    ``source``, where given, says how the section was made."""
    prob = 1.0 - 0.01 / ranks.shape[1]
    table = ecdf_uniformity(ranks, keep, prob)
    return [
        ECDF_HEADING,
        "",
        *([source, ""] if source else []),
        f"The ECDF of each parameter's {len(ranks)} ranks (0 to {keep}) against the band "
        f"that holds a uniform ECDF's whole path with probability {prob:.4f} (1% over the "
        f"{ranks.shape[1]} parameters, Bonferroni; ArviZ's optimised simultaneous band). "
        "ecdf_excess: how far the ECDF leaves the band at worst.",
        "",
        f"Every parameter inside its band: {bool(table.ecdf_inside.all())}.",
        "",
        markdown_table(table),
        "",
    ]


def add_ecdf_section(csv: Path, keep: int) -> None:
    """Recompute the ECDF test from a run's saved ranks and put it in the run's Markdown."""
    md = csv.with_suffix(".md")
    text = md.read_text()
    if ECDF_HEADING in text:
        text = text[: text.index(ECDF_HEADING)]
    source = (
        f"Added from the saved ranks by `python benchmarks/sbc.py --ecdf-from {csv.name} "
        f"--keep {keep}` at commit {git_commit()}."
    )
    lines = ecdf_section(pd.read_csv(csv), keep, source)
    md.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--breaks", type=int, default=1)
    parser.add_argument("--form", choices=("bnsl", "unsl", "chinchilla"), default="bnsl")
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--keep", type=int, default=99, help="draws each rank is taken over")
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1, help="simulations per batch")
    parser.add_argument("--points", type=int, default=None, help="inputs (default: the 14)")
    parser.add_argument("--max-tree-depth", type=int, default=SamplerSettings.max_tree_depth)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--ecdf-from",
        type=Path,
        default=None,
        help="a run's ranks CSV: add the ECDF test to its Markdown (with --keep) and stop",
    )
    parser.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default=None,
        help="noise model (default: the form's); other than the default, it names the files",
    )
    parser.add_argument(
        "--priors",
        type=json.loads,
        default=None,
        help="prior settings other than the defaults, as JSON (e.g. '{\"share_slopes\": true}'); "
        "their names and values name the files",
    )
    args = parser.parse_args()
    if args.ecdf_from is not None:
        add_ecdf_section(args.ecdf_from, args.keep)
        return
    if args.form == "bnsl":
        data = validate(sbc_curve(args.points), X, Y)
    elif args.points is not None:
        raise SystemExit("--points is for --form bnsl; the two-input forms use a 5 x 5 grid")
    else:
        data = validate(grid_curve(), list(GRID_INPUTS), "loss")
    settings = SamplerSettings(
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        max_tree_depth=args.max_tree_depth,
    )
    spec = ModelSpec.build(args.form, args.breaks, args.likelihood, args.priors)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_sbc(
            data,
            spec,
            simulations=args.simulations,
            settings=settings,
            n_keep=args.keep,
            batch_size=args.batch_size,
        )
    seconds = time.perf_counter() - started
    depth_named = args.max_tree_depth != SamplerSettings.max_tree_depth
    table = result.uniformity(bins=args.bins)
    alpha = 0.01 / len(table)
    table["uniform"] = table.p_value > alpha
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = (
        f"sbc_{args.form}{args.breaks}"
        + (f"_{args.likelihood}" if args.likelihood else "")
        + (f"_n{args.points}" if args.points else "")
        + (f"_depth{args.max_tree_depth}" if depth_named else "")
        + prior_suffix(args.priors)
    )
    result.ranks.to_csv(out / f"{stem}.csv", index=False)
    command = (
        "python benchmarks/sbc.py"
        + (f" --form {args.form}" if args.form != "bnsl" else "")
        + f" --breaks {args.breaks} --simulations {args.simulations} "
        f"--chains {args.chains} --warmup {args.warmup} --draws {args.draws} "
        f"--keep {args.keep} --bins {args.bins} --batch-size {args.batch_size}"
        + (f" --likelihood {args.likelihood}" if args.likelihood else "")
        + (f" --points {args.points}" if args.points else "")
        + (f" --max-tree-depth {args.max_tree_depth}" if depth_named else "")
        + (f" --priors '{json.dumps(args.priors)}'" if args.priors else "")
    )
    if args.form != "bnsl":
        where = (
            "a 5 x 5 grid of model sizes (1e7 to 1e10) and data sizes (1e9 to 1e12), context "
            "from the Chinchilla form with Hoffmann et al.'s constants there"
        )
    elif args.points is None:
        where = f"the {FITTED} inputs of the 4-digit addition curve"
    else:
        where = (
            f"{args.points} inputs log-spaced over the range of the 4-digit addition curve's "
            f"{FITTED} fitted points (context from its y interpolated there)"
        )
    priors_named = (
        f"Prior settings other than the defaults: {json.dumps(args.priors)}. "
        if args.priors
        else ""
    )
    lines = [
        f"# Simulation-based calibration: {args.form.upper()} with {args.breaks} break(s)",
        "",
        f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}; {seconds:.0f} s.",
        "",
        f"Likelihood: {spec.likelihood}. "
        + priors_named
        + f"{args.simulations} simulations at {where}, max tree depth "
        f"{args.max_tree_depth}, context held fixed; ranks over "
        f"{args.keep} thinned draws, {args.bins} bins; uniform where the chi-square p-value "
        f"exceeds 0.01 / {len(table)} (Bonferroni). Simulations passing every convergence "
        f"check: {result.converged.mean():.0%}; with divergences: "
        f"{(result.divergences > 0).mean():.0%}; median max R-hat "
        f"{np.median(result.max_r_hat):.3f}.",
        "",
        f"Every parameter uniform: {bool(table.uniform.all())}.",
        "",
        markdown_table(table),
        "",
        *ecdf_section(result.ranks, args.keep),
    ]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
