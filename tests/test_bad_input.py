"""Bad input, case by case, through ``validate``, ``bayes_unsl.fit`` and ``bayes-unsl fit``.

Every refused case fails before any sampling, with an error that names the column (or file,
or option) and the problem; every accepted case is accepted as documented in
:mod:`bayes_unsl.data`. The tables below also feed ``benchmarks/reliability_table.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bayes_unsl as bu
from bayes_unsl.cli import main
from bayes_unsl.data import RESOLUTION, TooFewPoints, validate
from bayes_unsl.models import ModelSpec, form_model

N = np.geomspace(1e3, 1e6, 8)
LOSS = np.linspace(3.0, 2.0, 8)
TINY_SETTINGS = {"chains": 1, "warmup": 1, "draws": 1, "map_starts": 1, "retries": 0}


def table(**columns: Any) -> pd.DataFrame:
    """The 8-point curve ``n`` -> ``loss``, with some columns replaced or added."""
    return pd.DataFrame({"n": N, "loss": LOSS, **columns})


def with_value(values: np.ndarray, i: int, v: Any) -> np.ndarray:
    out = np.array(values, dtype=object if isinstance(v, str | bool) or v is None else float)
    out[i] = v
    return out


def shuffled() -> pd.DataFrame:
    return table().iloc[[5, 2, 7, 0, 3, 6, 1, 4]]


def replicates() -> pd.DataFrame:
    n = np.repeat(np.geomspace(1e3, 1e6, 4), 3)
    loss = np.repeat(np.linspace(3.0, 2.0, 4), 3) + np.tile([-0.05, 0.0, 0.05], 4)
    return pd.DataFrame({"n": n, "loss": loss, "seed": np.tile([0, 1, 2], 4)})


def filtered_with_nan() -> pd.DataFrame:
    frame = pd.DataFrame({"n": np.geomspace(1e3, 1e6, 16), "loss": np.linspace(3.0, 2.0, 16)})
    frame.loc[6, "loss"] = np.nan
    return frame.iloc[::2]  # keeps the index labels 0, 2, ..., 14


@dataclass(frozen=True)
class Case:
    """One bad (or awkward) table for the Python API.

    ``expect`` is a substring of the error message, or ``None`` where the table is accepted.
    """

    name: str
    data: Callable[[], Any]
    expect: str | None
    x: Any = "n"
    y: Any = "loss"
    error: type[Exception] = ValueError
    min_points: int = 3
    fit_options: dict[str, Any] = field(default_factory=dict)


API_CASES = [
    Case("NaN in x", lambda: table(n=with_value(N, 2, np.nan)),
         "column 'n' has 1 NaN or infinite value(s) (at index 2)"),
    Case("NaN in y", lambda: table(loss=with_value(LOSS, 5, np.nan)),
         "column 'loss' has 1 NaN or infinite value(s) (at index 5)"),
    Case("inf in x", lambda: table(n=with_value(N, 7, np.inf)),
         "column 'n' has 1 NaN or infinite value(s) (at index 7)"),
    Case("-inf in y", lambda: table(loss=with_value(LOSS, 0, -np.inf)),
         "column 'loss' has 1 NaN or infinite value(s) (at index 0)"),
    Case("None in an object column", lambda: table(n=with_value(N, 3, None)),
         "column 'n' has 1 NaN or infinite value(s) (at index 3)"),
    Case("NaN in a filtered DataFrame (index labels 0, 2, ..., 14)", filtered_with_nan,
         "column 'loss' has 1 NaN or infinite value(s) (at index 6)"),
    Case("zero x", lambda: table(n=with_value(N, 0, 0.0)),
         "column 'n' has 1 zero or negative value(s) (at index 0); its logarithm is taken"),
    Case("negative x", lambda: table(n=with_value(N, 1, -1e4)),
         "column 'n' has 1 zero or negative value(s) (at index 1)"),
    Case("zero y", lambda: table(loss=with_value(LOSS, 4, 0.0)),
         "column 'loss' has 1 zero or negative value(s) (at index 4)"),
    Case("negative y", lambda: table(loss=-LOSS),
         "column 'loss' has 8 zero or negative value(s) (at index 0, 1, 2, 3, 4 and 3 more)"),
    Case("subnormal x (1e-320)", lambda: table(n=with_value(N, 0, 1e-320)),
         "column 'n' has 1 subnormal value(s) below 2.23e-308 (at index 0)"),
    Case("subnormal y (1e-320)", lambda: table(loss=with_value(LOSS, 7, 1e-320)),
         "column 'loss' has 1 subnormal value(s)"),
    Case("constant y", lambda: table(loss=np.full(8, 2.5)),
         "metric column 'loss' is constant (every row is 2.5)"),
    Case("y constant to 1e-9", lambda: table(loss=2.5 * (1 + 1e-9 * np.arange(8))),
         "metric column 'loss' is constant (every row is within a factor 1 + 7e-09 of 2.5)"),
    Case("all x equal", lambda: table(n=np.full(8, 5e4)),
         "input column 'n' takes a single value (every row is 50000)"),
    Case("all x equal to 1e-9", lambda: table(n=5e4 * (1 + 1e-9 * np.arange(8))),
         "input column 'n' takes a single value (every row is within a factor 1 + 7e-09"),
    Case("fewer points (8) than parameters (10: BNSL, 2 breaks)", table,
         "8 point(s) is too few: this model has 10 free parameters", min_points=10,
         fit_options={"breaks": 2}, error=TooFewPoints),  # a ValueError
    Case("no rows", lambda: {"n": [], "loss": []}, "the table has no rows"),
    Case("string with a word in a numeric column", lambda: table(n=with_value(N, 6, "abc")),
         "column 'n' has 1 value(s) that are not numbers: 'abc' (at index 6)"),
    Case("string with a thousands separator ('1,000')",
         lambda: table(n=with_value(N, 0, "1,000")),
         "column 'n' has 1 value(s) that are not numbers: '1,000' (at index 0)"),
    Case("booleans (dtype bool)", lambda: table(n=np.arange(8) % 2 == 0),
         "column 'n' holds booleans (dtype bool), not positive numbers"),
    Case("a boolean among numbers (list in a dict)",
         lambda: {"n": [True, *N[1:].tolist()], "loss": LOSS},
         "column 'n' has 1 value(s) that are not numbers: True (at index 0)"),
    Case("complex numbers", lambda: table(n=N + 0j),
         "column 'n' holds complex numbers (dtype complex128)"),
    Case("dates", lambda: table(n=pd.date_range("2024-01-01", periods=8)),
         "column 'n' must be numeric, but has dtype datetime64"),
    Case("2-D array in a dict", lambda: {"n": N.reshape(4, 2), "loss": LOSS},
         "column 'n' must be a 1-D array, got shape (4, 2)"),
    Case("a single number in a dict", lambda: {"n": 1e3, "loss": LOSS},
         "column 'n' must be a 1-D array, got a single value"),
    Case("ragged nested lists in a dict", lambda: {"n": [[1.0, 2.0], [3.0]], "loss": [1, 2]},
         "column 'n' must be a 1-D array, but its entries have different lengths"),
    Case("dict columns of different lengths", lambda: {"n": N, "loss": LOSS[:7]},
         "columns have different lengths: 'n' has 8, 'loss' has 7"),
    Case("missing input column", table,
         "unknown input column 'params'; the table has columns ['n', 'loss']", x="params"),
    Case("missing metric column", table,
         "unknown metric column 'acc'; the table has columns ['n', 'loss']", y="acc"),
    Case("a column name twice in the DataFrame",
         lambda: pd.DataFrame(np.c_[N, N, LOSS], columns=["n", "n", "loss"]),
         "column 'n' appears 2 times in the table"),
    Case("the same input listed twice in x", table,
         "input column(s) ['n'] are listed more than once in x", x=["n", "n"]),
    Case("the metric also given as an input", table,
         "column 'loss' is given both as an input and as the metric", x=["n", "loss"]),
    Case("data that is not a table (a list)", lambda: [N.tolist(), LOSS.tolist()],
         "data must be a pandas DataFrame or a dict of arrays, not list", error=TypeError),
    Case("x that is not a column name (None)", table,
         "x must be a column name or a list of column names, got None", x=None,
         error=TypeError),
    # Accepted, as documented in bayes_unsl.data.
    Case("unsorted rows", shuffled, None),
    Case("repeated x with different y (3 replicates at each of 4 x)", replicates, None),
    Case("numbers as strings ('1e3', object column)",
         lambda: table(n=np.array([f"{v:.17g}" for v in N], dtype=object)), None),
    Case("extra columns, one of them text", lambda: table(run=list("abcdefgh"), seed=0), None),
    Case("values from 1e-30 to 1e30",
         lambda: table(n=np.geomspace(1e-30, 1e30, 8), loss=np.geomspace(1e30, 1e-30, 8)), None),
    Case("nullable pandas dtypes (Int64, Float64)",
         lambda: table(n=pd.array(N.astype(int), dtype="Int64"),
                       loss=pd.array(LOSS, dtype="Float64")), None),
]  # fmt: skip


class SamplingStarted(Exception):
    """Raised in place of sampling: the input passed every check of ``bayes_unsl.fit``."""


@contextlib.contextmanager
def no_sampling() -> Iterator[None]:
    """Stop ``bayes_unsl.fit`` where sampling would begin."""
    fit_module = importlib.import_module("bayes_unsl.fit")  # the module, not the function

    def stop(*args: Any, **kwargs: Any) -> None:
        raise SamplingStarted

    with contextlib.ExitStack() as stack:
        for name in ("_sample", "run_nuts"):
            if hasattr(fit_module, name):
                stack.enter_context(mock.patch.object(fit_module, name, stop))
        yield


def outcome_validate(case: Case) -> str:
    try:
        ds = validate(case.data(), case.x, case.y, min_points=case.min_points)
    except Exception as err:  # noqa: BLE001 - the outcome is what the user sees
        return f"{type(err).__name__}: {err}"
    return f"accepted: {ds.n_points} points, z from {ds.z.min():.3g} to {ds.z.max():.3g}"


def outcome_fit(case: Case) -> str:
    try:
        with no_sampling():
            bu.fit(case.data(), case.x, case.y, warn=False, progress_bar=False,
                   **TINY_SETTINGS, **case.fit_options)  # fmt: skip
    except SamplingStarted:
        return "accepted: every check passes and sampling starts"
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    return "accepted: fitted"


@pytest.mark.parametrize("case", API_CASES, ids=[c.name for c in API_CASES])
def test_validate(case):
    if case.expect is None:
        assert outcome_validate(case).startswith("accepted")
        return
    with pytest.raises(case.error) as err:
        validate(case.data(), case.x, case.y, min_points=case.min_points)
    assert case.expect in str(err.value)


@pytest.mark.parametrize("case", API_CASES, ids=[c.name for c in API_CASES])
def test_fit_refuses_before_sampling(case):
    got = outcome_fit(case)
    if case.expect is None:
        assert got.startswith("accepted"), got
    else:
        assert got.startswith(case.error.__name__ + ": ") and case.expect in got, got


def test_unsorted_rows_give_the_same_fit_data():
    ordered, shuffled_ = validate(table(), "n", "loss"), validate(shuffled(), "n", "loss")
    order = np.argsort(shuffled_.x[:, 0])
    assert np.array_equal(shuffled_.x[order], ordered.x)
    assert np.array_equal(shuffled_.y[order], ordered.y)
    assert np.array_equal(shuffled_.z[order], ordered.z)
    assert shuffled_.scaling == ordered.scaling
    # The rows are kept in the order given: nothing is sorted behind the user's back.
    assert np.array_equal(shuffled_.y, shuffled()["loss"].to_numpy())
    for form in ("bnsl", "unsl", "m4"):  # the prior constants do not depend on the order
        spec = ModelSpec.build(form, 1 if form != "m4" else 0, "normal", None)
        a = form_model(form).context(ordered, spec).to_dict()
        b = form_model(form).context(shuffled_, spec).to_dict()
        assert a.keys() == b.keys()
        assert all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-12) for k in a)


def test_replicates_are_all_kept():
    ds = validate(replicates(), "n", "loss")
    assert ds.n_points == 12 and len(np.unique(ds.x)) == 4


def test_numbers_as_strings_read_as_the_numbers():
    strings = table(n=np.array([f"{v:.17g}" for v in N], dtype=object))
    assert np.array_equal(validate(strings, "n", "loss").x, validate(table(), "n", "loss").x)


def test_thirty_decades_each_side_give_finite_z_and_log_y():
    ds = validate(
        table(n=np.geomspace(1e-30, 1e30, 8), loss=np.geomspace(1e30, 1e-30, 8)), "n", "loss"
    )
    assert np.all(np.isfinite(ds.z)) and np.all(np.isfinite(ds.log_y))
    assert ds.z.min() == pytest.approx(-1.0) and ds.z.max() == pytest.approx(1.0)
    assert ds.scaling.half_range[0] == pytest.approx(30 * math.log(10))


# -- property-based ------------------------------------------------------------------------

POSITIVE = st.floats(
    min_value=float(np.finfo(float).tiny), max_value=float(np.finfo(float).max),
    allow_nan=False, allow_infinity=False,
)  # fmt: skip
BAD = st.one_of(
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf]),
    st.floats(max_value=0.0, allow_nan=False),
    st.floats(min_value=5e-324, max_value=float(np.finfo(float).tiny), exclude_max=True),
)


@st.composite
def curves(draw):
    min_points = draw(st.integers(1, 8))
    n = draw(st.integers(max(min_points, 2), 24))
    x = np.array(draw(st.lists(POSITIVE, min_size=n, max_size=n)))
    y = np.array(draw(st.lists(POSITIVE, min_size=n, max_size=n)))
    return min_points, x, y


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(curves())
def test_valid_curves_validate_with_z_in_unit_interval(curve):
    min_points, x, y = curve
    assume(np.ptp(np.log(x)) > RESOLUTION and np.ptp(np.log(y)) > RESOLUTION)
    ds = validate({"x": x, "y": y}, "x", "y", min_points=min_points)
    assert np.array_equal(ds.x[:, 0], x) and np.array_equal(ds.y, y)
    assert np.all(np.isfinite(ds.z))
    assert np.all(np.abs(ds.z) <= 1 + 1e-6)  # [-1, 1] up to rounding


@settings(max_examples=200, deadline=None)
@given(curves(), BAD, st.data())
def test_one_bad_entry_is_refused(curve, bad, data):
    min_points, x, y = curve
    column = data.draw(st.sampled_from(["x", "y"]))
    values = {"x": x, "y": y}
    values[column][data.draw(st.integers(0, len(values[column]) - 1))] = bad
    with pytest.raises(ValueError, match=f"column '{column}' has 1 "):
        validate(values, "x", "y", min_points=min_points)


# -- command line ----------------------------------------------------------------------------


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


GOOD_CSV = csv_text(table(seed=0))


@dataclass(frozen=True)
class CliCase:
    """One bad file or option for ``bayes-unsl fit``; ``content=None``: no such file."""

    name: str
    content: str | bytes | None
    expect: str
    args: tuple[str, ...] = ("--x", "n", "--y", "loss")
    folder: bool = False


CLI_CASES = [
    CliCase("empty file", "", "bad.csv is empty"),
    CliCase("header but no rows", "n,loss\n", "bad.csv has a header but no rows"),
    CliCase("unterminated quote", 'n,loss\n1000,"3\n', "bad.csv is not a well-formed CSV"),
    CliCase("more fields than the header (1,000 unquoted)", "n,loss\n1,000,3\n2000,2.5\n",
            "line 2 has 3 fields but the header has 2"),
    CliCase("binary file", b"\x00\xff\xfe\x01\n\x02,\x03\n", "bad.csv is not a text (UTF-8)"),
    CliCase("no such file", None, "no such file"),
    CliCase("a folder, not a file", "", "cannot read", folder=True),
    CliCase("semicolon-separated", GOOD_CSV.replace(",", ";"),
            "has the single column 'n;loss;seed'; bayes-unsl reads comma-separated files"),
    CliCase("a column twice in the header", "n,loss,loss\n1,3,3\n",
            "column 'loss' appears 2 times in the header"),
    CliCase("missing column", GOOD_CSV,
            "unknown input column 'params'; the table has columns ['n', 'loss', 'seed']",
            args=("--x", "params", "--y", "loss")),
    CliCase("NaN cell", csv_text(table(loss=with_value(LOSS, 2, np.nan))),
            "column 'loss' has 1 NaN or infinite value(s) (at data row 3)"),
    CliCase("short row (a missing cell)", "n,loss\n1000,3\n2000\n4000,2.5\n8000,2\n",
            "column 'loss' has 1 NaN or infinite value(s) (at data row 2)"),
    CliCase("inf cell", csv_text(table(n=with_value(N, 7, np.inf))),
            "column 'n' has 1 NaN or infinite value(s) (at data row 8)"),
    CliCase("zero x", csv_text(table(n=with_value(N, 0, 0.0))),
            "column 'n' has 1 zero or negative value(s) (at data row 1)"),
    CliCase("negative y", csv_text(table(loss=with_value(LOSS, 3, -2.0))),
            "column 'loss' has 1 zero or negative value(s) (at data row 4)"),
    CliCase("subnormal x (1e-320)", csv_text(table(n=with_value(N, 0, 1e-320))),
            "column 'n' has 1 subnormal value(s)"),
    CliCase("a word in a numeric column", csv_text(table(loss=with_value(LOSS, 1, "n/a?"))),
            "column 'loss' has 1 value(s) that are not numbers: 'n/a?' (at data row 2)"),
    CliCase("true/false column", csv_text(table(n=np.arange(8) % 2 == 0)),
            "column 'n' holds booleans"),
    CliCase("constant y", csv_text(table(loss=np.full(8, 2.5))),
            "metric column 'loss' is constant"),
    CliCase("all x equal", csv_text(table(n=np.full(8, 5e4))),
            "input column 'n' takes a single value"),
    CliCase("fewer points than parameters", GOOD_CSV,
            "8 point(s) is too few: this model has 10 free parameters",
            args=("--x", "n", "--y", "loss", "--breaks", "2")),
    CliCase("the metric also given as an input", GOOD_CSV,
            "column 'loss' is given both as an input and as the metric",
            args=("--x", "n", "loss", "--y", "loss")),
    CliCase("--predict-at 0, -5 and nan", GOOD_CSV,
            "--predict-at values must be finite and > 0, got [0.0, -5.0, nan]",
            args=("--x", "n", "--y", "loss", "--predict-at", "0", "-5", "nan")),
    CliCase("--out names a file", GOOD_CSV, "exists and is not a folder",
            args=("--x", "n", "--y", "loss", "--out", "{csv}")),
    CliCase("--chains 0", GOOD_CSV, "chains must be a positive integer, got 0",
            args=("--x", "n", "--y", "loss", "--chains", "0")),
]  # fmt: skip


def cli_argv(case: CliCase, folder: Path) -> list[str]:
    path = folder / ("bad_folder" if case.folder else "bad.csv")
    if case.folder:
        path.mkdir(exist_ok=True)
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(case.content)
    args = [a.replace("{csv}", str(path)) for a in case.args]
    out = [] if "--out" in args else ["--out", str(folder / "out")]
    return ["fit", str(path), *args, *out]


def outcome_cli(case: CliCase, folder: Path) -> str:
    """What ``bayes-unsl fit`` prints on stderr and its exit status (run in-process)."""
    try:
        with no_sampling():
            code = main(cli_argv(case, folder))
    except SystemExit as err:
        if isinstance(err.code, str):  # Python prints it on stderr and exits with 1
            return f"exit 1, stderr: {err.code}"
        return f"exit {err.code}"
    except SamplingStarted:
        return "accepted: sampling starts"
    except Exception as err:  # noqa: BLE001
        return f"traceback: {type(err).__name__}: {err}"
    return f"exit {code}"


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_cli(case, tmp_path):
    got = outcome_cli(case, tmp_path)
    assert got.startswith("exit 1, stderr: error: "), got
    assert "\n" not in got and case.expect in got, got


def test_cli_error_is_one_line_without_traceback(tmp_path):
    """A real process (one: each pays the imports): exit status 1, one line on stderr."""
    case = next(c for c in CLI_CASES if c.name.startswith("more fields than the header"))
    argv = [sys.executable, "-m", "bayes_unsl.cli", *cli_argv(case, tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and case.expect in lines[0]
    assert "Traceback" not in proc.stderr
