"""What a user gets when sampling goes wrong: provoke each fault and record the outcome.

Each case fits the shipped 4-digit addition curve (or a cut of it) in a way that makes
NUTS fail a check, and records what the user sees: the warning, the automatic remedy, the
``converged`` flag in ``diagnostics()``, in a saved and reloaded file, in the HTML report,
and the exit status of the command line. The table is written into
``benchmarks/results/reliability.md`` (section "Sampling faults"), next to the bad-input
table of ``reliability_table.py``.

    python benchmarks/sampling_faults.py
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import git_commit, machine

import bayes_unsl as bu
from bayes_unsl.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = "# Sampling faults"
X, Y = "train_dataset_size", "test_cross_entropy"


def _addition(upto: float | None = None) -> pd.DataFrame:
    frame = bu.datasets.load("four_digit_addition").iloc[:14]
    return frame if upto is None else frame[frame[X] <= upto]


CASES: list[tuple[str, str, Callable[[], pd.DataFrame], dict]] = [
    (
        "too few draws (low ESS, high R-hat)",
        "2 chains x (30 + 30), no retry",
        _addition,
        {"chains": 2, "warmup": 30, "draws": 30, "retries": 0},
    ),
    (
        "steps too large (divergences)",
        "target_accept 0.3, tree depth 3, no retry",
        _addition,
        {
            "chains": 2,
            "warmup": 200,
            "draws": 200,
            "target_accept": 0.3,
            "max_tree_depth": 3,
            "retries": 0,
        },
    ),
    (
        "steps too large, with the automatic remedy",
        "target_accept 0.3, tree depth 3, retries=1 (default)",
        _addition,
        {"chains": 2, "warmup": 200, "draws": 200, "target_accept": 0.3, "max_tree_depth": 3},
    ),
    (
        "hard posterior: curve cut before its transition",
        "x <= 512 (9 points), 1 break, default sampler and remedy",
        lambda: _addition(512),
        {},
    ),
    (
        "every MAP start fails",
        "map_starts=1 with the start's log density made non-finite (injected)",
        _addition,
        {
            "chains": 2,
            "warmup": 200,
            "draws": 200,
            "map_starts": 1,
            "retries": 0,
            "_inject_map_failure": True,
        },
    ),
]


@contextlib.contextmanager
def _failing_map_search():
    """Make the MAP search return +inf everywhere, as on a posterior with no finite start."""
    import bayes_unsl.inference.nuts as nuts

    original = nuts.map_starts

    def failing(potential, starts):
        optima, values = original(potential, starts)
        return optima, values + np.inf

    # Compiled programs are kept per model and settings: set the cached ones aside, so the
    # failing search is traced, and put them back afterwards.
    saved = dict(nuts._PROGRAMS)
    nuts._PROGRAMS.clear()
    nuts.map_starts = failing
    try:
        yield
    finally:
        nuts.map_starts = original
        nuts._PROGRAMS.clear()
        nuts._PROGRAMS.update(saved)


def _first_line(caught) -> str:
    msgs = [str(w.message) for w in caught if issubclass(w.category, bu.ConvergenceWarning)]
    return msgs[0][:160] + ("..." if len(msgs[0]) > 160 else "") if msgs else "(no warning)"


def run_case(name, how, data, options, folder: Path) -> dict:
    options = dict(options)
    inject = options.pop("_inject_map_failure", False)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _failing_map_search() if inject else contextlib.nullcontext():
            fit = bu.fit(data(), X, Y, seed=0, progress_bar=False, **options)
    seconds = time.perf_counter() - started
    d = fit.diagnostics()
    path = fit.save(folder / "fit.nc")
    reloaded = bu.load(path).diagnostics()["converged"]
    html = bu.report(fit, folder / "report.html").read_text()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = cli_main(["report", str(path), "--out", str(folder / "cli.html")])
    remedies = "; ".join(r["then"] for r in d.get("remedies", [])) or "none"
    return {
        "Fault": name,
        "Provoked by": how,
        "Warning": _first_line(caught),
        "Remedy run": remedies,
        "converged (fit / reloaded)": f"{d['converged']} / {reloaded}",
        "R-hat, ESS, divergences": (
            f"{d['r_hat_max']:.3f}, {d['ess_bulk_min']:.0f}, {d['divergences']}"
        ),
        "MAP starts finite": d.get("map_starts_finite"),
        "Report banner": "NOT CONVERGED" in html,
        "`bayes-unsl report` exit": status,
        "Seconds": round(seconds, 1),
    }


def fit_many_case(folder: Path) -> dict:
    frame = bu.datasets.load("double_descent")
    tasks = sorted(frame["task"].unique())[:2]
    frame = frame[frame["task"].isin(tasks)]
    lonely = frame.iloc[[0]].assign(task="one_point")
    frame = pd.concat([frame, lonely], ignore_index=True)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        fits = bu.fit_many(
            frame,
            group="task",
            x="x_value",
            y="metric_value",
            chains=2,
            warmup=200,
            draws=200,
            retries=0,
            out=folder / "many",
            progress_bar=False,
        )
    errors = "; ".join(f"{k}: {v}" for k, v in fits.errors.items())[:160]
    return {
        "Fault": "one group of three has a single point (fit_many)",
        "Provoked by": "2 double-descent curves plus a 1-point group, out=DIR",
        "Warning": errors,
        "Remedy run": "n/a",
        "converged (fit / reloaded)": f"fitted groups: {sorted(fits)}",
        "R-hat, ESS, divergences": "",
        "MAP starts finite": "",
        "Report banner": "",
        "`bayes-unsl report` exit": "",
        "Seconds": "",
    }


def section(rows: list[dict], seconds: float) -> str:
    frame = pd.DataFrame(rows)
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.shape[1]
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in r) + " |"
        for r in frame.itertuples(index=False)
    ]
    return "\n".join(
        [
            MARKER,
            "",
            "Command: `python benchmarks/sampling_faults.py`  ",
            f"Machine: {machine()}; bayes_unsl {bu.__version__}; commit {git_commit()}; "
            f"{seconds / 60:.1f} min.",
            "",
            "A fit that fails a check (R-hat above 1.01, bulk ESS under 400, any divergence, "
            "or no finite MAP start) is run once more with target acceptance 0.99 and twice "
            "the warm-up (`retries=1`, the default); if it still fails it is returned flagged: "
            "a `ConvergenceWarning` saying what to try, `converged: False` in its diagnostics "
            "and saved file, a NOT CONVERGED banner in its report and exit status 3 from the "
            "command line. The MAP-failure case is injected (the search's values replaced by "
            "+inf), since no shipped model produces it on real data.",
            "",
            head,
            rule,
            *body,
            "",
        ]
    )


def main() -> None:
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing.*")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, how, data, options) in enumerate(CASES):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            rows.append(run_case(name, how, data, options, folder))
            print(rows[-1], flush=True)
        rows.append(fit_many_case(Path(tmp)))
        print(rows[-1], flush=True)
    text = section(rows, time.perf_counter() - started)
    path = RESULTS / "reliability.md"
    old = path.read_text() if path.exists() else ""
    kept = old.split(MARKER)[0].rstrip() + "\n\n" if old else ""
    path.write_text(kept + text)
    print(text)


if __name__ == "__main__":
    main()
