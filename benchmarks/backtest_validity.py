"""Does a backtest on the training rows tell how the intervals will do past them?

``bu.backtest`` refits a curve on its smaller runs and scores the forecast of its larger
ones. A user runs it on the rows they have; what they want to know is how the intervals of
the fit on all those rows will do on runs not made yet. This study asks, on the benchmark
curves, whether the first announces the second. Per curve, in one run and at one commit:

* inner: ``bu.backtest`` on the context (training) rows only: the largest-x ``--hold``
  share (at least 2) held out, rows tied at the threshold held out together; curves with
  fewer than 8 rows left to fit are skipped (as in ``future_break.py``);
* outer: the same model fitted to all context rows, scored on the benchmark's held-out
  points.

The criterion, fixed before the first run: the backtest is a useful warning if (1) in at
least three of the four domain groups (IC, DD, NLP, addition) the pooled inner and outer
90% coverages fall on the same side of 0.85 (both flag intervals too narrow, or neither
does), and (2) across curves the rank correlation of inner and outer 90% coverage is
positive. Either way the report gives both coverages side by side at every level. With
``--match-distance`` (each curve's backtest holds out the runs within its own forecast
distance, so that it forecasts as far as the outer fit must; fixed before that run): the
matched backtest is the better warning if its rank correlation exceeds the share-based
run's (0.27) and at least as many groups agree (2 of 4 there).

    python benchmarks/backtest_validity.py --data-root ../../shared/data --max-curves 16

Writes backtest_validity.md and .csv to ``--out`` (``backtest_validity_matched`` with
``--match-distance``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import LEVELS, Curve
from future_break import MIN_TRAIN, group_of, split_study_parser, study_curves
from provenance import git_commit, machine
from scipy.stats import spearmanr

import bayes_unsl as bu
from bayes_unsl.backtest import AS_FITTED
from bayes_unsl.evaluation import MSCE_LEVELS, coverage_counts, future_split, score_all
from bayes_unsl.tables import markdown_table

SHOWN = (0.5, 0.8, 0.9, 0.95)
WARN_BELOW = 0.85
GROUPS = ("IC", "DD", "NLP", "addition")


def eligible(curve: Curve, holdout: float, unit: str = "share") -> bool:
    """The inner split of the context holds out 2 or more rows and leaves at least
    ``MIN_TRAIN`` to fit."""
    frame = pd.DataFrame({"x": curve.train_x})
    try:
        train, _ = future_split(frame, frame["x"], holdout, min_heldout=2, unit=unit)
    except ValueError:
        return False
    return len(train) >= MIN_TRAIN


def context_table(curves: Sequence[Curve]) -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame({"curve": c.key, "x": c.train_x, "y": c.train_y}) for c in curves],
        ignore_index=True,
    )


def outer_rows(curves: Sequence[Curve], fits, levels: Sequence[float]) -> list[dict]:
    rows = []
    for c in curves:
        if c.key not in fits.fits:
            continue
        draws = fits[c.key].samples(c.held_x)
        scale = float(c.train_y.max())
        rows.append(
            {
                "curve": c.key,
                "split": "outer",
                **score_all(draws, c.held_y, LEVELS, scale=scale),
                "decades_ahead": outer_decades(c),
                "converged": fits[c.key].converged,
                "counts": coverage_counts(draws, c.held_y, levels),
            }
        )
    return rows


def inner_rows(result: bu.Backtest, curve: str | None = None) -> list[dict]:
    """The backtest's rows as the study's: one per curve (``curve`` names a single-curve
    backtest's)."""
    (holdout,) = {p.holdout for p in result.parts}
    counts = result.coverage_counts(holdout, AS_FITTED)
    rows = []
    for _, row in result.scores().iterrows():
        group = row[result.group] if result.group else None
        drop = ["holdout", "variant", *([result.group] if result.group else [])]
        rows.append(
            {
                "curve": group if result.group else curve,
                "split": "inner",
                **row.drop(drop).to_dict(),
                "n_points": int(row["n_test"]),
                "counts": counts[group],
            }
        )
    return rows


def outer_decades(curve: Curve) -> float:
    """How far the benchmark's held-out points reach past the curve's context."""
    return float(np.log10(curve.held_x.max() / curve.train_x.max()))


def matched_inner(curves: Sequence[Curve], options: dict) -> list[dict]:
    """Per curve, a backtest that holds out the runs within its own forecast distance."""
    rows = []
    for c in curves:
        result = bu.backtest(
            pd.DataFrame({"x": c.train_x, "y": c.train_y}),
            "x",
            "y",
            holdout=outer_decades(c),
            holdout_unit="decades",
            min_heldout=2,
            **options,
        )
        rows += inner_rows(result, c.key)
    return rows


def pooled_by_group(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (group, split), block in rows.groupby(["group", "split"], sort=True):
        counts = bu.evaluation.CoverageCounts.pool(block["counts"])
        cov = dict(zip(counts.levels, counts.coverage, strict=True))
        out.append(
            {
                "group": group,
                "split": split,
                "curves": len(block),
                "points": counts.n_points,
                "decades_ahead": float(block["decades_ahead"].median()),
                **{f"coverage_{100 * v:g}": cov[v] for v in SHOWN},
                "msce": float(np.mean([(cov[v] - v) ** 2 for v in MSCE_LEVELS])),
                "lpd": float(block["lpd"].mean()),
                "converged": float(block["converged"].mean()),
            }
        )
    return pd.DataFrame(out)


def per_curve(rows: pd.DataFrame) -> pd.DataFrame:
    wide = rows.pivot(
        index=["group", "curve"], columns="split", values=["coverage_50", "coverage_90"]
    )
    wide.columns = [f"{score}_{split}" for score, split in wide.columns]
    return wide.reset_index()


def verdicts(pooled: pd.DataFrame, rows: pd.DataFrame) -> tuple[list[str], bool]:
    wide = pooled.pivot(index="group", columns="split", values="coverage_90")
    agree = []
    for group in GROUPS:
        if group not in wide.index or wide.loc[group].isna().any():
            continue
        inner, outer = wide.loc[group, "inner"], wide.loc[group, "outer"]
        agree.append((group, (inner < WARN_BELOW) == (outer < WARN_BELOW), inner, outer))
    both = rows.pivot(index="curve", columns="split", values="coverage_90").dropna()
    varied = len(both) > 2 and both["inner"].nunique() > 1 and both["outer"].nunique() > 1
    rho = float(spearmanr(both["inner"], both["outer"]).statistic) if varied else np.nan
    n_agree = sum(a for _, a, _, _ in agree)
    met = n_agree >= 3 and bool(rho > 0)
    lines = [
        f"- {g}: inner 90% coverage {i:.2f}, outer {o:.2f}: "
        + ("same side of 0.85" if a else "opposite sides of 0.85")
        for g, a, i, o in agree
    ]
    by_level = {
        level: pooled.pivot(index="group", columns="split", values=f"coverage_{100 * level:g}")
        for level in SHOWN
    }
    lines += [
        f"- inner coverage above outer at the {100 * level:g}% level in "
        f"{int((w['inner'] > w['outer']).sum())} of {len(w)} groups "
        f"(mean difference {float((w['inner'] - w['outer']).mean()):+.2f})"
        for level, w in by_level.items()
    ]
    lines += [
        f"- rank correlation of inner and outer 90% coverage over {len(both)} curves: {rho:.2f}",
        f"- criterion {'met' if met else 'not met'}: {n_agree} of {len(agree)} groups agree "
        f"(3 needed), correlation {'positive' if rho > 0 else 'not positive or undefined'}",
    ]
    return lines, met


def main(argv: Sequence[str] | None = None) -> int:
    p = split_study_parser(__doc__.split("\n\n")[0], "DD,addition,NMT,LM,BB,IC", 16)
    p.add_argument("--breaks", type=int, default=1)
    p.add_argument("--retries", type=int, default=1, help="automatic remedies (default 1)")
    p.add_argument(
        "--match-distance",
        action="store_true",
        help="hold out, per curve, the runs within its own forecast distance (decades)",
    )
    args = p.parse_args(argv)
    start = time.perf_counter()
    sampler = dict(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed)
    options = dict(breaks=args.breaks, retries=args.retries, warn=False, **sampler)
    if args.match_distance:
        curves = [c for c in study_curves(args) if eligible(c, outer_decades(c), "decades")]
        inner = matched_inner(curves, options)
    else:
        curves = [c for c in study_curves(args) if eligible(c, args.hold)]
        inner = inner_rows(
            bu.backtest(
                context_table(curves),
                "x",
                "y",
                group="curve",
                holdout=args.hold,
                min_heldout=2,
                **options,
            )
        )
    levels = inner[0]["counts"].levels
    outer = bu.fit_many(context_table(curves), "curve", "x", "y", **options)
    rows = pd.DataFrame(inner + outer_rows(curves, outer, levels))
    domain = {c.key: c.domain for c in curves}
    rows.insert(0, "group", [group_of(domain[k]) for k in rows["curve"]])
    pooled = pooled_by_group(rows)
    lines, _ = verdicts(pooled, rows)
    seconds = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keep = [c for c in rows.columns if c != "counts"]
    stem = "backtest_validity_matched" if args.match_distance else "backtest_validity"
    rows[keep].to_csv(out / f"{stem}.csv", index=False)
    command = "python benchmarks/backtest_validity.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = [
        "# Does a backtest on the training rows announce calibration past them?",
        "",
        f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}; "
        f"{seconds / 60:.1f} min in all.",
        "",
        f"{len(curves)} curves (at most {args.max_curves} per domain; those with fewer than "
        f"{MIN_TRAIN} rows left to fit after the inner holdout are skipped). BNSL with "
        f"{args.breaks} break(s), {sampler}, retries {args.retries}. Inner: `bu.backtest` on "
        + (
            "the context rows, per curve the runs within its own forecast distance (the "
            "decades from its last context x to its last held-out x; at least 2) held out. "
            if args.match_distance
            else f"the context rows, the largest-x {args.hold:.0%} (at least 2) held out. "
        )
        + "Outer: the fit to all context rows scored on the benchmark's held-out points. "
        + __doc__.split("\n\n")[3].replace("\n", " "),
        "",
        "## Verdict",
        "",
        *lines,
        "",
        "## Pooled coverage by group",
        "",
        markdown_table(pooled),
        "",
        "## Per curve",
        "",
        markdown_table(per_curve(rows)),
        "",
    ]
    (out / f"{stem}.md").write_text("\n".join(text))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
