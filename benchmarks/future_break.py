"""The further-break prior, judged on training splits: which rate and slope scale is honest?

A fitted curve says nothing about a break past its last point, so predictions there carry
one further break per posterior draw, drawn from its prior (``future_break_rate`` per decade,
slope change sd ``future_slope_sd`` toward the curve's limit and ``future_away_sd`` away
from it, in log y per log x, or 0 for the data-relative scale of the fitted breaks).
Its settings cannot be learnt from the data and must not be tuned on the
benchmarks' held-out points. This study uses the context (training) points of each curve
only: the largest-x ``--hold`` share of them (at least 2) is held out, BNSL is fitted to the
rest, and the held-out training points are predicted under every variant of the prior.
The posterior is the same for every variant (the break is drawn at prediction time), so one
fit per curve serves them all.

Rule: the default moves only to a variant that is no worse than the incumbent (the
package's default, or ``--incumbent rate,toward,away``) by each of three aggregates of the
MSCE (levels 0.5 to 0.99): the mean over domain groups of the MSCE pooled within the
group, the same weighted by each group's number of curves, and the MSCE pooled over every
held-out point. Among those, the lowest curve-weighted MSCE wins. Only variants whose 90%
intervals at 10x stay within a factor 10 on the NLP loss curves are eligible. (The first
rule, the mean over groups alone, was fixed before the first run; with the
image-classification group added it was decided by the one-curve addition group, whose
MSCE is ten times the others', and picked intervals that cover 94% at the 50% level on the
image curves. The report shows its pick too.)

    python benchmarks/future_break.py --data-root ../shared/data --max-curves 16

Writes future_break.md and future_break.csv to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import AVERAGED, DOMAINS, LEVELS, NLP, Curve, select_curves
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.evaluation import MSCE_LEVELS, score_all
from bayes_unsl.models import LIKELIHOODS
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
RATES = (0.0, 0.25, 0.5, 1.0, 2.0)
SLOPES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # 0: the data-relative scale
#: Away-from-the-limit settings: None, the same sd as toward it; 0, data-relative.
AWAY = (None, 0.0)
MIN_TRAIN = 8
TIE = 0.002
#: Plausibility bound (a prior predictive check, no held-out truth involved): in the
#: loss curves of the NLP group, the median 90% interval at 10x the last training x may
#: span at most this factor.
MAX_SPAN_10X = 10.0


def inner_split(curve: Curve, hold: float) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The context sorted by x: the largest-x share held out; None if too few remain."""
    order = np.argsort(curve.train_x, kind="stable")
    x, y = curve.train_x[order], curve.train_y[order]
    n_held = max(2, int(round(hold * len(x))))
    if len(x) - n_held < MIN_TRAIN:
        return None
    frame = pd.DataFrame({"x": x, "y": y})
    return frame.iloc[: len(x) - n_held], frame.iloc[len(x) - n_held :]


def inner_splits(curves: Sequence[Curve], hold: float):
    """Every curve's inner split: ``(splits by key, keys too short to split, the fitted
    points of all curves as one table with a ``curve`` column)``."""
    splits, skipped = {}, []
    for c in curves:
        split = inner_split(c, hold)
        if split is None:
            skipped.append(c.key)
        else:
            splits[c.key] = split
    table = pd.concat(
        [frame.assign(curve=key) for key, (frame, _) in splits.items()], ignore_index=True
    )
    return splits, skipped, table


def variants() -> list[tuple[float, float, float]]:
    """(rate, slope sd toward the limit, sd away from it); the slopes are moot at rate 0,
    and a data-relative slope toward the limit is only paired with the same away."""
    out = [(0.0, 0.0, 0.0)]
    for r in RATES:
        for s in SLOPES:
            for a in AWAY:
                away = s if a is None else a
                if r > 0 and (r, s, away) not in out:
                    out.append((r, s, away))
    return out


def _sd(s: float) -> str | float:
    return "relative" if s == 0 else s


