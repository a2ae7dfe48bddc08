"""The worked notebooks run top to bottom with small sampler settings.

Each notebook is copied to a temporary folder and executed there by the kernel of this
interpreter (``notebooks/execute.py``) with ``BAYES_UNSL_QUICK=1``; the committed notebooks
and their outputs are never touched. Sections that need datasets outside the package read
them from ``BAYES_UNSL_DATA`` or, when it is unset, from the ``shared/data`` folder next to
the repository, if there is one; without them those sections print a note and are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = [
    "01_forecast_with_uncertainty.ipynb",
    "02_emergence_safety_review.ipynb",
    "03_model_comparison_report.ipynb",
]
CELL_TIMEOUT = 900  # seconds per cell: compilation on a cold cache is slow on 2 cores


def _runner():
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_env() -> dict[str, str]:
    if os.environ.get("BAYES_UNSL_DATA"):
        return {}
    shared = ROOT.parent / "shared" / "data"
    return {"BAYES_UNSL_DATA": str(shared)} if shared.is_dir() else {}


def test_every_notebook_is_listed():
    assert [p.name for p in _runner().notebooks()] == NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_with_quick_settings(name, tmp_path):
    committed = (NOTEBOOKS / name).read_bytes()
    copy = tmp_path / name
    shutil.copyfile(NOTEBOOKS / name, copy)

    seconds = _runner().execute(copy, quick=True, timeout=CELL_TIMEOUT, env=_data_env())

    nb = nbformat.read(copy, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a code cell did not run"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    settings = "".join(o.get("text", "") for o in code[0].outputs)
    assert "QUICK sampler settings" in settings
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
    assert (NOTEBOOKS / name).read_bytes() == committed, "the committed notebook changed"
    print(f"{name}: {seconds:.0f} s with quick settings")


def test_committed_notebooks_have_outputs():
    for name in NAMES:
        nb = json.loads((NOTEBOOKS / name).read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["execution_count"] is not None for c in code), (
            f"{name} is stored without outputs"
        )
        assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"], (
            f"{name} is stored with an error"
        )
