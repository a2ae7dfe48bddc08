"""A self-contained HTML report of one fit or a comparison of fits, to attach to a decision.

One file holds everything a reader needs to judge a forecast without the code: the data,
the model and its priors, whether the sampler converged (with a banner when it did not),
fan charts, predictive intervals and threshold probabilities at the scales that matter,
the PSIS-LOO comparison of competing fits and what it takes to reproduce them. Figures are
embedded as base64 PNG and nothing is fetched from the network, so the file reads the same
wherever it is sent.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_unsl import __version__
from bayes_unsl._versions import installed_versions
from bayes_unsl.backtest import Backtest
from bayes_unsl.evaluation.model_choice import check_same_data, loo_compare, pointwise_loo
from bayes_unsl.fit import DEFAULT_LEVELS, Fit
from bayes_unsl.inference.diagnostics import convergence_problems
from bayes_unsl.io import write_atomic

__all__ = ["report"]

PARETO_K_LIMIT = 0.7  # above it the PSIS-LOO estimate of that point is unreliable
LONG_DATA = 30  # longer data tables show their first and last rows only
EDGE_ROWS = 8
ADVICE = (
    "Do not base a decision on its intervals or probabilities yet. Try more warm-up and draws "
    "(warmup=, draws=; --warmup, --draws), a higher target_accept (0.99), fewer breaks, or "
    "likelihood='student_t' if the data have outliers, then make the report again."
)
STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.banner{background:#b00020;color:#fff;padding:1rem 1.2rem;font-size:1.1rem;border-radius:4px}
.banner strong{font-size:1.3rem}.note{color:#555;font-style:italic}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
img{max-width:100%}.meta{color:#555}
"""


def report(
    fits: Fit | Mapping[Any, Fit],
    path: str | os.PathLike,
    *,
    scales: Any = None,
    thresholds: Iterable[float] | float = (),
    title: str | None = None,
    command: str | None = None,
    backtest: Backtest | str | os.PathLike | None = None,
) -> Path:
    """Write one self-contained HTML report of ``fits`` to ``path`` (atomically) and return it.

    ``fits``: a :class:`Fit`, or a mapping name -> Fit to compare fits of the same
    observations (their inputs may differ: Chinchilla's N and D against the data-constrained
    form's N, D and unique tokens). ``scales``: where to give intervals and threshold
    probabilities: input values of a single-input fit (default 10x and 100x its largest
    observed input), or for multi-input fits rows of inputs (a 2-D array, or a DataFrame or
    dict by column, from which each fit takes its own inputs; without them those sections
    say so).
    ``thresholds``: metric values for P(metric below threshold) and the crossing scale.
    ``command``: the command that made the fits, shown so that a reader can rerun it.
    ``backtest``: a :func:`bayes_unsl.backtest` of the same metric, or the folder
    :meth:`~bayes_unsl.Backtest.save` wrote, whose forecasts of runs already made are shown
    beside the forecast (its summary and reliability diagram).
    The whole document is built before anything is written, so a failure leaves an
    existing file at ``path`` as it was.
    """
    named = _named_fits(fits)
    thresholds = _thresholds(thresholds)
    grids = {name: _scales(f, scales) for name, f in named.items()}
    view = None if backtest is None else _backtest_view(named, backtest)
    document = _document(named, grids, thresholds, title, command, view)
    return write_atomic(path, lambda tmp: tmp.write_text(document, encoding="utf-8"))


# -- inputs ------------------------------------------------------------------------------
def _named_fits(fits: Fit | Mapping[Any, Fit]) -> dict[str, Fit]:
    """Name -> Fit; several fits must be of the same data, or comparing them means nothing."""
    if isinstance(fits, Fit):
        return {_model_label(fits): fits}
    if not isinstance(fits, Mapping):
        raise TypeError(f"report takes a Fit or a mapping name -> Fit, got {type(fits).__name__}")
    named = {str(k): v for k, v in fits.items()}
    if not named:
        raise ValueError("no fits to report")
    if len(named) != len(fits):
        raise ValueError("fit names must be distinct as text")
    wrong = [k for k, v in named.items() if not isinstance(v, Fit)]
    if wrong:
        raise TypeError(f"not a Fit: {wrong}")
    if len(named) > 1:
        first = next(iter(named.values()))
        for name, other in named.items():
            if other.y_name != first.y_name:
                raise ValueError(
                    f"fit {name!r} models {other.y_name}, the others {first.y_name}: "
                    "fitted to different data, so they cannot be compared in one report"
                )
        try:
            check_same_data(named)
        except ValueError as err:
            raise ValueError(f"{err}; a report compares fits of the same data only") from None
    return named


