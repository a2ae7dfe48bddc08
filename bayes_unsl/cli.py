"""Command line: ``bayes-unsl fit``, ``backtest``, ``demo`` and ``report``."""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_unsl._cache import cache_root, cache_usage, clear, max_cache_bytes
from bayes_unsl.devices import use_cpu_cores
from bayes_unsl.models import LIKELIHOODS
from bayes_unsl.tables import markdown_table

__all__ = ["main"]

DEMO_SPLIT = 14  # the first 14 points are fitted, the last 3 held out (arXiv 2210.14891)
# bayes_unsl.break_choice.BREAK_RULES, default first (not imported: --help stays fast).
BREAK_RULES = ("parsimonious", "converged-first", "forecast")
# bayes_unsl.fit.REMEDIES, default first (not imported, for the same reason).
REMEDIES = ("map+longer", "map", "longer")


def _breaks(text: str) -> int | str:
    """One --breaks value: a non-negative integer, or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of breaks or 'auto': {text!r}") from None


def _sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--breaks",
        type=_breaks,
        default=None,
        help="breaks per component (default 1 for bnsl and unsl, 0 for the other forms), or "
        "'auto': 0 to 2 breaks, the simplest fit that PSIS-LOO does not find clearly worse "
        "(among the fits of --break-rule)",
    )
    p.add_argument(
        "--break-rule",
        choices=BREAK_RULES,
        default=BREAK_RULES[0],
        help="with --breaks auto: let every fitted count compete (parsimonious, the default), "
        "only the converged ones (converged-first), or keep the count that best forecast the "
        "largest 30%% of the points from the rest (forecast: twice the fits)",
    )
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default=None,
        help="noise model on log y (default: the form's; student_t for bnsl, else normal)",
    )
    p.add_argument("--target-accept", type=float, default=None)
    p.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default=None,
        help="arithmetic of the sampler (default: float64 on a CPU, float32 on a GPU); "
        "float32 samples about 1.5x faster on a CPU",
    )
    p.add_argument(
        "--priors",
        type=_priors,
        default=None,
        help="prior settings as a JSON object, e.g. '{\"noise_trend_sd\": 0.5}' (fields of "
        "the form's priors class, e.g. BNSLPriors)",
    )
    p.add_argument(
        "--upper-bound",
        type=float,
        default=None,
        help="a value the metric cannot exceed (1 for error rates): forecasts are capped at it",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="refits of a fit that fails its convergence checks, with --remedy (default 1)",
    )
    p.add_argument(
        "--remedy",
        choices=REMEDIES,
        default=REMEDIES[0],
        help="map: sample in the coordinates of a map fitted to the failed run's draws; "
        "longer: target_accept 0.99, twice the warm-up and draws; map+longer: both (default)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default=None,
        help="where to sample (default: the CPU for one curve, the GPU for 16 curves or more "
        "with --group when there is one)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-unsl", description="Bayesian neural scaling laws with calibrated intervals."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit_p = sub.add_parser("fit", help="fit a CSV table and write netCDF, plot and summary")
    _table_args(fit_p)
    fit_p.add_argument("--predict-at", nargs="*", type=float, default=[], metavar="V")
    _sampler_args(fit_p)
    _backtest_args(sub)
    demo_p = sub.add_parser("demo", help="fit the shipped 4-digit addition curve")
    demo_p.add_argument("--out", type=Path, default=Path("demo_out"))
    _sampler_args(demo_p)
    _report_args(sub)
    cache_p = sub.add_parser(
        "cache", help="show the on-disk caches of compiled programs, or clear them"
    )
    cache_p.add_argument("--clear", action="store_true", help="remove every cached entry")
    return parser


def _table_args(p: argparse.ArgumentParser) -> None:
    """What to fit: the table, its columns, the curves in it and the form."""
    p.add_argument("csv", type=Path)
    p.add_argument("--x", nargs="+", required=True, help="input column(s)")
    p.add_argument("--y", required=True, help="metric column")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--group",
        default=None,
        help="one curve per value of this column, all in one batched run (fit_many)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="with --group: curves per compiled batch (default 4 on a CPU, up to 4,096 on a GPU)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="with --group on a CPU: worker processes running batches side by side (default: "
        "one per usable core for 8 curves or more)",
    )
    p.add_argument(
        "--form",
        default="bnsl",
        choices=("bnsl", "unsl", "chinchilla", "data_constrained", "m4"),
        help="functional form (default bnsl)",
    )


def _backtest_args(sub) -> None:
    bt_p = sub.add_parser(
        "backtest",
        help="refit on the smaller runs, forecast the larger ones and score the intervals",
    )
    _table_args(bt_p)
    bt_p.add_argument(
        "--holdout",
        nargs="+",
        type=float,
        default=[0.3],
        metavar="SHARE",
        help="share(s) of each curve's rows held out, largest scale first (default 0.3)",
    )
    bt_p.add_argument(
        "--holdout-unit",
        choices=("share", "decades"),
        default="share",
        help="holdouts as shares of the rows (default) or as decades of the scale",
    )
    bt_p.add_argument(
        "--by", default=None, help="column that orders the runs by scale (default: the input)"
    )
    bt_p.add_argument(
        "--future-break",
        nargs="+",
        action="extend",
        type=_future_break,
        default=[],
        metavar="RATE,SLOPE_SD[,AWAY_SD]",
        help="further-break prior(s) to score beside the fit's own (bnsl, unsl)",
    )
    _sampler_args(bt_p)


def _future_break(text: str) -> tuple[str, dict]:
    """One --future-break value: rate, slope sd toward the limit and, optionally, away."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (2, 3) or not all(np.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected RATE,SLOPE_SD[,AWAY_SD], numbers >= 0 (0: data-relative sd): {text!r}"
        )
    names = ("rate", "slope_sd", "away_sd")
    return f"future break {text}", dict(zip(names, values, strict=False))


