"""``breaks="auto"``: fit 0 to ``max_breaks`` breaks and keep the simplest fit that PSIS-LOO
does not find clearly worse than the best.

A break the data do not need is not harmless: its location and sharpness are then free
while its slope change sits near zero, and chains wander that funnel (R-hat fails, and the
extrapolation widens for nothing). The best PSIS-LOO alone tends to take the extra break,
since a few points always fit a little better with it; the parsimonious rule
(:func:`bayes_unsl.evaluation.model_choice.parsimonious_choice`) asks for a clear gain.
Only the fitted points are used, never held-out ones.

Two rules (``break_rule``):

- ``"parsimonious"`` (default): every fitted count competes, converged or not. On training
  splits (each curve's largest-x training points held out, benchmarks/results/
  break_rule.md) its intervals were the best calibrated of the rules tried, by a criterion
  fixed before the run, although its choice had converged in only 35% of the curves there
  (at max tree depth 10 without the automatic remedy): the counts that mix worst are often
  the ones the curve needs. An unconverged choice is returned with its warning.
- ``"converged-first"``: only the counts that passed their convergence checks compete (all
  when none did). Its choices converged in 97% of those curves, at the price of power laws
  where a break was needed (worse calibrated on the double-descent and image curves).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_unsl.evaluation.model_choice import (
    ELPD_MARGIN,
    SE_MULTIPLE,
    loo_compare,
    parsimonious_choice,
)

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
]

AUTO = "auto"
ATTR = "break_choice"
DEFAULT_MAX_BREAKS = 2
#: The rules and how each is recorded with the fit it chose.
BREAK_RULES = {
    "parsimonious": "parsimonious among all fitted counts, converged or not",
    "converged-first": "parsimonious among the converged fits (all fits when none converged)",
}
DEFAULT_BREAK_RULE = "parsimonious"
FORMS = ("bnsl", "unsl")


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
    """The rule on fits keyed by name; ``comparison``: :func:`loo_compare` of all of them,
    reused when every fit competes."""
    usable = dict(named)
    if check_break_rule(rule) == "converged-first":
        usable = {n: f for n, f in named.items() if f.converged} or usable
    if comparison is None or len(usable) < len(named):
        comparison = loo_compare(usable)
    return parsimonious_choice(comparison, _sizes(usable))


def choose_breaks(fits: Mapping[int, Fit], rule: str = DEFAULT_BREAK_RULE) -> int:
    """The number of breaks ``breaks="auto"`` keeps among fits of one curve keyed by it.

    The fewest parameters not clearly worse than the best
    (:func:`~bayes_unsl.evaluation.model_choice.parsimonious_choice`), among every fit
    (``rule="parsimonious"``) or among those that passed their convergence checks when any
    did (``rule="converged-first"``; see the module's notes on both).
    """
    if not fits:
        raise ValueError("no fit to choose from")
    named = _named(fits)
    return named[_chosen_name(named, rule)].spec.breaks


def choose(
    fits: Mapping[int, Fit], skipped: Mapping[int, str], rule: str = DEFAULT_BREAK_RULE
) -> Fit:
    """The fit :func:`choose_breaks` keeps, with the choice recorded in its attributes.

    The record (rule, every candidate's PSIS-LOO, stacking weight and convergence, the
    counts that could not be fitted and why, the seconds of all fits together) is saved
    with the fit; :func:`choice_table` reads it back. PSIS-LOO needs every candidate's
    full ``InferenceData``, so deferred fits are built here.
    """
    if not fits:
        raise ValueError("no fit to choose from: " + "; ".join(skipped.values()))
    named = _named(fits)
    table = loo_compare(named)
    chosen = _chosen_name(named, rule, table)
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
        "seconds_all_fits": float(sum(f.diagnostics()["seconds"] for f in fits.values())),
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