def group_of(domain: str) -> str:
    return "NLP" if domain in NLP else domain


def score_curves(curves, splits, fits) -> pd.DataFrame:
    rows = []
    for curve in curves:
        if curve.key not in fits:
            continue
        train, held = splits[curve.key]
        fit = fits[curve.key]
        last_y = float(train["y"].iloc[-1])
        x_last = float(train["x"].max())
        for rate, slope, away in variants():
            variant = fit.with_future_break(rate, slope, away)
            draws = variant.samples(held["x"].to_numpy())
            scores = score_all(draws, held["y"].to_numpy(), LEVELS, scale=float(train["y"].max()))
            upper = np.quantile(draws[:, -1], 0.95)
            lo, hi = np.quantile(variant.samples([10 * x_last, 100 * x_last]), [0.05, 0.95], 0)
            rows.append(
                {
                    "group": group_of(curve.domain),
                    "curve": curve.key,
                    "rate": rate,
                    "slope_sd": slope,
                    "away_sd": away,
                    "decades_past": float(np.log10(held["x"].max() / train["x"].max())),
                    "upper95_over_last": float(upper / last_y),
                    "span90_10x": float(hi[0] / lo[0]),
                    "span90_100x": float(hi[1] / lo[1]),
                    "r_hat_max": float(fit.diagnostics()["r_hat_max"]),
                    **scores,
                }
            )
    return pd.DataFrame(rows)


def _cov(level: float) -> str:
    return f"coverage_{100 * level:g}"


