"""``breaks="auto"``: fit 0 to ``max_breaks`` breaks and keep the simplest fit that PSIS-LOO
does not find clearly worse than the best.

A break the data do not need is not harmless: its location and sharpness are then free
while its slope change sits near zero, and chains wander that funnel (R-hat fails, and the
extrapolation widens for nothing). The best PSIS-LOO alone tends to take the extra break,
since a few points always fit a little better with it; the parsimonious rule
(:func:`bayes_unsl.evaluation.model_choice.parsimonious_choice`) asks for a clear gain.
Only the fitted points are used, never held-out ones.

Three rules (``break_rule``):

- ``"parsimonious"`` (default): every fitted count competes, converged or not. On training
  splits (each curve's largest-x training points held out, benchmarks/results/
  break_rule.md) its intervals were the best calibrated of the rules tried, by a criterion
  fixed before the run, although its choice had converged in only 35% of the curves there
  (at max tree depth 10 without the automatic remedy): the counts that mix worst are often
  the ones the curve needs. An unconverged choice is returned with its warning.
- ``"converged-first"``: only the counts that passed their convergence checks compete (all
  when none did). Its choices converged in 97% of those curves, at the price of power laws
  where a break was needed (worse calibrated on the double-descent and image curves).
- ``"forecast"``: leave-future-out. Every count is fitted again to all but the
  largest-input 30% of the points (at least 2 held out), and the count whose forecast of
  those points has the highest mean log predictive density is kept (ties: the fewer
  breaks); where the curve is too short for that split, or no count could be fitted to its
  smaller part, the parsimonious choice is kept and the record says why. PSIS-LOO asks how
  well a fit predicts a point inside the data; this asks how well each count would have
  forecast the largest runs, which is what the fit is for, at the cost of twice the fits.
  One input only (order several inputs' runs yourself with :func:`bayes_unsl.backtest`).
  On training splits (benchmarks/results/break_rule_lfo.md) its intervals calibrated as
  well as the parsimonious rule's (within the study's tie margin; better on the image
  curves, worse on double descent and language) and its choices converged more often
  (64% against 58%), but it kept a power law on the one curve whose drop came late in the
  data (4-digit addition).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_unsl.evaluation.model_choice import (
    ELPD_MARGIN,
    SE_MULTIPLE,
    loo_compare,
    parsimonious_choice,
)
from bayes_unsl.evaluation.scores import log_predictive_density
from bayes_unsl.evaluation.splits import future_split

if TYPE_CHECKING:
    from bayes_unsl.fit import Fit

__all__ = [
    "ATTR",
    "BREAK_RULES",
    "DEFAULT_BREAK_RULE",
    "DEFAULT_MAX_BREAKS",
    "break_counts",
    "check_break_rule",
    "choice_table",
    "choose",
    "choose_breaks",
    "forecast_input",
    "forecast_record",
    "forecast_scores",
    "forecast_split",
]

AUTO = "auto"
ATTR = "break_choice"
DEFAULT_MAX_BREAKS = 2
#: The rules and how each is recorded with the fit it chose.
BREAK_RULES = {
    "parsimonious": "parsimonious among all fitted counts, converged or not",
    "converged-first": "parsimonious among the converged fits (all fits when none converged)",
    "forecast": "the best forecast of the largest-input points by a fit to the rest",
}
DEFAULT_BREAK_RULE = "parsimonious"
FORMS = ("bnsl", "unsl")
#: ``break_rule="forecast"``: the share of points held out (largest input first), and the
#: least number held out (those of the break-rule study, benchmarks/break_rule.py --lfo).
FORECAST_HOLDOUT = 0.3
FORECAST_MIN_HELDOUT = 2


def break_counts(form: str, max_breaks: Any) -> list[int]:
    """The numbers of breaks ``breaks="auto"`` tries: 0 to ``max_breaks``."""
    if form not in FORMS:
        raise ValueError(f"breaks='auto' needs a form with breaks {list(FORMS)}, got {form!r}")
    if not isinstance(max_breaks, int) or isinstance(max_breaks, bool) or max_breaks < 1:
        raise ValueError(f"max_breaks must be a positive integer, got {max_breaks!r}")
    return list(range(max_breaks + 1))


def _number(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _sizes(named: Mapping[str, Fit]) -> dict[str, int]:
    return {n: f.spec.n_params for n, f in named.items()}


def _named(fits: Mapping[int, Fit]) -> dict[str, Fit]:
    return {f"breaks{k}": f for k, f in sorted(fits.items())}


def check_break_rule(rule: Any) -> str:
    if rule not in BREAK_RULES:
        raise ValueError(f"break_rule must be one of {list(BREAK_RULES)}, got {rule!r}")
    return rule


def _chosen_name(
    named: Mapping[str, Fit], rule: str, comparison: pd.DataFrame | None = None
) -> str:
    """The PSIS-LOO rule on fits keyed by name (``"forecast"`` falls back to the
    parsimonious one); ``comparison``: :func:`loo_compare` of all of them, reused when every
    fit competes."""
    usable = dict(named)
    if check_break_rule(rule) == "converged-first":
        usable = {n: f for n, f in named.items() if f.converged} or usable
    if comparison is None or len(usable) < len(named):
        comparison = loo_compare(usable)
    return parsimonious_choice(comparison, _sizes(usable))


def forecast_input(x: str | Sequence[str]) -> str:
    """The one input ``break_rule="forecast"`` orders the runs by; ValueError for several."""
    names = [x] if isinstance(x, str) else list(x)
    if len(names) != 1:
        raise ValueError(
            f"break_rule='forecast' orders the runs by their input and takes one input, got "
            f"{names}; compare bayes_unsl.backtest(..., by=...) across numbers of breaks instead"
        )
    return names[0]


def forecast_split(
    frame: pd.DataFrame, x: str | Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The points ``break_rule="forecast"`` refits to, and those it forecasts: the
    largest-input :data:`FORECAST_HOLDOUT` share (at least :data:`FORECAST_MIN_HELDOUT`,
    ties at the threshold held out together). ValueError where nothing would be left."""
    column = forecast_input(x)
    return future_split(frame, frame[column], FORECAST_HOLDOUT, min_heldout=FORECAST_MIN_HELDOUT)