@dataclass(frozen=True)
class BacktestView:
    """What the report shows of a backtest, from the object or from its saved folder."""

    y_name: str
    key_name: str
    summary: pd.DataFrame
    figure: str  # an <img> with the reliability diagram inside
    unconverged: list[str]
    n_errors: int


def _backtest_view(fits: dict[str, Fit], backtest: Any) -> BacktestView:
    """The backtest's summary, scores, settings and figure, from the object or its folder."""
    if isinstance(backtest, Backtest):
        import matplotlib.pyplot as plt

        ax = backtest.plot()
        figure = _png(ax.figure)
        plt.close(ax.figure)
        tables = backtest.settings(), backtest.summary(), backtest.scores()
    elif isinstance(backtest, str | os.PathLike):
        folder = Path(backtest)
        names = ("settings.json", "summary.csv", "scores.csv", "reliability.png")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ValueError(f"{folder} is not a saved backtest: it lacks {', '.join(missing)}")
        figure = _img((folder / "reliability.png").read_bytes())
        tables = (
            json.loads((folder / "settings.json").read_text()),
            pd.read_csv(folder / "summary.csv"),
            pd.read_csv(folder / "scores.csv"),
        )
    else:
        raise TypeError(
            "backtest must be a bayes_unsl.Backtest or the folder it was saved to, got "
            f"{type(backtest).__name__}"
        )
    settings, summary, scores = tables
    first = next(iter(fits.values()))
    if settings["y"] != first.y_name:
        raise ValueError(
            f"the backtest scores {settings['y']!r} but the fits model {first.y_name!r}"
        )
    group = settings["group"]
    refits = scores.drop_duplicates(["holdout", *([group] if group else [])])
    unconverged = [
        f"holdout {row['holdout']:g}" + (f" {row[group]}" if group else "")
        for _, row in refits.iterrows()
        if not bool(row["converged"])
    ]
    errors = len(settings.get("errors", {}))
    return BacktestView(settings["y"], settings["by"], summary, figure, unconverged, errors)


def _model_label(fit: Fit) -> str:
    breaks = f", {fit.spec.breaks} break{'s' if fit.spec.breaks != 1 else ''}"
    has_breaks = fit.spec.form in ("bnsl", "unsl")
    return f"{fit.spec.form.upper()}{breaks if has_breaks else ''}"


def _thresholds(values: Iterable[float] | float) -> list[float]:
    out = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=float))]
    bad = [v for v in out if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"thresholds must be positive finite numbers, got {bad}")
    return out