def pooled(rows: pd.DataFrame) -> dict:
    """Coverage pooled over the held-out points of ``rows`` (one row per curve), its MSCE."""
    n = rows["n_points"].to_numpy(float)
    cov = {lvl: float(np.sum(rows[_cov(lvl)] * n) / n.sum()) for lvl in LEVELS}
    return {
        "curves": len(rows),
        "points": int(n.sum()),
        **{f"cov{100 * lvl:g}": cov[lvl] for lvl in (0.5, 0.8, 0.9, 0.95)},
        "msce": float(np.mean([(cov[lvl] - lvl) ** 2 for lvl in MSCE_LEVELS])),
    }


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per group and variant: pooled coverage, MSCE, mean LPD and widths."""
    out = []
    keys = ["group", "rate", "slope_sd", "away_sd"]
    for (group, rate, slope, away), r in rows.groupby(keys, sort=True):
        out.append(
            {
                "group": group,
                "rate": rate,
                "slope_sd": _sd(slope),
                "away_sd": _sd(away),
                **pooled(r),
                "lpd": float(r["lpd"].mean()),
                "width90": float(r["width_90"].median()),
                "upper95/last (max)": float(r["upper95_over_last"].max()),
                "span 10x": float(r["span90_10x"].median()),
                "span 100x": float(r["span90_100x"].median()),
            }
        )
    return pd.DataFrame(out)


VARIANT = ["rate", "slope_sd", "away_sd"]


def choose(summary: pd.DataFrame, rows: pd.DataFrame, current: tuple) -> pd.DataFrame:
    """Per variant: the three MSCE aggregates, the NLP span, and the rule's verdict.

    ``current``: the package's default (rate, slope sd, away sd), labelled as in
    ``summary``.
    """
    table = (
        summary.groupby(VARIANT, sort=False)
        .agg(msce=("msce", "mean"), width90=("width90", "mean"), groups=("group", "count"))
        .reset_index()
    )
    weighted = summary.assign(w=summary["msce"] * summary["curves"]).groupby(VARIANT, sort=False)
    by_curve = (weighted["w"].sum() / weighted["curves"].sum()).rename("msce_curves")
    labelled = rows.assign(slope_sd=rows["slope_sd"].map(_sd), away_sd=rows["away_sd"].map(_sd))
    by_point = (
        labelled.groupby(VARIANT, sort=False)
        .apply(lambda r: pooled(r)["msce"])
        .rename("msce_points")
    )
    table = table.join(by_curve, on=VARIANT).join(by_point, on=VARIANT)
    nlp = summary[summary["group"] == "NLP"].set_index(VARIANT)["span 10x"]
    table["NLP span 10x"] = [nlp.get(tuple(v), np.nan) for v in table[VARIANT].itertuples(False)]
    table["plausible"] = ~(table["NLP span 10x"] > MAX_SPAN_10X)
    table["current"] = [tuple(v) == current for v in table[VARIANT].itertuples(False)]
    now = table[table["current"]].iloc[0]
    aggregates = ["msce", "msce_curves", "msce_points"]
    table["no_worse"] = table["plausible"] & np.all(
        [table[a] <= now[a] for a in aggregates], axis=0
    )
    # Plausible first, then by the first rule.
    return table.sort_values(["plausible", "msce", "width90"], ascending=[False, True, True])


def report(rows, summary, ranking, skipped, settings, seconds, command) -> str:
    import jax

    pick = ranking[ranking["no_worse"]].sort_values("msce_curves").iloc[0]
    plausible = ranking[ranking["plausible"]]
    first_rule = plausible[plausible["msce"] <= plausible["msce"].min() + TIE].iloc[0]
    now = ranking[ranking["current"]].iloc[0]

    def named(v) -> str:
        return (
            f"rate {v['rate']:g} per decade, slope sd {v['slope_sd']} toward the limit and "
            f"{v['away_sd']} away from it"
        )

    lines = [
        "# Further-break prior on training splits",
        "",
        f"Command: `{command}`. Machine: {machine()}; JAX {jax.__version__} on "
        f"{jax.default_backend()}; commit {git_commit()}; {seconds:.0f} s in all.",
        "",
        f"Per curve, the context (training) points only: the largest-x {settings['hold']:.0%} "
        f"(at least 2) held out, BNSL with {settings['breaks']} break(s) fitted to the rest "
        f"({settings['sampler']}), seed {settings['seed']}, priors "
        f"{settings.get('priors') or 'the defaults'}, likelihood "
        f"{settings.get('likelihood') or 'the default'}, precision "
        f"{settings.get('precision') or 'the default'}. No benchmark held-out point is "
        "read. Every variant predicts from the same posterior. DD and IC curves are scored on "
        "y divided by the largest inner-training y (LPD, width); coverage does not depend on "
        "it.",
        "",
        f"Curves: {rows['curve'].nunique()} scored; {len(skipped)} skipped (fewer than "
        f"{MIN_TRAIN} inner-training points): {', '.join(skipped) or 'none'}.",
        "",
        "Rule: the default moves only to a variant no worse than the incumbent by each "
        "aggregate of the MSCE (`msce`: mean over groups of the MSCE pooled within each; "
        "`msce_curves`: the same weighted by the groups' numbers of curves; `msce_points`: "
        "pooled over every held-out point); among those (`no_worse`) the lowest "
        "`msce_curves` wins. Plausibility bound (added after the first run, whose winner, "
        "rate 1 with slope sd 2 both ways, gave loss forecasts at 10x whose 90% intervals "
        "spanned a factor of about 80): only variants whose median 90% interval at 10x the "
        f"last training x spans at most a factor {MAX_SPAN_10X:g} on the NLP loss curves are "
        "eligible. Spans are predictions, not scores: no truth is read at 10x or 100x. The "
        "first rule (fixed before the first run: the lowest `msce`, ties within "
        f"{TIE} to the narrowest) was replaced in the run that added the image curves and "
        "the split of the slope by direction, after seeing that the one-curve addition "
        "group decided it; its pick is shown below.",
        "",
        f"Incumbent: {named(now)} (`msce` {now['msce']:.4f}, `msce_curves` "
        f"{now['msce_curves']:.4f}, `msce_points` {now['msce_points']:.4f}).",
        "",
        f"**Chosen: {named(pick)}** (`msce` {pick['msce']:.4f}, `msce_curves` "
        f"{pick['msce_curves']:.4f}, `msce_points` {pick['msce_points']:.4f}).",
        "",
        f"The first rule would pick {named(first_rule)} (`msce` {first_rule['msce']:.4f}, "
        f"`msce_curves` {first_rule['msce_curves']:.4f}, `msce_points` "
        f"{first_rule['msce_points']:.4f}).",
        "",
        "## Ranking (plausible first, then by `msce`)",
        "",
        markdown_table(ranking),
        "",
        "## Per group",
        "",
        markdown_table(summary),
        "",
    ]
    return "\n".join(lines)


def study_curves(args: argparse.Namespace) -> list[Curve]:
    """The curves of ``--domains``: neither the stress test nor the diagnostic, each of
    which reuses another domain's context."""
    allowed = [d for d in DOMAINS if d not in ("addition-cut", AVERAGED)]
    domains = args.domains.split(",")
    if set(domains) - set(allowed):
        raise SystemExit(f"choose domains from {allowed}")
    return select_curves(domains, args.data_root, args.max_curves)


