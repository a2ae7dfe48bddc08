"""Backtests: how well would this model have forecast the largest runs you already have?

A credible interval is honest only if the form it comes from still holds where it is read.
No diagnostic of the fit can say that; the one check a user can run on their own data is to
refit on the smaller runs, forecast the larger ones, and score the forecast against what
was measured (a leave-future-out split). :func:`backtest` does it for one curve, for a
multi-input table ordered by a scale such as compute, or for many curves at once (pooled,
where one curve's few held-out points say little), and, for the forms with breaks, under
several further-break priors from the same refit.

Scores are those of :mod:`bayes_unsl.evaluation.scores`. The held-out points of one curve
share its extrapolation error, so they are not independent: with one curve, coverage is a
count of a few correlated points; with several, the summary gives an interval for pooled
coverage that resamples whole curves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_unsl._versions import installed_versions
from bayes_unsl.data import as_columns, validate
from bayes_unsl.evaluation.scores import (
    COVERAGE_LEVELS,
    MSCE_LEVELS,
    CoverageCounts,
    coverage_counts,
    pit,
    pooled_coverage_interval,
    score_all,
)
from bayes_unsl.evaluation.splits import HOLDOUT_UNITS, check_holdout, future_split
from bayes_unsl.prediction import interval_table
from bayes_unsl.tables import markdown_table

__all__ = ["Backtest", "BacktestPart", "backtest"]

#: The name of the fit's own predictions among the variants.
AS_FITTED = "as fitted"
Key = str | Callable[[pd.DataFrame], Any] | None


@dataclass(frozen=True)
class BacktestPart:
    """One curve at one holdout: the rows fitted, the rows forecast, and the fit."""

    holdout: float
    group: Any
    train: pd.DataFrame
    heldout: pd.DataFrame
    fit: Any  # bayes_unsl.Fit
    decades_ahead: float  # log10 of the largest held-out scale over the largest fitted one


def _holdouts(holdout: float | Sequence[float], unit: str) -> tuple[float, ...]:
    """Every holdout checked before the first refit, so a bad one costs no sampling."""
    if unit not in HOLDOUT_UNITS:
        raise ValueError(f"holdout_unit must be one of {HOLDOUT_UNITS}, got {unit!r}")
    values = (holdout,) if np.isscalar(holdout) else tuple(holdout)
    if not values:
        raise ValueError("holdout must give at least one holdout")
    out = tuple(float(h) for h in values)
    for h in out:
        check_holdout(h, unit)
    if len(set(out)) != len(out):
        raise ValueError(f"holdouts repeat: {list(out)}")
    return out


def ordering_key(frame: pd.DataFrame, x_names: Sequence[str], by: Key) -> np.ndarray:
    """The scale the rows are ordered by: the single input, a column, or ``by(frame)``."""
    if by is None:
        if len(x_names) != 1:
            raise ValueError(
                f"several inputs {list(x_names)}: say what orders the runs by scale, e.g. "
                "by='n_params' or by=lambda d: 6 * d.n_params * d.n_tokens"
            )
        by = x_names[0]
    if callable(by):
        values = np.asarray(by(frame), dtype=float)
        where = "by(data)"
    else:
        if by not in frame.columns:
            raise ValueError(f"by: column {by!r} not found; columns: {list(frame.columns)}")
        values = pd.to_numeric(frame[by], errors="coerce").to_numpy(dtype=float)
        where = f"column {by!r}"
    if values.shape != (len(frame),):
        raise ValueError(f"{where} gives shape {values.shape}; expected one value per row")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{where} has {int(bad.sum())} missing, non-numeric or infinite value(s)")
    return values


def _variants(future_breaks: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict]:
    out: dict[str, dict] = {AS_FITTED: {}}
    allowed = {"rate", "slope_sd", "away_sd"}
    for name, change in (future_breaks or {}).items():
        if name in out:
            raise ValueError(f"future_breaks: {name!r} names the fit's own predictions")
        unknown = set(change) - allowed
        if unknown:
            raise ValueError(
                f"future_breaks[{name!r}]: unknown setting(s) {sorted(unknown)}; "
                f"use {sorted(allowed)}"
            )
        out[str(name)] = dict(change)
    return out


def _split(
    frame, key, holdout, unit, min_heldout, label
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``future_split`` with the curve named in its errors, and how far the held-out runs
    reach past the fitted ones (decades of the ordering key; NaN where it is not positive)."""
    try:
        train, held = future_split(frame, key, holdout, min_heldout=min_heldout, unit=unit)
    except ValueError as err:
        raise ValueError(f"{label}holdout {holdout}: {err}") from None
    top = np.sort(key)[len(train) - 1], np.max(key)
    ahead = float(np.log10(top[1] / top[0])) if min(top) > 0 else float("nan")
    return train, held, ahead