def forecast_scores(
    fits: Mapping[int, Fit], held: pd.DataFrame, x: str, y: str
) -> dict[int, float]:
    """Mean log predictive density of the held-out points under each count's forecast."""
    truth = held[y].to_numpy(dtype=float)
    return {
        k: float(log_predictive_density(f.samples(held[x].to_numpy(dtype=float)), truth))
        for k, f in fits.items()
    }


def forecast_record(
    fits: Mapping[int, Fit],
    held: pd.DataFrame,
    x: str | Sequence[str],
    y: str,
    fitted: int,
    errors: Sequence[str] = (),
) -> dict[str, Any]:
    """What :func:`choose` takes as ``forecast`` for one curve: each count's score, the
    numbers of points refitted and held out, the refits' seconds, and (where no count could
    be refitted) the errors that said why."""
    return {
        "scores": forecast_scores(fits, held, forecast_input(x), y),
        "fitted": int(fitted),
        "held_out": len(held),
        "seconds": float(sum(f.diagnostics()["seconds"] for f in fits.values())),
        **({"note": "; ".join(errors)} if not fits else {}),
    }


def _forecast_name(named: Mapping[str, Fit], forecast: Mapping[int, float]) -> str | None:
    """The name of the fit with the best finite forecast score (fewer breaks on ties)."""
    scored = [
        (-forecast[f.spec.breaks], f.spec.breaks, n)
        for n, f in named.items()
        if np.isfinite(forecast.get(f.spec.breaks, np.nan))
    ]
    return min(scored)[2] if scored else None


def choose_breaks(
    fits: Mapping[int, Fit],
    rule: str = DEFAULT_BREAK_RULE,
    forecast: Mapping[int, float] | None = None,
) -> int:
    """The number of breaks ``breaks="auto"`` keeps among fits of one curve keyed by it.

    The fewest parameters not clearly worse than the best
    (:func:`~bayes_unsl.evaluation.model_choice.parsimonious_choice`), among every fit
    (``rule="parsimonious"``) or among those that passed their convergence checks when any
    did (``rule="converged-first"``); with ``rule="forecast"``, the count with the best
    ``forecast`` score (:func:`forecast_scores`), or the parsimonious choice where none was
    scored (see the module's notes on each).
    """
    if not fits:
        raise ValueError("no fit to choose from")
    named = _named(fits)
    chosen = None
    if check_break_rule(rule) == "forecast":
        chosen = _forecast_name(named, forecast or {})
    return named[chosen or _chosen_name(named, rule)].spec.breaks