def _report_args(sub) -> None:
    rep_p = sub.add_parser("report", help="write a self-contained HTML report of saved fits")
    rep_p.add_argument("fits", nargs="+", type=Path, metavar="FIT.nc", help="saved fit(s)")
    rep_p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    rep_p.add_argument("--names", nargs="+", default=None, help="one name per fit")
    rep_p.add_argument(
        "--scales",
        nargs="+",
        type=_scale_row,
        default=None,
        metavar="X",
        help="inputs to forecast at (default 10x and 100x the largest observed); "
        "for several inputs one comma-separated row each, e.g. 1e9,2e10",
    )
    rep_p.add_argument(
        "--threshold",
        nargs="+",
        action="extend",
        type=float,
        default=[],
        metavar="T",
        help="metric value(s): probability of being below it and the scale where it is crossed",
    )
    rep_p.add_argument("--title", default=None)
    rep_p.add_argument(
        "--backtest",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="a folder written by 'bayes-unsl backtest': its summary and reliability diagram",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _priors(text: str) -> dict:
    """One --priors value: a JSON object of prior settings (fields of the form's priors)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object of prior settings: {text!r}")
    return value


def _priors_text(priors) -> str:
    """The priors class and the settings that differ from its defaults."""
    defaults = type(priors)().to_dict()
    changed = {k: v for k, v in priors.to_dict().items() if v != defaults[k]}
    name = type(priors).__name__
    if not changed:
        return f"the defaults of {name}"
    return f"{name} with " + ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items())


def _scale_row(text: str) -> tuple[float, ...]:
    """One --scales value: a number, or a comma-separated row of inputs."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or a row of numbers: {text!r}") from None