def _fit_parts(
    frame: pd.DataFrame,
    x,
    y: str,
    key: np.ndarray,
    holdout: float,
    unit: str,
    group: str | None,
    min_heldout: int,
    fit_options: dict,
) -> tuple[list[BacktestPart], dict[Any, str]]:
    """Refit at one holdout: one fit, or one batched ``fit_many`` over the groups."""
    from bayes_unsl.batch import fit_many
    from bayes_unsl.fit import fit

    if group is None:
        train, held, ahead = _split(frame, key, holdout, unit, min_heldout, "")
        fitted = fit(train, x, y, **fit_options)
        return [BacktestPart(holdout, None, train, held, fitted, ahead)], {}
    splits, errors = {}, {}
    for name, rows in frame.groupby(group, sort=False).groups.items():
        position = frame.index.get_indexer(rows)
        try:
            splits[name] = _split(
                frame.iloc[position],
                key[position],
                holdout,
                unit,
                min_heldout,
                f"group {name!r}: ",
            )
        except ValueError as err:
            errors[name] = str(err)
    if not splits:
        raise ValueError("no group could be split: " + "; ".join(errors.values()))
    train_all = pd.concat([train for train, _, _ in splits.values()], ignore_index=True)
    fits = fit_many(train_all, group, x, y, **fit_options)
    errors.update(fits.errors)
    parts = [
        BacktestPart(holdout, name, train, held, fits[name], ahead)
        for name, (train, held, ahead) in splits.items()
        if name not in fits.errors
    ]
    return parts, errors