def choose(
    fits: Mapping[int, Fit],
    skipped: Mapping[int, str],
    rule: str = DEFAULT_BREAK_RULE,
    forecast: Mapping[str, Any] | None = None,
) -> Fit:
    """The fit :func:`choose_breaks` keeps, with the choice recorded in its attributes.

    The record (rule, every candidate's PSIS-LOO, stacking weight and convergence, the
    counts that could not be fitted and why, the seconds of all fits together) is saved
    with the fit; :func:`choice_table` reads it back. PSIS-LOO needs every candidate's
    full ``InferenceData``, so deferred fits are built here. ``forecast`` (rule
    ``"forecast"``): ``scores`` by count (:func:`forecast_scores`), the numbers of points
    ``fitted`` and ``held_out``, the ``seconds`` of those fits, and ``note``: why no count
    was scored, where none was.
    """
    if not fits:
        raise ValueError("no fit to choose from: " + "; ".join(skipped.values()))
    named = _named(fits)
    table = loo_compare(named)
    forecast = dict(forecast or {})
    scores = {int(k): v for k, v in forecast.get("scores", {}).items()}
    chosen = None
    if check_break_rule(rule) == "forecast":
        chosen = _forecast_name(named, scores)
        if chosen is None:
            forecast.setdefault("note", "no count was scored")
            forecast["fallback"] = "parsimonious"
    chosen = chosen or _chosen_name(named, rule, table)
    rows = []
    for name, fit_ in named.items():
        d = fit_.diagnostics()
        row = table.loc[name]
        rows.append(
            {
                "breaks": fit_.spec.breaks,
                "elpd_loo": _number(row["elpd_loo"]),
                "se": _number(row["se"]),
                "elpd_diff": _number(row["elpd_diff"]),
                "dse": _number(row["dse"]),
                "p_loo": _number(row["p_loo"]),
                "stacking_weight": _number(row["weight"]),
                "pareto_k_high": int(row["pareto_k_high"]),
                "converged": bool(d["converged"]),
                "r_hat_max": _number(d["r_hat_max"]),
                "chosen": name == chosen,
                **(
                    {"forecast_lpd": _number(scores.get(fit_.spec.breaks, np.nan))}
                    if rule == "forecast"
                    else {}
                ),
            }
        )
    record = {
        "rule": BREAK_RULES[rule],
        "break_rule": rule,
        "elpd_margin": ELPD_MARGIN,
        "se_multiple": SE_MULTIPLE,
        "chosen_breaks": named[chosen].spec.breaks,
        "fits": rows,
        "skipped": {str(k): v for k, v in skipped.items()},
        "seconds_all_fits": float(
            sum(f.diagnostics()["seconds"] for f in fits.values()) + forecast.get("seconds", 0.0)
        ),
    }
    if rule == "forecast":
        record["forecast"] = {
            "holdout": FORECAST_HOLDOUT,
            "min_heldout": FORECAST_MIN_HELDOUT,
            **{k: v for k, v in forecast.items() if k != "scores"},
        }
    result = named[chosen]
    result.attrs[ATTR] = json.dumps(record, sort_keys=True)
    return result


def choice_table(attrs: Mapping[str, Any]) -> pd.DataFrame | None:
    """The recorded choice as a table indexed by breaks, or None for a fit not chosen so.

    Numbers of breaks that could not be fitted have a row with the reason in ``skipped``.
    """
    text = attrs.get(ATTR)
    if text is None:
        return None
    record = json.loads(text)
    rows = [{**row, "skipped": None} for row in record["fits"]]
    rows += [
        {"breaks": int(k), "converged": False, "chosen": False, "skipped": why}
        for k, why in record["skipped"].items()
    ]
    return pd.DataFrame(rows).set_index("breaks").sort_index()