def split_study_parser(description: str, domains: str, max_curves: int | None):
    """The options every training-split study takes (data, split, sampler, output)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-root", default=None)
    p.add_argument("--domains", default=domains)
    p.add_argument("--max-curves", type=int, default=max_curves, help="per domain")
    p.add_argument("--hold", type=float, default=0.3, help="share of context points held out")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fits-dir", default=None, help="save fits here; a rerun resumes from them")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = split_study_parser(__doc__.split("\n\n")[0], "DD,addition,NMT,LM,BB,IC", None)
    p.add_argument("--breaks", type=int, default=1)
    p.add_argument(
        "--incumbent",
        default=None,
        help="rate,toward,away of the default to beat (0: data-relative; default: the package's)",
    )
    p.add_argument("--retries", type=int, default=1, help="automatic remedies (default 1)")
    p.add_argument(
        "--priors", type=json.loads, default=None, help="fitted model's prior settings as JSON"
    )
    p.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default=None,
        help="noise model (default: the form's)",
    )
    p.add_argument(
        "--precision",
        choices=("float32", "float64"),
        default=None,
        help="floating-point precision of the fits (default: the package's)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    started = time.perf_counter()
    curves = study_curves(args)
    splits, skipped, table = inner_splits(curves, args.hold)
    sampler = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws}
    print(f"{len(splits)} curves, {len(skipped)} skipped; fitting", flush=True)
    fits = bu.fit_many(
        table,
        "curve",
        "x",
        "y",
        breaks=args.breaks,
        seed=args.seed,
        warn=False,
        retries=args.retries,
        out=args.fits_dir,
        priors=args.priors,
        likelihood=args.likelihood,
        precision=args.precision,
        **sampler,
    )
    for key, message in fits.errors.items():
        print(f"failed: {key}: {message}", flush=True)
    rows = score_curves(curves, splits, {k: fits[k] for k in fits})
    summary = summarise(rows)
    if args.incumbent:
        incumbent = tuple(float(v) for v in args.incumbent.split(","))
    else:
        d = bu.BNSLPriors()
        incumbent = (d.future_break_rate, d.future_slope_sd, d.future_away_sd)
    current = (incumbent[0], _sd(incumbent[1]), _sd(incumbent[2]))
    ranking = choose(summary, rows, current)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "future_break.csv", index=False)
    sampler["retries"] = args.retries
    settings = {
        "hold": args.hold,
        "breaks": args.breaks,
        "sampler": sampler,
        "seed": args.seed,
        "priors": args.priors,
        "likelihood": args.likelihood,
        "precision": args.precision,
    }
    command = "python benchmarks/future_break.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = report(rows, summary, ranking, skipped, settings, time.perf_counter() - started, command)
    (out / "future_break.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
