"""What a user gets for each bad input: runs the cases of tests/test_bad_input.py.

Every case goes through the Python API (``bayes_unsl.data.validate`` and ``bayes_unsl.fit``)
or the command line (``bayes-unsl fit``, run in-process), and the error it raises, or the
fact that it is accepted, is written to benchmarks/results/reliability.md. Sampling is
stopped where it would start, so accepted tables cost no fitting.

    python benchmarks/reliability_table.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
THROUGH_CLI = "CLI `bayes-unsl fit`"
FAULTS_MARKER = "# Sampling faults"


def cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def api_rows(cases, outcome_validate, outcome_fit) -> list[tuple[str, str, str]]:
    rows = []
    for case in cases:
        via_validate, via_fit = outcome_validate(case), outcome_fit(case)
        if via_validate == via_fit:
            rows.append((case.name, "`validate`, `bayes_unsl.fit`", cell(via_validate)))
        else:
            rows.append((case.name, "`validate`", cell(via_validate)))
            rows.append((case.name, "`bayes_unsl.fit`", cell(via_fit)))
    return rows


def cli_rows(cases, outcome_cli) -> list[tuple[str, str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        here = Path.cwd()
        os.chdir(folder)  # relative paths, so the messages do not show a temporary folder
        try:
            for case in cases:
                for old in Path().iterdir():
                    if old.is_dir():
                        old.rmdir()
                    else:
                        old.unlink()
                got = outcome_cli(case, Path())
                status, _, stderr = got.partition(", stderr: ")
                what = f"{status}; stderr: {cell(stderr)}" if stderr else cell(got)
                rows.append((case.name, THROUGH_CLI, what))
        finally:
            os.chdir(here)
    return rows


def main() -> None:
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing.*")
    import numpy as np
    import pandas as pd
    from provenance import git_commit, machine

    import bayes_unsl
    from tests.test_bad_input import (
        API_CASES,
        CLI_CASES,
        outcome_cli,
        outcome_fit,
        outcome_validate,
    )

    rows = api_rows(API_CASES, outcome_validate, outcome_fit) + cli_rows(CLI_CASES, outcome_cli)
    lines = [
        "# Bad input: what the user gets",
        "",
        "Command: `python benchmarks/reliability_table.py` (runs the cases of "
        "`tests/test_bad_input.py`; the command line is run in-process, where an error exits "
        "with status 1 and prints its one line on stderr).",
        f"Machine: {machine()}; bayes_unsl {bayes_unsl.__version__}, numpy {np.__version__}, "
        f"pandas {pd.__version__}; commit {git_commit()}.",
        "",
        "Every refusal happens before sampling. For tables that are accepted, "
        "`bayes_unsl.fit` is stopped where sampling would start. The Python API raises "
        "`ValueError` for bad data and `TypeError` only when `data` is not a table or `x` is "
        "not a column name. Index labels in the API messages are the table's own; the command "
        "line numbers data rows from 1.",
        "",
        "| Bad input | Through | What the user gets |",
        "|---|---|---|",
        *(f"| {name} | {through} | {what} |" for name, through, what in rows),
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    # Keep the sampling-fault section that benchmarks/sampling_faults.py writes below.
    path = RESULTS / "reliability.md"
    old = path.read_text() if path.exists() else ""
    faults = old[old.index(FAULTS_MARKER) :] if FAULTS_MARKER in old else ""
    path.write_text("\n".join(lines) + ("\n" + faults if faults else ""))
    print(f"wrote {RESULTS / 'reliability.md'} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