class Backtest:
    """Forecasts of held-out larger runs from refits on the smaller ones, and their scores.

    ``parts``: every (holdout, group) refit; ``errors``: curves left out, by (holdout,
    group), and why.
    :meth:`scores` has one row per refit and variant, :meth:`summary` pools them per holdout
    and variant, :meth:`predictions` has one row per held-out point, :meth:`plot` draws the
    reliability diagram.
    """

    def __init__(
        self,
        parts: list[BacktestPart],
        x_names: tuple[str, ...],
        y: str,
        group: str | None,
        variants: dict[str, dict],
        levels: tuple[float, ...],
        errors: dict[Any, str],
        key_name: str,
        data: pd.DataFrame,
        options: dict[str, Any],
        holdout_unit: str = "share",
    ):
        self.parts, self.x_names, self.y_name, self.group = parts, x_names, y, group
        self.variants, self.levels, self.errors = variants, levels, errors
        self.key_name, self.data, self.options = key_name, data, options
        self.holdout_unit = holdout_unit
        self.count_levels = tuple(sorted(set(levels) | set(MSCE_LEVELS)))
        self._rows, self._points, self._counts = [], [], {}
        for part in parts:
            for name, change in variants.items():
                self._score(part, name, change)

    @property
    def fits(self) -> dict[Any, Any]:
        """The refits, by holdout (one curve) or by (holdout, group)."""
        if self.group is None:
            return {p.holdout: p.fit for p in self.parts}
        return {(p.holdout, p.group): p.fit for p in self.parts}

    @property
    def unconverged(self) -> list[tuple[float, Any]]:
        """(holdout, group) of every refit that failed its convergence checks."""
        return [(p.holdout, p.group) for p in self.parts if not p.fit.converged]

    def _score(self, part: BacktestPart, variant: str, change: dict) -> None:
        model = part.fit.with_future_break(**change) if change else part.fit
        held_x = part.heldout[list(self.x_names)]
        y_true = part.heldout[self.y_name].to_numpy(dtype=float)
        draws = model.samples(held_x)
        scale = float(part.train[self.y_name].max())
        diag = part.fit.diagnostics()
        ident = {"holdout": part.holdout, "variant": variant}
        if self.group is not None:
            ident[self.group] = part.group
        self._rows.append(
            {
                **ident,
                "n_train": len(part.train),
                "n_test": len(part.heldout),
                "decades_ahead": part.decades_ahead,
                **{
                    k: v
                    for k, v in score_all(draws, y_true, self.levels, scale=scale).items()
                    if k != "n_points"
                },
                "converged": bool(diag["converged"]),
                "r_hat_max": float(diag["r_hat_max"]),
            }
        )
        self._counts[(part.holdout, variant, part.group)] = coverage_counts(
            draws, y_true, self.count_levels
        )
        table = interval_table(draws, self.levels)
        table.insert(0, "observed", y_true)
        table["pit"] = pit(draws, y_true)
        table["log_error"] = np.log(table["median"]) - np.log(y_true)
        head = pd.concat(
            [pd.DataFrame([ident] * len(held_x)), held_x.reset_index(drop=True)], axis=1
        )
        self._points.append(pd.concat([head, table], axis=1))

    def scores(self) -> pd.DataFrame:
        """One row per refit and variant: sizes, how far the held-out runs reach past the
        fitted ones (``decades_ahead``, of the ordering scale: compare it with the distance
        you mean to forecast), the scores of its held-out points, and convergence. ``lpd``
        is per point, of y divided by the largest fitted y (so curves of unlike magnitude
        compare); ``msce`` covers these points only."""
        return pd.DataFrame(self._rows)

    def predictions(self) -> pd.DataFrame:
        """One row per held-out point and variant: inputs, the observed value, the forecast's
        median, mean and intervals, its PIT and log error (log median - log observed)."""
        return pd.concat(self._points, ignore_index=True)

    def coverage_counts(self, holdout: float, variant: str) -> dict[Any, CoverageCounts]:
        """Coverage counts of every curve (by group; None for one curve) at one holdout and
        variant, at :attr:`count_levels` (the levels asked for and the MSCE levels); counts
        add up, so curves pool by summing them."""
        return {g: c for (h, v, g), c in self._counts.items() if h == holdout and v == variant}

    def summary(self, confidence: float = 0.9) -> pd.DataFrame:
        """Held-out points pooled per holdout and variant: the median ``decades_ahead`` over
        curves, coverage at each level, MSCE over the MSCE levels, RMSLE, mean log density
        per point, the share of refits that converged; with several curves,
        ``coverage_90_lo`` / ``_hi``: a ``confidence`` interval for pooled 90% coverage
        that resamples whole curves."""
        scores, points = self.scores(), self.predictions()
        rows = []
        for (holdout, variant), block in scores.groupby(["holdout", "variant"], sort=False):
            counts = CoverageCounts.pool(list(self.coverage_counts(holdout, variant).values()))
            cov = dict(zip(counts.levels, counts.coverage, strict=True))
            mine = points[(points["holdout"] == holdout) & (points["variant"] == variant)]
            row = {
                "holdout": holdout,
                "variant": variant,
                "curves": len(block),
                "n_test": counts.n_points,
                "decades_ahead": float(block["decades_ahead"].median()),
                "rmsle": float(np.sqrt(np.mean(mine["log_error"] ** 2))),
                "lpd": float(np.average(block["lpd"], weights=block["n_test"])),
                **{f"coverage_{100 * lv:.10g}": float(cov[lv]) for lv in self.levels},
                "msce": float(np.mean([(cov[lv] - lv) ** 2 for lv in MSCE_LEVELS])),
                "converged": float(block["converged"].mean()),
            }
            if len(block) > 1 and 0.9 in cov:
                at = self.count_levels.index(0.9)
                lo, hi = pooled_coverage_interval(
                    list(self.coverage_counts(holdout, variant).values()), confidence=confidence
                )[at]
                row.update(coverage_90_lo=float(lo), coverage_90_hi=float(hi))
            rows.append(row)
        return pd.DataFrame(rows)

    def plot(self, ax=None):
        """Reliability diagram: pooled coverage of central intervals against their level,
        one line per holdout and variant; the diagonal is calibration."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4.8, 4.4))
        levels = np.array(self.count_levels)
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
        for holdout in dict.fromkeys(p.holdout for p in self.parts):
            for variant in self.variants:
                counts = CoverageCounts.pool(list(self.coverage_counts(holdout, variant).values()))
                label = f"holdout {holdout:g}" + (
                    " decades" if self.holdout_unit == "decades" else ""
                )
                label += "" if variant == AS_FITTED else f", {variant}"
                ax.plot(levels, counts.coverage, marker="o", ms=3, label=label)
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.02),
            xlabel="nominal level of the central interval",
            ylabel="share of held-out points inside",
            title=f"Backtest of {self.y_name}: larger runs by {self.key_name}",
        )
        ax.legend(fontsize=7, loc="best")
        return ax

    def settings(self) -> dict[str, Any]:
        """What reproduces this backtest: columns, split rule, variants, fit options and
        versions (with :attr:`data`, the rows it was given)."""
        return {
            "x": list(self.x_names),
            "y": self.y_name,
            "group": self.group,
            "by": self.key_name,
            "holdouts": sorted({p.holdout for p in self.parts}),
            "holdout_unit": self.holdout_unit,
            "variants": self.variants,
            "levels": list(self.levels),
            "fit_options": self.options,
            "errors": {str(key): message for key, message in self.errors.items()},
            "versions": installed_versions(),
        }

    def to_markdown(self, command: str | None = None) -> str:
        """The summary, the scores per refit, what was left out and how to reproduce it."""
        scores, bad = self.scores(), self.unconverged
        lines = [f"# Backtest of `{self.y_name}` on {', '.join(f'`{n}`' for n in self.x_names)}"]
        unit = "a share of each curve's rows" if self.holdout_unit == "share" else "decades"
        lines += [
            "",
            f"Runs ordered by `{self.key_name}`; the largest held out and forecast (holdout "
            f"in {unit}).",
        ]
        if len(bad):
            lines += [
                "",
                f"**{len(bad)} refit(s) NOT CONVERGED**: their scores describe a sampler "
                "failure as much as the model.",
            ]
        lines += ["", "## Pooled over curves", "", markdown_table(self.summary())]
        lines += ["", "## Per refit", "", markdown_table(scores)]
        if self.errors:
            lines += ["", "## Left out", ""]
            lines += [f"- {key}: {message}" for key, message in self.errors.items()]
        lines += ["", "## Reproduce", ""]
        if command:
            lines += [f"- command: `{command}`"]
        lines += [f"- settings: `{json.dumps(self.settings(), default=str)}`", ""]
        return "\n".join(lines)

    def save(self, folder: str | os.PathLike, command: str | None = None) -> Path:
        """Write ``backtest.md``, ``summary.csv``, ``scores.csv``, ``predictions.csv``,
        ``reliability.png``, the input rows (``data.csv``) and ``settings.json``, each
        atomically, to ``folder``."""
        import matplotlib.pyplot as plt

        from bayes_unsl.io import write_atomic

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "summary.csv": self.summary(),
            "scores.csv": self.scores(),
            "predictions.csv": self.predictions(),
            "data.csv": self.data,
        }
        for name, table in tables.items():
            write_atomic(out / name, lambda p, t=table: t.to_csv(p, index=False))
        settings = json.dumps(self.settings(), indent=2, default=str)
        write_atomic(out / "settings.json", lambda p: p.write_text(settings))
        write_atomic(out / "backtest.md", lambda p: p.write_text(self.to_markdown(command)))
        ax = self.plot()
        write_atomic(out / "reliability.png", lambda p: ax.figure.savefig(p, dpi=130, format="png"))
        plt.close(ax.figure)
        return out

    def __repr__(self) -> str:
        curves = len({p.group for p in self.parts})
        return (
            f"<Backtest of {self.y_name} on {', '.join(self.x_names)}: "
            f"{curves} curve(s), holdouts {sorted({p.holdout for p in self.parts})}, "
            f"variants {list(self.variants)}>"
        )


def backtest(
    data: Any,
    x: str | Sequence[str],
    y: str,
    *,
    holdout: float | Sequence[float] = 0.3,
    holdout_unit: str = "share",
    by: Key = None,
    group: str | None = None,
    future_breaks: Mapping[str, Mapping[str, float]] | None = None,
    levels: Sequence[float] = COVERAGE_LEVELS,
    min_heldout: int = 1,
    **fit_options: Any,
) -> Backtest:
    """Refit on the smaller runs, forecast the larger ones, and score the forecasts.

    ``holdout``: the share of rows (per curve) held out, largest scale first; several shares
    give several refits (origins). ``holdout_unit="decades"``: holdouts are distances
    instead, the runs within that many decades of the largest held out, so that the refit
    forecasts as far as the forecast you mean to make. ``by``: what orders the rows by
    scale: the input (default for one input), a column name, or a function of the table
    (e.g. compute, ``lambda d: 6 * d.n_params * d.n_tokens``); runs tied at the threshold
    are held out together. ``group``: a column of curve names; every curve is split by the same rule
    and refitted in one :func:`bayes_unsl.fit_many` call (curves too short to split are
    listed in ``errors``). ``future_breaks``: named further-break priors
    (``{"name": {"rate": 0.5, "slope_sd": 2}}``, the arguments of
    :meth:`bayes_unsl.Fit.with_future_break`) scored from the same refits beside the fit's
    own. ``fit_options``: everything :func:`bayes_unsl.fit` takes (form, breaks, priors,
    sampler settings).

    The data are checked as a whole before any refit: bad values anywhere are refused, not
    dropped.
    """
    frame = as_columns(data).reset_index(drop=True)
    x_names = (x,) if isinstance(x, str) else tuple(x)
    if group is not None and group not in frame.columns:
        raise ValueError(f"group column {group!r} not found; columns: {list(frame.columns)}")
    validate(frame, x_names, y, min_points=2)
    holdouts = _holdouts(holdout, holdout_unit)
    variants = _variants(future_breaks)
    form = fit_options.get("form", "bnsl")
    if len(variants) > 1 and form not in ("bnsl", "unsl"):
        raise ValueError(
            f"future_breaks applies to the forms with breaks (bnsl, unsl), not {form!r}"
        )
    levels = tuple(sorted(float(v) for v in levels))
    key = ordering_key(frame, x_names, by)
    key_name = x_names[0] if by is None else (by if isinstance(by, str) else "by(data)")
    if not isinstance(min_heldout, int) or min_heldout < 1:
        raise ValueError(f"min_heldout must be a positive integer, got {min_heldout!r}")
    parts, errors = [], {}
    for h in holdouts:
        new_parts, new_errors = _fit_parts(
            frame, x, y, key, h, holdout_unit, group, min_heldout, fit_options
        )
        parts += new_parts
        errors.update({(h, name): message for name, message in new_errors.items()})
    return Backtest(
        parts,
        x_names,
        y,
        group,
        variants,
        levels,
        errors,
        key_name,
        frame,
        dict(fit_options),
        holdout_unit,
    )
