"""``breaks="auto"``: fit 0 to ``max_breaks`` breaks and keep the simplest converged fit that
PSIS-LOO does not find clearly worse than the best converged one.

A break the data do not need is not harmless: its location and sharpness are then free
while its slope change sits near zero, and chains wander that funnel (R-hat fails, and the
extrapolation widens for nothing). The best PSIS-LOO alone tends to take the extra break,
since a few points always fit a little better with it; the parsimonious rule
(:func:`bayes_unsl.evaluation.model_choice.parsimonious_choice`) asks for a clear gain.
Only the fitted points are used, never held-out ones.
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
    "DEFAULT_MAX_BREAKS",
    "break_counts",
    "choice_table",
    "choose",
    "choose_breaks",
]

AUTO = "auto"
ATTR = "break_choice"
DEFAULT_MAX_BREAKS = 2
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


def _chosen_name(named: Mapping[str, Fit], comparison: pd.DataFrame | None = None) -> str:
    """The rule on fits keyed by name; ``comparison``: :func:`loo_compare` of all of them,
    reused when every fit competes."""
    usable = {n: f for n, f in named.items() if f.converged} or dict(named)
    if comparison is None or len(usable) < len(named):
        comparison = loo_compare(usable)
    return parsimonious_choice(comparison, _sizes(usable))


def choose_breaks(fits: Mapping[int, Fit]) -> int:
    """The number of breaks ``breaks="auto"`` keeps among fits of one curve keyed by it.

    Only fits that passed their convergence checks compete when any did: the draws of a
    fit that failed them do not represent its posterior, so its PSIS-LOO means little
    (and a posterior that NUTS cannot cross is no forecast to hand over). Among them, the
    fewest parameters not clearly worse than the best
    (:func:`~bayes_unsl.evaluation.model_choice.parsimonious_choice`).
    """
    if not fits:
        raise ValueError("no fit to choose from")
    named = _named(fits)
    return named[_chosen_name(named)].spec.breaks


def choose(fits: Mapping[int, Fit], skipped: Mapping[int, str]) -> Fit:
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
    chosen = _chosen_name(named, table)
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
        "rule": "parsimonious among the converged fits (all fits when none converged)",
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