def _scales(fit: Fit, scales: Any) -> pd.DataFrame | None:
    """The requested scales as rows of the fit's inputs; None: none given for a multi-input
    fit (there is no single "10x" of several inputs)."""
    if scales is None:
        if len(fit.x_names) != 1:
            return None
        top = float(_x_observed(fit)[:, 0].max())
        return pd.DataFrame({fit.x_names[0]: [10 * top, 100 * top]})
    if isinstance(scales, pd.DataFrame | dict):
        frame = pd.DataFrame(scales)
        missing = [n for n in fit.x_names if n not in frame.columns]
        if missing:
            raise ValueError(f"scales lack input column(s) {missing}")
        frame = frame[list(fit.x_names)]
    else:
        arr = np.asarray(scales, dtype=float)
        if arr.ndim <= 1 and len(fit.x_names) == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != len(fit.x_names):
            raise ValueError(
                f"scales must be rows of {len(fit.x_names)} input(s) {list(fit.x_names)}, "
                f"got shape {arr.shape}"
            )
        frame = pd.DataFrame(arr, columns=list(fit.x_names))
    values = frame.to_numpy(dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError("scales must be a non-empty set of positive finite inputs")
    return frame.reset_index(drop=True)


def _x_observed(fit: Fit) -> np.ndarray:
    return np.asarray(fit.idata.constant_data["x"].values, dtype=float)


# -- HTML helpers ------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    """Numbers as a reader wants them: a few significant digits, NaN as n/a."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "n/a" if np.isnan(value) else f"{float(value):.{digits}g}"
    return str(value)


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    """An HTML table, every header and cell escaped."""
    if index:
        frame = frame.reset_index()
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(_num(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(heading)}</h2>{body}</section>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _png(fig: Any) -> str:
    """A matplotlib figure as an <img> with the PNG inside the page."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return _img(buf.getvalue())


def _img(png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


# -- sections ----------------------------------------------------------------------------
Scales = dict[str, pd.DataFrame | None]
"""Per fit, the rows of its inputs at which the report gives intervals (None: none)."""


def _document(
    fits: dict[str, Fit],
    scales: Scales,
    thresholds: list[float],
    title: str | None,
    command: str | None,
    backtest: BacktestView | None = None,
) -> str:
    first = next(iter(fits.values()))
    inputs = ", ".join(_input_names(fits))
    title = title or f"Scaling-law forecast: {first.y_name} vs {inputs}"
    parts = [
        _header(title),
        _banner(fits),
        _data_section(fits),
        _model_section(fits),
        _diagnostics_section(fits),
        _charts_section(fits, scales, thresholds),
        _intervals_section(fits, scales),
        _thresholds_section(fits, scales, thresholds),
        _comparison_section(fits) if len(fits) > 1 else "",
        _backtest_section(backtest) if backtest is not None else "",
        _reproduce_section(fits, command),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(p for p in parts if p)
        + "</body></html>\n"
    )


def _header(title: str) -> str:
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<header><h1>{_e(title)}</h1><p class="meta">Made {_e(made)} with bayes_unsl '
        f"{_e(__version__)}.</p></header>"
    )


def _problems(fit: Fit) -> list[str]:
    diag = fit.diagnostics()
    problems = convergence_problems(diag)
    if not problems and not diag.get("converged", False):
        problems = ["marked as not converged"]
    return problems


def _banner(fits: dict[str, Fit]) -> str:
    failed = {name: _problems(f) for name, f in fits.items()}
    failed = {name: p for name, p in failed.items() if p}
    if not failed:
        return ""
    items = "".join(f"<li>{_e(name)}: {_e('; '.join(p))}</li>" for name, p in failed.items())
    return (
        '<div class="banner" id="banner" role="alert"><strong>NOT CONVERGED</strong>'
        f"<ul>{items}</ul><p>{_e(ADVICE)}</p></div>"
    )


def _input_names(fits: dict[str, Fit]) -> list[str]:
    """Every input of the fits, in order of first appearance."""
    return list(dict.fromkeys(n for f in fits.values() for n in f.x_names))


def _data_section(fits: dict[str, Fit]) -> str:
    """The observations, with the inputs of every fit (the same points; check_same_data)."""
    frame = pd.DataFrame()
    for f in fits.values():
        for j, column in enumerate(f.x_names):
            if column not in frame:
                frame[column] = _x_observed(f)[:, j]
    fit = next(iter(fits.values()))
    frame[fit.y_name] = np.asarray(fit.idata.constant_data["y"].values, dtype=float)
    frame.insert(0, "point", np.arange(1, len(frame) + 1))
    n = len(frame)
    intro = f"<p>{n} points: {_e(fit.y_name)} against {_e(', '.join(frame.columns[1:-1]))}.</p>"
    if n <= LONG_DATA:
        return _section("data", "Data", intro + _table(frame))
    head, tail = frame.head(EDGE_ROWS), frame.tail(EDGE_ROWS)
    shown = (
        _table(head)
        + _note(f"... {n - 2 * EDGE_ROWS} rows not shown; {n} rows in all ...")
        + _table(tail)
    )
    return _section("data", "Data", intro + shown)


def _model_rows(fit: Fit) -> dict[str, Any]:
    attrs = fit.idata.attrs
    rows: dict[str, Any] = {
        "form": fit.spec.form,
        "breaks": fit.spec.breaks,
        "likelihood": fit.spec.likelihood,
        "upper bound of the metric": "none"
        if fit.spec.upper_bound is None
        else fit.spec.upper_bound,
        "seed": fit.seed,
        "precision": attrs.get("precision", ""),
        "backend": attrs.get("backend", ""),
    }
    rows |= {f"sampler: {k}": v for k, v in asdict(fit.settings).items()}
    rows |= {f"prior: {k}": _plain(v) for k, v in fit.spec.priors.to_dict().items()}
    return rows


def _plain(value: Any) -> Any:
    return ", ".join(map(_num, value)) if isinstance(value, list | tuple) else value


def _model_section(fits: dict[str, Fit]) -> str:
    columns = {name: _model_rows(f) for name, f in fits.items()}
    frame = pd.DataFrame(columns).fillna("")
    frame.index.name = "setting"
    text = (
        "<p>Priors are in the standardised coordinates of the fit (log input scaled so that "
        "the data span [-1, 1]); see bayes_unsl.priors for each field.</p>"
    )
    return _section("model", "Model", text + _table(frame, index=True))


def _diagnostics_section(fits: dict[str, Fit]) -> str:
    rows = []
    for name, f in fits.items():
        d = f.diagnostics()
        rows.append(
            {
                "fit": name,
                "converged": not _problems(f),
                "max R-hat": d.get("r_hat_max", float("nan")),
                "min bulk ESS": d.get("ess_bulk_min", float("nan")),
                "min tail ESS": d.get("ess_tail_min", float("nan")),
                "divergences": d.get("divergences", 0),
                "mean tree depth": d.get("tree_depth_mean", float("nan")),
                "chains x draws": f"{d.get('chains', '?')} x {d.get('draws', '?')}",
                "seconds": d.get("seconds", float("nan")),
                "remedies": len(d.get("remedies", [])),
            }
        )
    text = (
        "<p>Checks: max R-hat at most 1.01, min bulk ESS at least 400, no divergent "
        "transitions. Remedies: automatic refits with smaller steps, longer warm-up and "
        "more draws.</p>"
    )
    return _section("diagnostics", "Diagnostics", text + _table(pd.DataFrame(rows)))


def _fan_chart(name: str, fit: Fit, scales: pd.DataFrame | None, thresholds: list[float]) -> str:
    from matplotlib.figure import Figure

    top = float(_x_observed(fit)[:, 0].max())
    far = float(scales.to_numpy().max()) if scales is not None else top
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    fit.plot(ax=ax, extend=max(10.0, 1.1 * far / top))
    for i, t in enumerate(thresholds):
        ax.axhline(t, color="C1", ls="--", lw=1, label="threshold" if i == 0 else None)
    if scales is not None:
        for i, s in enumerate(scales.iloc[:, 0]):
            ax.axvline(s, color="C2", ls="-.", lw=1, label="report scales" if i == 0 else None)
    ax.legend(title=name, fontsize=8, title_fontsize=9, frameon=False)
    return f"<figure>{_png(fig)}<figcaption>{_e(name)}</figcaption></figure>"


def _charts_section(fits: dict[str, Fit], scales: Scales, thresholds: list[float]) -> str:
    drawn = {n: f for n, f in fits.items() if len(f.x_names) == 1}
    if not drawn:
        return _section("charts", "Fan charts", _note("Drawn for single-input fits only."))
    text = (
        "<p>Posterior median and 50/80/95% posterior predictive bands (noise included) on "
        "log-log axes; the dotted line marks the largest observed input.</p>"
    )
    body = "".join(_fan_chart(n, f, scales[n], thresholds) for n, f in drawn.items())
    if len(drawn) < len(fits):
        body += _note("Multi-input fits have no fan chart: see their interval tables.")
    return _section("charts", "Fan charts", text + body)


def _no_scales_note() -> str:
    return _note(
        "No scales given for this multi-input fit: pass scales as rows of inputs "
        "(e.g. scales=[[N1, D1], [N2, D2]], or --scales N1,D1 N2,D2)."
    )


def _intervals_section(fits: dict[str, Fit], scales: Scales) -> str:
    heading = "Predictive intervals"
    levels = ", ".join(f"{100 * v:g}%" for v in DEFAULT_LEVELS)
    body = [f"<p>Posterior predictive median, mean and central {levels} intervals.</p>"]
    for name, f in fits.items():
        grid = scales[name]
        shown = _no_scales_note() if grid is None else _table(f.predict(grid, DEFAULT_LEVELS))
        body += [f"<h3>{_e(name)}</h3>", shown]
    return _section("intervals", heading, "".join(body))


def _crossing_row(fit: Fit, threshold: float, upper: float) -> dict[str, Any]:
    """Quantiles of the crossing scale, draws that never cross counted as beyond ``upper``."""
    draws = fit.crossing_scale(threshold, upper=upper)
    beyond = np.where(np.isnan(draws), np.inf, draws)
    q = np.quantile(beyond, [0.5, 0.05, 0.95], method="inverted_cdf")
    shown = [_num(v) if np.isfinite(v) else f"> {_num(upper)}" for v in q]
    return {
        "threshold": threshold,
        "median": shown[0],
        "5%": shown[1],
        "95%": shown[2],
        f"P(no crossing by {_num(upper)})": float(np.isnan(draws).mean()),
    }


def _threshold_tables(
    name: str, fit: Fit, scales: pd.DataFrame, thresholds: list[float]
) -> list[str]:
    labels = [", ".join(_num(v) for v in row) for row in scales.to_numpy()]
    probs = pd.DataFrame(
        [[t, *fit.prob_below(t, scales)] for t in thresholds],
        columns=["threshold", *[f"P(below) at {lab}" for lab in labels]],
    )
    out = [f"<h3>{_e(name)}</h3>", _table(probs)]
    if len(fit.x_names) != 1:
        return [*out, _note("The crossing scale is computed for single-input fits only.")]
    upper = float(scales.iloc[:, 0].max())
    if upper <= float(_x_observed(fit).min()):
        return [*out, _note("The largest scale is below the data: no crossing scale.")]
    crossing = pd.DataFrame([_crossing_row(fit, t, upper) for t in thresholds])
    return [*out, "<p>Crossing scale:</p>", _table(crossing)]


def _thresholds_section(fits: dict[str, Fit], scales: Scales, thresholds: list[float]) -> str:
    heading = "Threshold probabilities"
    if not thresholds:
        return _section("thresholds", heading, _note("No thresholds requested."))
    text = (
        "<p>P(below): the posterior predictive probability (noise included) that the metric "
        "is below the threshold at each scale. Crossing scale: the smallest input at which "
        "the posterior mean curve goes below the threshold, searched from the smallest "
        "observed input up to the largest report scale; its median and 90% interval count "
        "draws that never cross as beyond that scale.</p>"
    )
    body = [text]
    for name, f in fits.items():
        if scales[name] is None:
            body += [f"<h3>{_e(name)}</h3>", _no_scales_note()]
        else:
            body += _threshold_tables(name, f, scales[name], thresholds)
    return _section("thresholds", heading, "".join(body))


def _pareto_k_high(fit: Fit) -> int:
    """Points whose PSIS-LOO estimate is unreliable (Pareto k above 0.7)."""
    return int(np.sum(np.asarray(pointwise_loo(fit).pareto_k) > PARETO_K_LIMIT))


def _comparison_section(fits: dict[str, Fit]) -> str:
    table = loo_compare(fits)
    high = {name: _pareto_k_high(f) for name, f in fits.items()}
    frame = pd.DataFrame(
        {
            "model": table.index,
            "rank": table["rank"],
            "elpd_loo": table["elpd_loo"],
            "se": table["se"],
            "elpd_diff": table["elpd_diff"],
            "dse": table["dse"],
            "p_loo": table["p_loo"],
            "stacking weight": table["weight"],
            f"Pareto k > {PARETO_K_LIMIT}": [high[n] for n in table.index],
            "max Pareto k": table["pareto_k_max"],
        }
    )
    text = (
        "<p>PSIS-LOO expected log predictive density of the fitted points (log y), best "
        "first; stacking weights mix the fits' predictive distributions.</p>"
    )
    limit = PARETO_K_LIMIT
    warn = [
        f"{n}: {k} point(s) with Pareto k > {limit}: LOO unreliable there."
        for n, k in high.items()
        if k
    ]
    body = text + _table(frame) + "".join(_note(w) for w in warn)
    return _section("comparison", "Model comparison (PSIS-LOO)", body)


def _backtest_section(backtest: BacktestView) -> str:
    body = [
        f"<p>Refits on the smaller runs (ordered by {_e(backtest.key_name)}), forecasting the "
        "larger runs already made, pooled over curves per holdout and variant. "
        "<code>decades_ahead</code>: how far the held-out runs reach past the refit's data; "
        "compare it with the distance of the forecast above.</p>",
        _table(backtest.summary),
    ]
    if backtest.unconverged:
        shown = ", ".join(backtest.unconverged)
        body.append(f"<p><strong>Refits not converged:</strong> {_e(shown)}.</p>")
    if backtest.n_errors:
        body.append(_note(f"Left out: {backtest.n_errors} curve(s) too short to split or fit."))
    body.append(backtest.figure)
    body.append(
        _note(
            "A backtest reads the past: a forecast that failed on runs already made is a "
            "warning that the curve changed course within them; one that held is necessary, "
            "not sufficient, since it cannot see a change the data have not shown."
        )
    )
    return _section("backtest", "Backtest on runs already made", "".join(body))


def _versions(fits: dict[str, Fit]) -> pd.DataFrame:
    columns = {"this report": installed_versions()}
    for name, f in fits.items():
        a = f.idata.attrs
        columns[f"fit {name}"] = {
            "bayes_unsl": a.get("bayes_unsl_version", ""),
            "jax": a.get("jax_version", ""),
            "numpyro": a.get("numpyro_version", ""),
            "arviz": a.get("arviz_version", ""),
            "backend": a.get("backend", ""),
            "precision": a.get("precision", ""),
        }
    frame = pd.DataFrame(columns).fillna("")
    frame.index.name = "component"
    return frame


def _python_call(fit: Fit) -> str:
    """The :func:`bayes_unsl.fit` call that repeats the last sampling run of ``fit``."""
    x: str | list[str] = fit.x_names[0] if len(fit.x_names) == 1 else list(fit.x_names)
    args = {
        "x": x,
        "y": fit.y_name,
        "form": fit.spec.form,
        "breaks": fit.spec.breaks,
        "likelihood": fit.spec.likelihood,
        **({} if fit.spec.upper_bound is None else {"upper_bound": fit.spec.upper_bound}),
        "seed": fit.seed,
        **asdict(fit.settings),
        "priors": fit.spec.priors.to_dict(),
        "precision": fit.idata.attrs.get("precision"),
        "retries": 0,
    }
    return "bu.fit(data, " + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"


def _reproduce_section(fits: dict[str, Fit], command: str | None) -> str:
    shown = command if command else "not recorded (pass command= to report)"
    body = [f"<p>Command:</p><pre>{_e(shown)}</pre>"]
    for name, f in fits.items():
        body.append(
            f"<p>{_e(name)}: seed {f.seed}; sampler settings "
            f"<code>{_e(json.dumps(asdict(f.settings), sort_keys=True))}</code>. "
            "The same sampling run in Python (the settings of its last attempt, so no "
            f"further retries):</p><pre>{_e(_python_call(f))}</pre>"
        )
    body.append(_table(_versions(fits), index=True))
    return _section("reproduce", "Reproduce", "".join(body))
