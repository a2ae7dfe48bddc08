"""Convergence and held-out calibration of the default BNSL at several NUTS tree depths.

Curves: the 4-digit addition curve (14 points fitted, 3 held out), the same curve cut before
its transition (x <= 390, all later points held out; x <= 512 likewise), the 16
double-descent curves with the NSL-PFN split, those of them that have a transition cut just
before their steepest descent (``steepest_cut_split``: group ``cut``, like the addition
cuts), and, with ``--benchmark``, the 92 curves of
arXiv 2209.06640 (the authors' train / extrapolate split). Curves with fewer points than a
1-break BNSL has parameters are fitted without breaks (stated in the table).

    python benchmarks/convergence.py --data-root ../shared/data [--depths 10,8,6]
        [--forms bnsl,bnsl_direct] [--direct-depths 6]
        [--benchmark] [--limit N] [--batch-size 1]
        [--priors '{"sharpness_floor": 0.1}'] [--sampler '{"target_accept": 0.98, "seed": 1}']
        [--break-rule converged-first]

``--forms bnsl-auto`` fits every curve with 0, 1 and 2 breaks (``breaks="auto"``) and
reports the PSIS-LOO choice of ``--break-rule`` (default: the package's) per curve (form
``bnsl-auto``) next to each number of breaks fitted in the same run (forms ``bnsl-k0``,
``bnsl-k1``, ``bnsl-k2``).

``--forms bnsl,bnsl_direct`` adds the direct parameterisation of ``direct_bnsl.py`` (the
BNSL in its natural parameters, same prior scales), measured in the same run: gradient
evaluations per effective sample, divergences and convergence side by side.

Every fit: 4 chains x (1000 + 1000) draws, no automatic remedy, so that the table shows what
the sampler does at each setting (``--sampler '{"retries": 1}'`` measures what ``fit``
returns by default instead: a failed fit refitted once with the default remedy). Writes
benchmarks/results/convergence.{md,csv}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import direct_bnsl  # noqa: F401  (registers the "bnsl_direct" form)
import numpy as np
import pandas as pd
from provenance import git_commit, machine, write_report

import bayes_unsl as bu
from bayes_unsl.break_choice import BREAK_RULES, DEFAULT_BREAK_RULE
from bayes_unsl.evaluation import coverage, rmsle
from bayes_unsl.evaluation.splits import double_descent_split, steepest_cut_split
from bayes_unsl.fit import DEFAULT_REMEDY
from bayes_unsl.inference import Thresholds
from bayes_unsl.inference.nuts import SamplerSettings
from bayes_unsl.models import ModelSpec
from bayes_unsl.models.registry import form_model
from bayes_unsl.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
X, Y = "x", "y"


def curves(data_root: str | None, benchmark: bool):
    """(name, group, train, held) with columns x and y."""
    addition = bu.datasets.load("four_digit_addition").rename(
        columns={"train_dataset_size": X, "test_cross_entropy": Y}
    )
    yield "4-digit addition", "addition", addition.iloc[:14], addition.iloc[14:]
    for cut in (390, 512):
        keep = addition[X] <= cut
        yield f"4-digit addition, x <= {cut}", "cut", addition[keep], addition[~keep]
    dd = bu.datasets.load("double_descent").rename(columns={"x_value": X, "metric_value": Y})
    for task, frame in dd.groupby("task", sort=True):
        train, held = double_descent_split(frame, X)
        yield task, "double descent", train, held
    for task, frame in dd.groupby("task", sort=True):
        try:
            train, held = steepest_cut_split(frame, X, Y)
        except ValueError:
            continue  # no transition after the minimum context
        yield f"{task}, cut before its steepest descent", "cut", train, held
    if benchmark:
        frame = bu.datasets.read_folder("revisiting_scaling_laws_benchmark", data_root)
        for name, rows in frame.groupby("group", sort=True):
            rows = rows.rename(columns={"seen_examples": X, "metric_value": Y})
            domain = rows["domain"].iloc[0]
            train, held = rows[rows.split == "train"], rows[rows.split == "extrapolate"]
            yield name, f"benchmark {domain}", train, held


def score(fit: bu.Fit, held: pd.DataFrame) -> dict:
    d = fit.diagnostics()
    draws = fit.samples(held[X].to_numpy())
    truth = held[Y].to_numpy()
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    return {
        "converged": d["converged"],
        "r_hat_max": d["r_hat_max"],
        "ess_bulk_min": d["ess_bulk_min"],
        "divergences": d["divergences"],
        "chain_separation": d.get("chain_separation", 0.0),
        "tree_depth_mean": d["tree_depth_mean"],
        "grad_evals_per_ess": d["gradient_evals_per_ess"],
        "seconds": d["seconds"],
        # NUTS iterations only (a batched fit's share of its batch's)
        "seconds_sampling": d.get("seconds_sampling", np.nan) / d.get("batch_size", 1),
        "remedies": len(d.get("remedies") or ()),
        "rmsle": rmsle(draws, truth),
        "coverage_50": coverage(draws, truth, 0.5),
        "coverage_90": coverage(draws, truth, 0.9),
        "width_90": float(np.mean(np.log(hi / lo))),
    }


def _fit_all(table: pd.DataFrame, depth: int, batch_size, priors, sampler=None, **options):
    """``fit_many`` over the curves of ``table`` as the benchmark runs it: no remedy unless
    ``sampler`` asks for one.

    ``sampler``: sampler settings other than the defaults (e.g. ``target_accept``, or
    ``retries`` and ``remedy``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bu.fit_many(
            table,
            "curve",
            X,
            Y,
            max_tree_depth=depth,
            batch_size=batch_size,
            priors=priors,
            progress_bar=False,
            warn=False,
            **{"retries": 0, **(sampler or {})},
            **options,
        )


def _rows(curves_, fits, form: str, depth: int, breaks: int | None = None) -> list[dict]:
    """One row per curve: its fit's diagnostics and held-out scores, or its error.

    ``breaks``: the count asked for (None: each fit's own, as chosen by ``"auto"``).
    """
    rows = []
    for name, group, train, held in curves_:
        row = {"curve": name, "group": group, "form": form, "max_tree_depth": depth}
        row.update(n_fit=len(train), n_heldout=len(held), breaks=breaks)
        if name in fits:
            row["breaks"] = fits[name].spec.breaks
            row.update(score(fits[name], held))
        else:
            row["error"] = fits.errors.get(name, "not fitted")
        rows.append(row)
        print(row, flush=True)
    return rows


def _table(curves_) -> pd.DataFrame:
    return pd.concat([train[[X, Y]].assign(curve=name) for name, _, train, _ in curves_])


def run(
    all_curves,
    depth: int,
    batch_size: int | None,
    form: str = "bnsl",
    priors=None,
    sampler=None,
) -> list[dict]:
    one_break = ModelSpec.build("bnsl", 1).n_params
    rows = []
    for breaks in (1, 0):
        picked = [c for c in all_curves if (len(c[2]) >= one_break) == (breaks == 1)]
        if picked:
            fits = _fit_all(
                _table(picked), depth, batch_size, priors, sampler, form=form, breaks=breaks
            )
            rows += _rows(picked, fits, form, depth, breaks)
    return rows


AUTO_MAX_BREAKS = 2


def run_auto(
    all_curves,
    depth: int,
    batch_size: int | None,
    priors=None,
    sampler=None,
    break_rule: str = DEFAULT_BREAK_RULE,
) -> list[dict]:
    """``breaks="auto"`` on every curve: rows of the chosen fits and of every count tried."""
    with tempfile.TemporaryDirectory() as tmp:
        chosen = _fit_all(
            _table(all_curves),
            depth,
            batch_size,
            priors,
            sampler,
            breaks="auto",
            max_breaks=AUTO_MAX_BREAKS,
            break_rule=break_rule,
            out=tmp,
        )
        rows = _rows(all_curves, chosen, "bnsl-auto", depth)
        for k in range(AUTO_MAX_BREAKS + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unconverged fits are counted, not warned
                fits = bu.load_many(Path(tmp) / f"breaks{k}")
            rows += _rows(all_curves, fits, f"bnsl-k{k}", depth, k)
    return rows


def _scored(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that were fitted (not failed), with a form column."""
    ok = table.dropna(subset=["converged"])
    return ok if "form" in ok.columns else ok.assign(form="bnsl")


def summary(table: pd.DataFrame) -> list[str]:
    lines = [
        "| group | form | max tree depth | curves | converged | mean tree depth | "
        "median grad evals / ESS | coverage 50% | coverage 90% | mean 90% width (log y) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ok = _scored(table)
    every = ok.assign(group="all")
    for (group, form, depth), g in pd.concat([ok, every]).groupby(
        ["group", "form", "max_tree_depth"], sort=False
    ):
        w = g["n_heldout"]
        lines.append(
            f"| {group} | {form} | {depth} | {len(g)} | {g['converged'].mean():.0%} | "
            f"{g['tree_depth_mean'].mean():.2f} | {g['grad_evals_per_ess'].median():.0f} | "
            f"{np.average(g['coverage_50'], weights=w):.0%} | "
            f"{np.average(g['coverage_90'], weights=w):.0%} | {g['width_90'].mean():.3f} |"
        )
    return lines


def shares(table: pd.DataFrame) -> list[str]:
    """Each convergence check on its own, over every curve, per form and depth."""
    lines = [
        "| form | max tree depth | curves | converged | R-hat <= 1.01 | bulk ESS >= 400 | "
        "no divergences | median grad evals / ESS | mean grad evals / ESS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ok = _scored(table)
    for (form, depth), g in ok.groupby(["form", "max_tree_depth"], sort=False):
        lines.append(
            f"| {form} | {depth} | {check_cells(g)} | {g['grad_evals_per_ess'].mean():.0f} |"
        )
    return lines


def failure_kind(row: pd.Series) -> str:
    """Why a fit failed its checks: chains in separate modes (means several within-chain
    sds apart, ``Thresholds.modes_apart``), slow mixing within one mode (R-hat or ESS
    short, chains together), or divergences alone; "" if it passed ("unknown" for rows
    written before the chain separation was recorded)."""
    if row["converged"]:
        return ""
    if not row["r_hat_max"] > 1.01 and not row["ess_bulk_min"] < 400:
        return "divergences only"
    separation = row.get("chain_separation", np.nan)
    if pd.isna(separation):
        return "unknown"
    return "separate modes" if separation >= Thresholds().modes_apart else "slow mixing"


def failures(table: pd.DataFrame) -> list[str]:
    """Failed fits per form and depth, by kind (:func:`failure_kind`)."""
    ok = _scored(table)
    kinds = ok.apply(failure_kind, axis=1)
    lines = [
        "| form | max tree depth | curves | failed | separate modes | slow mixing | "
        "divergences only | R-hat <= 1.01 and bulk ESS >= 400 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (form, depth), g in ok.groupby(["form", "max_tree_depth"], sort=False):
        k = kinds[g.index]
        by_kind = " | ".join(str(int((k == kind).sum())) for kind in FAILURE_KINDS)
        lines.append(
            f"| {form} | {depth} | {len(g)} | {(k != '').sum()}{_unknown(k)} | {by_kind} | "
            f"{target_share(g):.0%} |"
        )
    return lines


FAILURE_KINDS = ("separate modes", "slow mixing", "divergences only")


def target_share(g: pd.DataFrame) -> float:
    """Share of fitted rows ``g`` with max R-hat <= 1.01 and bulk ESS >= 400 (the
    convergence target's criterion, which does not count divergences)."""
    return float(((g["r_hat_max"] <= 1.01) & (g["ess_bulk_min"] >= 400)).mean())


def _unknown(kinds: pd.Series) -> str:
    n = int((kinds == "unknown").sum())
    return f" ({n} of unknown kind)" if n else ""


def check_cells(g: pd.DataFrame) -> str:
    """Table cells for fitted rows ``g``: curves, the share passing all checks and each
    check, median gradient evaluations per effective sample."""
    return (
        f"{len(g)} | {g['converged'].mean():.0%} | {(g['r_hat_max'] <= 1.01).mean():.0%} | "
        f"{(g['ess_bulk_min'] >= 400).mean():.0%} | {(g['divergences'] == 0).mean():.0%} | "
        f"{g['grad_evals_per_ess'].median():.0f}"
    )


TARGET_SHARE, TARGET_MAX_DEPTH, TARGET_GRAD_RATIO, TARGET_CUT_COVERAGE = 0.99, 6, 5.0, 0.85


JUDGED = {"bnsl": "curves", "bnsl-auto": "curves' chosen fits"}  # the fits a user gets


def targets(table: pd.DataFrame) -> list[str]:
    """The convergence targets, judged on this run's rows of form bnsl or bnsl-auto (and
    bnsl_direct, for the gradient cost, where the same run fitted it at the same depth)."""
    ok = _scored(table)
    lines = []
    judged = ok[ok["form"].isin(list(JUDGED))]
    direct = ok[ok["form"] == "bnsl_direct"]
    for (form, depth), g in judged.groupby(["form", "max_tree_depth"], sort=False):
        share = target_share(g)
        met = "met" if share >= TARGET_SHARE and depth <= TARGET_MAX_DEPTH else "NOT met"
        lines.append(
            f"- {form}, max tree depth {depth}: {share:.0%} of {len(g)} {JUDGED[form]} reach "
            f"max R-hat <= 1.01 and bulk ESS >= 400 (target {TARGET_SHARE:.0%} at a depth of "
            f"{TARGET_MAX_DEPTH} or less): **{met}**."
        )
        d = direct[direct["max_tree_depth"] == depth]
        if len(d):
            ratio = d["grad_evals_per_ess"].mean() / g["grad_evals_per_ess"].mean()
            median = d["grad_evals_per_ess"].median() / g["grad_evals_per_ess"].median()
            met = "met" if ratio >= TARGET_GRAD_RATIO else "NOT met"
            lines.append(
                f"  Mean gradient evaluations per effective sample, direct over default: "
                f"{ratio:.1f} times (median {median:.1f}; target {TARGET_GRAD_RATIO:g}): "
                f"**{met}**."
            )
        cut = g[g["group"] == "cut"]
        if len(cut):
            covered = np.average(cut["coverage_90"], weights=cut["n_heldout"])
            met = "met" if covered >= TARGET_CUT_COVERAGE else "NOT met"
            pairs = zip(cut["curve"], cut["width_90"], strict=True)
            widths = "; ".join(f"{curve}: {width:.3f}" for curve, width in pairs)
            lines.append(
                f"  Curves cut before their transition: 90% intervals cover {covered:.0%} of "
                f"{int(cut['n_heldout'].sum())} held-out points (target "
                f"{TARGET_CUT_COVERAGE:.0%}): **{met}**; widths (mean log(upper / lower) per "
                f"curve): {widths}."
            )
    if lines:
        lines.append(
            "- SBC of the final parameterisation: not measured here (`benchmarks/sbc.py`, "
            "results in `sbc_bnsl1.md`)."
        )
    return lines


def _likelihood(sampler: dict | None, priors: dict | None) -> str:
    """The noise model the bnsl fits used: asked for in ``--sampler``, else the form's."""
    name = (sampler or {}).get("likelihood") or form_model("bnsl").default_likelihood
    if name == "student_t":
        df = (priors or {}).get("student_df", bu.BNSLPriors().student_df)
        return f"Student-t with {df:g} degrees of freedom on log y"
    return "normal on log y"


def _shell_value(option: str, value) -> str:
    """An option's value as typed in the command line (JSON values quoted)."""
    if value is True:
        return ""
    return f" '{value}'" if option in ("priors", "sampler") else f" {value}"


def _remedy_text(sampler: dict | None) -> str:
    retries = (sampler or {}).get("retries", 0)
    if not retries:
        return "no automatic remedy"
    kind = (sampler or {}).get("remedy", DEFAULT_REMEDY)
    return (
        f"the automatic remedy `{kind}` for up to {retries} refit(s) of a fit that fails its "
        "checks (`bayes_unsl.fit.remedy`; column `remedies`; the diagnostics and gradient "
        "evaluations are the last attempt's, the seconds every attempt's)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", default=os.environ.get("BAYES_UNSL_DATA"))
    parser.add_argument("--depths", default="10,8,6")
    parser.add_argument("--benchmark", action="store_true", help="add the 92-curve benchmark")
    parser.add_argument("--limit", type=int, default=None, help="first N curves only")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--forms",
        default="bnsl",
        help="comma-separated; bnsl_direct is the direct parameterisation of direct_bnsl.py",
    )
    parser.add_argument(
        "--priors", default=None, help="prior settings as JSON, e.g. '{\"break_concentration\": 1}'"
    )
    parser.add_argument(
        "--sampler", default=None, help="sampler settings as JSON, e.g. '{\"target_accept\": 0.9}'"
    )
    parser.add_argument(
        "--direct-depths",
        default=None,
        help="tree depths at which to fit bnsl_direct (default: --depths); its deep trees are slow",
    )
    parser.add_argument(
        "--break-rule",
        default=DEFAULT_BREAK_RULE,
        choices=list(BREAK_RULES),
        help="how bnsl-auto chooses among the break counts",
    )
    parser.add_argument("--name", default="convergence", help="results file name (no suffix)")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="fit nothing: rewrite results/NAME.md from results/NAME.csv with this script's "
        "tables, keeping the earlier Markdown's command and description",
    )
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results"
    if args.rescore:
        rescore(out / args.name)
        return
    priors = json.loads(args.priors) if args.priors else None
    sampler = json.loads(args.sampler) if args.sampler else None
    all_curves = list(curves(args.data_root, args.benchmark))[: args.limit]
    started = time.perf_counter()
    direct_depths = {int(d) for d in (args.direct_depths or args.depths).split(",")}
    rows = []
    for depth in (int(d) for d in args.depths.split(",")):
        for form in args.forms.split(","):
            if form == "bnsl_direct" and depth not in direct_depths:
                continue
            if form == "bnsl-auto":
                rows += run_auto(
                    all_curves, depth, args.batch_size, priors, sampler, args.break_rule
                )
            else:
                rows += run(all_curves, depth, args.batch_size, form, priors, sampler)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{args.name}.csv", index=False)
    command = "python benchmarks/convergence.py --data-root <dataset folders> " + " ".join(
        f"--{k.replace('_', '-')}" + _shell_value(k, v)
        for k, v in vars(args).items()
        if k != "data_root" and v not in (None, False)
    )
    lines = [
        "# Convergence and held-out coverage of the default BNSL by NUTS tree depth",
        "",
        f"Command: `{command}`. Machine: {machine()}; commit {git_commit()}; "
        f"{time.perf_counter() - started:.0f} s in all.",
        "",
        "Each curve: `bu.fit_many`, 4 chains x (1000 + 1000), target acceptance "
        f"{(sampler or {}).get('target_accept', SamplerSettings().target_accept)}, dense "
        f"mass matrix, {_remedy_text(sampler)}; BNSL with 1 break (0 where the curve has fewer "
        "points than 1 break needs). Converged: max R-hat <= 1.01, bulk ESS >= 400 and no "
        "divergences. Coverage pooled over held-out points; the 90% width is the mean of "
        "log(upper / lower). bnsl_direct: the direct parameterisation of "
        "benchmarks/direct_bnsl.py (its predictions have no further break past the data). "
        'bnsl-auto: `breaks="auto"`, per curve the fewest breaks (0 to 2) whose PSIS-LOO on '
        "the fitted points is not clearly worse than the best (behind by more than 4 and by "
        f'more than 2 standard errors), by `break_rule="{args.break_rule}"` '
        f"({BREAK_RULES[args.break_rule]}; `bayes_unsl.break_choice`); bnsl-k<k>: the fits "
        "with k breaks of the same "
        "run (a curve too short for k breaks is listed with that error). "
        f"Priors: the defaults{'' if priors is None else f', except {priors}'}. "
        f"Likelihood: {_likelihood(sampler, priors)}.",
        "",
        *results(table),
    ]
    write_report(out / f"{args.name}.md", lines)


def rescore(stem: Path) -> None:
    """Rewrite ``stem``.md from ``stem``.csv: the earlier header, this script's tables."""
    header = stem.with_suffix(".md").read_text().split("\n## Targets")[0].rstrip()
    note = (
        f"Tables rewritten from the CSV by `convergence.py --rescore --name {stem.name}` "
        f"at commit {git_commit()} (no fit repeated)."
    )
    table = pd.read_csv(stem.with_suffix(".csv"))
    write_report(stem.with_suffix(".md"), [header, "", note, "", *results(table)])


def results(table: pd.DataFrame) -> list[str]:
    """The Markdown after the header: targets, convergence checks, groups, every curve."""
    return [
        "## Targets",
        "",
        *targets(table),
        "",
        "## Convergence checks",
        "",
        *shares(table),
        "",
        "Failed fits by kind: separate modes (some parameter's chain means lie at least "
        f"{Thresholds().modes_apart:g} within-chain sds apart), slow mixing (R-hat above "
        "1.01 or bulk ESS below 400 with the chains together), divergences only. The last "
        "column is the issue's own criterion, which does not count divergences.",
        "",
        *failures(table),
        "",
        *summary(table),
        "",
        "## Every curve",
        "",
        markdown_table(table),
        "",
    ]


if __name__ == "__main__":
    main()