def _options(args: argparse.Namespace) -> dict:
    opts = dict(
        form=getattr(args, "form", "bnsl"),
        breaks=args.breaks,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=args.seed,
        retries=args.retries,
        remedy=args.remedy,
        likelihood=args.likelihood,
        warn=False,
    )
    if args.breaks == "auto":
        opts["break_rule"] = args.break_rule
    if args.target_accept is not None:
        opts["target_accept"] = args.target_accept
    if args.upper_bound is not None:
        opts["upper_bound"] = args.upper_bound
    if args.priors is not None:
        opts["priors"] = args.priors
    if args.device is not None:
        opts["device"] = args.device
    if args.precision is not None:
        opts["precision"] = args.precision
    batched = {k: v for k in ("batch_size", "workers") if (v := getattr(args, k, None)) is not None}
    if batched and not getattr(args, "group", None):
        flags = ", ".join("--" + k.replace("_", "-") for k in batched)
        raise _fail(f"{flags} apply to several curves: give --group too")
    opts.update(batched)
    return opts


def _fail(message: str) -> SystemExit:
    """The exit for bad input: one line on stderr, exit status 1, no traceback."""
    return SystemExit("error: " + " ".join(str(message).split()))


def _read_csv(path: Path, wanted: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV table, refusing anything that pandas would read as something else.

    Rows with more fields than the header are refused (pandas would otherwise take the first
    field of every row as an index and shift the columns, e.g. for ``1,000`` written with a
    thousands separator); so are requested columns that appear twice in the header (pandas
    would rename the copy). The rows are numbered from 1 in error messages ("data row 3").
    """
    if not path.exists():
        raise _fail(f"no such file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, index_col=False)
    except pd.errors.EmptyDataError:
        raise _fail(f"{path} is empty") from None
    except pd.errors.ParserWarning:
        raise _fail(f"{path} is not a well-formed CSV: {_long_row(path)}") from None
    except pd.errors.ParserError as err:
        raise _fail(f"{path} is not a well-formed CSV: {err}") from None
    except UnicodeDecodeError as err:
        raise _fail(f"{path} is not a text (UTF-8) CSV file: {err}") from None
    except OSError as err:
        raise _fail(f"cannot read {path}: {err.strerror or err}") from None
    header = _header(path)
    for name in dict.fromkeys(wanted):
        if header.count(name) > 1:
            raise _fail(
                f"column {name!r} appears {header.count(name)} times in the header of {path}; "
                "rename the copies"
            )
    if frame.empty:
        raise _fail(f"{path} has a header but no rows")
    missing = [n for n in wanted if n not in frame.columns]
    if missing and len(frame.columns) == 1 and any(c in frame.columns[0] for c in ";\t|"):
        raise _fail(
            f"unknown column(s) {missing}: {path} has the single column {frame.columns[0]!r}; "
            "bayes-unsl reads comma-separated files"
        )
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="data row")
    return frame


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])


def _long_row(path: Path) -> str:
    """Where a row has more fields than the header (for the error message)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        width = len(next(rows, []))
        for row in rows:
            if len(row) > width:
                return (
                    f"line {rows.line_num} has {len(row)} fields but the header has {width} "
                    "(a number with a thousands separator? write 1000, not 1,000)"
                )
    return "some row has more fields than the header"


def _check_predict_at(values: Sequence[float], n_inputs: int) -> np.ndarray:
    """--predict-at values, checked before any fitting so that a typo costs no sampling."""
    at = np.asarray(values, dtype=float)
    if at.size and n_inputs != 1:
        raise _fail("--predict-at takes values of a single input")
    bad = [v for v in at.tolist() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise _fail(f"--predict-at values must be finite and > 0, got {bad}")
    return at


def _status_lines(diag: dict) -> list[str]:
    from bayes_unsl.inference.diagnostics import convergence_problems

    problems = convergence_problems(diag)
    if not problems:
        return [
            "Converged: max R-hat {:.3f}, min bulk ESS {:.0f}, {} divergences.".format(
                diag["r_hat_max"], diag["ess_bulk_min"], diag["divergences"]
            )
        ]
    return [
        "**NOT CONVERGED**: " + "; ".join(problems) + ".",
        "The intervals below are not reliable. Try more --warmup/--draws, a higher "
        "--target-accept, fewer --breaks, or --likelihood student_t.",
    ]


def _write_outputs(result, out: Path, table: pd.DataFrame | None, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_unsl import __version__
    from bayes_unsl.io import write_atomic

    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "fit.nc")
    if len(result.x_names) == 1:
        ax = result.plot()
        write_atomic(out / "fan_chart.png", lambda p: ax.figure.savefig(p, dpi=130, format="png"))
        plt.close(ax.figure)
    diag = result.diagnostics()
    lines = [
        f"# {result.spec.form.upper()} fit of `{result.y_name}` on "
        f"{', '.join(f'`{n}`' for n in result.x_names)}",
        "",
        *_status_lines(diag),
        "",
        f"- breaks: {result.spec.breaks}{_chosen_how(result)}; likelihood: "
        f"{result.spec.likelihood}; seed: {result.seed}; chains x (warm-up + draws): "
        f"{result.settings.chains} x ({result.settings.warmup} + {result.settings.draws})",
        f"- priors: {_priors_text(result.spec.priors)}",
        f"- seconds: {diag['seconds']:.1f}; bayes_unsl {__version__}",
        f"- command: `{command}`",
        "",
    ]
    if table is not None and len(table):
        lines += ["## Posterior predictive intervals", "", markdown_table(table), ""]
    write_atomic(out / "summary.md", lambda p: p.write_text("\n".join(lines)))


def _chosen_how(result) -> str:
    choice = result.break_choice()
    if choice is None:
        return ""
    tried = choice.index[choice["skipped"].isna()]
    rule = json.loads(result.attrs["break_choice"]).get("break_rule", "converged-first")
    how = "forecast of the largest points" if rule == "forecast" else "PSIS-LOO"
    return f" (chosen by {how} among {', '.join(map(str, tried))}, {rule} rule)"


def _cmd_fit(args: argparse.Namespace) -> int:
    import bayes_unsl as bu

    frame = _read_csv(args.csv, [*args.x, args.y, *([args.group] if args.group else [])])
    predict_at = _check_predict_at(args.predict_at, len(args.x))
    if args.out.exists() and not args.out.is_dir():
        raise _fail(f"--out {args.out} exists and is not a folder")
    x = args.x[0] if len(args.x) == 1 else args.x
    if args.group:
        return _fit_groups(frame, x, args, predict_at)
    try:
        result = bu.fit(frame, x, args.y, **_options(args))
    except ValueError as err:
        raise _fail(str(err)) from None
    table = result.predict(predict_at) if predict_at.size else None
    command = "bayes-unsl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    _write_outputs(result, args.out, table, command)
    diag = result.diagnostics()
    if args.json:
        payload = {"out": str(args.out), **_json_diag(diag)}
        if table is not None:
            payload["predictions"] = table.to_dict(orient="records")
        print(json.dumps(payload))
    else:
        print("\n".join(_status_lines(diag)))
        if table is not None:
            print(table.to_string(index=False))
        print(f"wrote {args.out}/fit.nc, fan_chart.png, summary.md")
    return 0 if diag["converged"] else 3


def _fit_groups(frame: pd.DataFrame, x, args: argparse.Namespace, predict_at) -> int:
    """``fit --group``: one fit per group, saved as each finishes; tables of all groups."""
    import bayes_unsl as bu
    from bayes_unsl.io import write_atomic

    try:
        fits = bu.fit_many(frame, args.group, x, args.y, out=args.out, **_options(args))
    except ValueError as err:
        raise _fail(str(err)) from None
    diag = fits.diagnostics()
    write_atomic(args.out / "diagnostics.csv", lambda p: diag.to_csv(p, index=False))
    table = fits.predict(predict_at) if predict_at.size and len(fits) else None
    if table is not None:
        write_atomic(args.out / "predictions.csv", lambda p: table.to_csv(p, index=False))
    unconverged = [k for k, f in fits.items() if not f.converged]
    for key, message in fits.errors.items():
        sys.stderr.write(f"group {key!r} not fitted: {message}\n")
    if unconverged:
        sys.stderr.write(
            f"NOT CONVERGED: {len(unconverged)} of {len(fits)} groups "
            f"({', '.join(map(str, unconverged[:10]))}); their intervals are not reliable\n"
        )
    if args.json:
        payload = {
            "out": str(args.out),
            "fitted": [str(k) for k in fits],
            "not_converged": [str(k) for k in unconverged],
            "errors": {str(k): v for k, v in fits.errors.items()},
        }
        if table is not None:
            payload["predictions"] = table.to_dict(orient="records")
        print(json.dumps(payload, default=str))
    else:
        print(diag.to_string(index=False))
        if table is not None:
            print(table.to_string(index=False))
        print(f"wrote {args.out}: one .nc per group, collection.json, diagnostics.csv")
    return 0 if fits.all_converged else 3


def _cmd_backtest(args: argparse.Namespace) -> int:
    from bayes_unsl.backtest import backtest

    wanted = [*args.x, args.y, *(c for c in (args.group, args.by) if c)]
    frame = _read_csv(args.csv, wanted)
    if args.out.exists() and not args.out.is_dir():
        raise _fail(f"--out {args.out} exists and is not a folder")
    x = args.x[0] if len(args.x) == 1 else args.x
    try:
        result = backtest(
            frame,
            x,
            args.y,
            holdout=args.holdout,
            holdout_unit=args.holdout_unit,
            by=args.by,
            group=args.group,
            future_breaks=dict(args.future_break),
            **_options(args),
        )
    except ValueError as err:
        raise _fail(str(err)) from None
    command = "bayes-unsl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result.save(args.out, command=command)
    summary = result.summary()
    unconverged = len(result.unconverged)
    for key, message in result.errors.items():
        sys.stderr.write(f"left out {key}: {message}\n")
    if unconverged:
        sys.stderr.write(f"NOT CONVERGED: {unconverged} refit(s); their scores are not reliable\n")
    if args.json:
        payload = {
            "out": str(args.out),
            "summary": summary.to_dict(orient="records"),
            "not_converged": unconverged,
            "errors": {str(k): v for k, v in result.errors.items()},
        }
        print(json.dumps(payload, default=str))
    else:
        print(summary.to_string(index=False))
        print(
            f"wrote {args.out}: backtest.md, summary.csv, scores.csv, predictions.csv, "
            "reliability.png, data.csv, settings.json"
        )
    return 3 if unconverged else 0


def _json_diag(diag: dict) -> dict:
    keys = ("r_hat_max", "ess_bulk_min", "divergences", "converged", "seconds")
    return {k: diag[k] for k in keys if k in diag}


def _cmd_demo(args: argparse.Namespace) -> int:
    import bayes_unsl as bu
    from bayes_unsl.evaluation import coverage, rmsle

    frame = bu.datasets.load("four_digit_addition")
    x, y = "train_dataset_size", "test_cross_entropy"
    train, held = frame.iloc[:DEMO_SPLIT], frame.iloc[DEMO_SPLIT:]
    started = time.perf_counter()
    result = bu.fit(train, x, y, **_options(args))
    wall = time.perf_counter() - started
    draws = result.samples(held[x].to_numpy())
    truth = held[y].to_numpy()
    table = result.predict(held[x].to_numpy()).assign(truth=truth)
    command = "bayes-unsl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    _write_outputs(result, args.out, table, command)
    import matplotlib.pyplot as plt

    from bayes_unsl.io import write_atomic

    ax = result.plot(
        heldout=(held[x].to_numpy(), truth), title="4-digit addition: 14 points fitted, 3 held out"
    )
    write_atomic(args.out / "fan_chart.png", lambda p: ax.figure.savefig(p, dpi=130, format="png"))
    plt.close(ax.figure)
    diag = result.diagnostics()
    payload = {
        "rmsle_heldout": rmsle(draws, truth),
        "coverage_90_heldout": coverage(draws, truth, 0.9),
        "coverage_50_heldout": coverage(draws, truth, 0.5),
        **_json_diag(diag),
        "seconds_compile": diag.get("seconds_compile"),
        "seconds_sampling": diag.get("seconds_sampling"),
        "seconds_wall": wall,
        "chain_devices": diag.get("chain_devices", 1),
        "remedies": len(diag.get("remedies") or ()),
    }
    if args.json:
        print(json.dumps(payload))
    else:
        print("4-digit addition (arXiv 2210.14891): fitted on the first 14 points.")
        print("\n".join(_status_lines(diag)))
        cols = [x, "median", "lower_50", "upper_50", "lower_90", "upper_90", "truth"]
        print(table[cols].to_string(index=False))
        print(
            f"held-out RMSLE {payload['rmsle_heldout']:.4f}; 90% coverage "
            f"{payload['coverage_90_heldout']:.2f}; {wall:.1f} s"
        )
        print(f"wrote {args.out}/fit.nc, fan_chart.png, summary.md")
    return 0 if diag["converged"] else 3


def _report_names(paths: Sequence[Path], names: Sequence[str] | None) -> list[str]:
    if names is None:
        stems = [p.stem for p in paths]
        return stems if len(set(stems)) == len(stems) else [str(p) for p in paths]
    if len(names) != len(paths):
        raise _fail(f"--names gives {len(names)} name(s) for {len(paths)} fit file(s)")
    if len(set(names)) != len(names):
        raise _fail(f"--names repeats a name: {list(names)}")
    return list(names)


def _load_fit(path: Path):
    """A saved fit; an unconverged one is loaded quietly (the report says so loudly)."""
    import bayes_unsl as bu

    if not path.is_file():
        raise _fail(f"no such file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bu.ConvergenceWarning)
        try:
            return bu.load(path)
        except (ValueError, KeyError, OSError) as err:
            raise _fail(f"cannot read {path} as a saved fit: {err}") from None


def _cmd_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import bayes_unsl as bu

    names = _report_names(args.fits, args.names)
    if args.out.is_dir():
        raise _fail(f"--out {args.out} is a folder; give the HTML file to write")
    fits = {name: _load_fit(path) for name, path in zip(names, args.fits, strict=True)}
    scales = None
    if args.scales is not None:
        if len({len(row) for row in args.scales}) != 1:
            raise _fail("--scales rows must all have the same number of inputs")
        scales = [row[0] for row in args.scales] if len(args.scales[0]) == 1 else args.scales
    command = "bayes-unsl " + " ".join(shlex.quote(a) for a in argv)
    subject = fits if args.names or len(fits) > 1 else next(iter(fits.values()))
    try:
        path = bu.report(
            subject,
            args.out,
            scales=scales,
            thresholds=args.threshold,
            title=args.title,
            command=command,
            backtest=args.backtest,
        )
    except ValueError as err:
        raise _fail(str(err)) from None
    unconverged = [name for name, f in fits.items() if not f.converged]
    if unconverged:
        sys.stderr.write(
            f"NOT CONVERGED: {', '.join(unconverged)}; the report says so at the top\n"
        )
    print(f"wrote {path}")
    return 3 if unconverged else 0


def _cmd_cache(args: argparse.Namespace) -> int:
    root = cache_root()
    if root is None:
        print("Caching is off (BAYES_UNSL_CACHE_DIR=0).")
        return 0
    megabytes = 2.0**20
    if args.clear:
        removed = clear()
        print(f"Removed {removed / megabytes:.1f} MB.")
    for folder, (files, size) in cache_usage().items():
        print(f"{folder}: {files} files, {size / megabytes:.1f} MB")
    print(
        f"Bound: {max_cache_bytes() / megabytes:.0f} MB in all (BAYES_UNSL_CACHE_MAX_MB); "
        "the entries used longest ago go first."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``bayes-unsl`` program. Run as a program (``argv`` None), it first gives JAX one
    CPU device per core, so that a fit's chains run side by side; called from Python with
    ``argv``, it leaves JAX's devices as the caller set them."""
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ArviZ is undergoing.*")
        if as_program:
            use_cpu_cores()
        if args.command == "fit":
            return _cmd_fit(args)
        if args.command == "report":
            return _cmd_report(args, argv)
        if args.command == "backtest":
            return _cmd_backtest(args)
        if args.command == "cache":
            return _cmd_cache(args)
        return _cmd_demo(args)


if __name__ == "__main__":
    raise SystemExit(main())
