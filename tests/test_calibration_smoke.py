"""The calibration benchmark runs end to end on shipped data (``--smoke``) and scores every
curve x method."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_unsl.evaluation import score_names

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "calibration.py"
CURVES = {("addition", "4_digit_addition"), ("DD", "df4k"), ("DD", "df18k")}
METHODS = {
    "bayes_unsl-bnsl0",
    "bayes_unsl-bnsl1",
    "bayes_unsl-loo",
    "bayes_unsl-stack",
    "bayes_unsl-parsimony",
    "bayes_unsl-converged",
    "bayes_unsl-forecast",
    "bnsl_point",
    "m4",
    "power_law",
}
SCORES = [*score_names(), "seconds"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("calibration")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_one_scored_row_per_curve_and_method(smoke):
    table = pd.read_csv(smoke / "calibration.csv", keep_default_na=False, na_values=[""])
    pairs = set(zip(table["domain"], table["curve"], table["method"], strict=True))
    assert len(table) == len(pairs) == len(CURVES) * len(METHODS)
    assert {(d, c) for d, c, _ in pairs} == CURVES
    assert set(table["method"]) == METHODS
    assert table["error"].isna().all(), table.loc[table["error"].notna(), "error"].tolist()
    assert np.all(np.isfinite(table[SCORES].to_numpy(float)))
    assert table[[c for c in SCORES if c.startswith("coverage")]].stack().between(0, 1).all()
    bayes = table["method"].str.startswith("bayes_unsl")
    assert table.loc[bayes, "rhat_ok"].isin([0.0, 1.0]).all()
    assert table.loc[~bayes, "rhat_ok"].isna().all()


def test_report_and_figures_are_written(smoke):
    text = (smoke / "calibration.md").read_text()
    for needed in ("Command:", "commit", "## Targets", "## DD", "## addition", "summary"):
        assert needed in text
    assert "Partial run" in text
    for name in ("calibration_reliability.png", "calibration_pit.png"):
        assert (smoke / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
