"""Validated datasets: user tables turned into checked arrays and log coordinates.

Every check of a table raises a ``ValueError`` that names the column and the problem (a
``TypeError`` only when ``data`` is not a table or ``x``/``y`` are not column names). Nothing
is silently dropped or reordered: a table with one bad row is refused, not trimmed.

Accepted: numeric columns, and object or string columns whose every entry reads as a number
(``"1e3"``, as a CSV reader would read it); rows in any order; several rows with the same input
value (repeated runs); values over any span of decades (1e-30 to 1e30 is fine in log space);
extra columns, which are ignored. Refused: missing or duplicated columns, entries that are not
numbers (words, booleans, complex numbers), NaN, infinities, zero, negative and subnormal
values (a logarithm is taken), 2-D or ragged columns, columns of different lengths, an input
that takes a single value, a constant metric, and fewer rows than the model has parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RESOLUTION",
    "Dataset",
    "LogScaling",
    "TooFewPoints",
    "as_columns",
    "validate",
    "validate_inputs",
]

# Log-scale spread below which a column counts as a single value: 1e-6, a few float32 ulps
# of a log, so a fit in single precision (the GPU default) could not tell the values apart.
RESOLUTION = 1e-6


@dataclass(frozen=True)
class LogScaling:
    """Reference scales that centre and standardise the log inputs.

    ``z = (log x - center) / half_range``, so the observed range maps onto [-1, 1]. Slopes and
    break locations then have the same meaning on every curve, which is what lets one set of
    weakly informative priors serve curves that span two or twenty decades.
    """

    center: tuple[float, ...]
    half_range: tuple[float, ...]

    def standardise(self, log_x: np.ndarray) -> np.ndarray:
        return (log_x - np.asarray(self.center)) / np.asarray(self.half_range)

    def to_dict(self) -> dict[str, list[float]]:
        return {"center": list(self.center), "half_range": list(self.half_range)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence[float]]) -> LogScaling:
        return cls(tuple(map(float, d["center"])), tuple(map(float, d["half_range"])))


@dataclass(frozen=True)
class Dataset:
    """Positive inputs and metric values of one curve, with their log coordinates."""

    x: np.ndarray  # (n, m) raw positive inputs
    y: np.ndarray  # (n,) raw positive metric values
    x_names: tuple[str, ...]
    y_name: str
    scaling: LogScaling

    @property
    def n_points(self) -> int:
        return int(self.y.shape[0])

    @property
    def log_x(self) -> np.ndarray:
        return np.log(self.x)

    @property
    def log_y(self) -> np.ndarray:
        return np.log(self.y)

    @property
    def z(self) -> np.ndarray:
        """Standardised log inputs, shape (n, m)."""
        return self.scaling.standardise(self.log_x)


def as_columns(data: Any) -> pd.DataFrame:
    """Accept a DataFrame or a mapping of equal-length 1-D arrays (lists, tuples, Series).

    Lists keep their Python values: a list mixing ``True`` and numbers stays an object column
    and is refused by the checks below, rather than turning ``True`` into 1.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        columns = {k: _one_dimensional(k, v) for k, v in data.items()}
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k!r} has {n}" for k, n in lengths.items())
            raise ValueError(f"columns have different lengths: {shown}")
        return pd.DataFrame(columns)
    raise TypeError(
        f"data must be a pandas DataFrame or a dict of arrays, not {type(data).__name__}"
    )


def _one_dimensional(name: Any, values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy()
    try:
        shape = np.shape(values)
    except ValueError:  # nested lists of different lengths
        raise ValueError(
            f"column {name!r} must be a 1-D array, but its entries have different lengths"
        ) from None
    if len(shape) != 1:
        got = "a single value" if not shape else f"shape {shape}"
        raise ValueError(f"column {name!r} must be a 1-D array, got {got}")
    if hasattr(values, "__array__"):
        return np.asarray(values)
    return pd.Series(list(values), dtype=object).infer_objects().to_numpy()


def _where(index: pd.Index, mask: np.ndarray) -> str:
    """``at index 3, 7`` (the table's index labels; the index name when it has one)."""
    labels = index[mask].tolist()
    noun = index.name if isinstance(index.name, str) and index.name else "index"
    shown = ", ".join(map(str, labels[:5])) + (f" and {len(labels) - 5} more" * (len(labels) > 5))
    return f"at {noun} {shown}"


def _parse_numbers(col: pd.Series, name: Any) -> np.ndarray:
    """Entries of an object, string or categorical column as floats, or a ValueError.

    Numbers and strings that read as numbers (``"1e3"``, as a CSV reader would read them)
    are accepted; missing entries become NaN (refused by the next check, with their rows);
    anything else (words, booleans, complex numbers, lists) is refused by value.
    """
    out = np.empty(len(col))
    bad = np.zeros(len(col), dtype=bool)
    for i, v in enumerate(col.astype(object).to_numpy()):
        try:
            if np.ndim(v) != 0 or isinstance(v, bool | np.bool_ | complex | np.complexfloating):
                raise TypeError
            out[i] = np.nan if pd.isna(v) else float(v)
        except (TypeError, ValueError):
            bad[i] = True
    if bad.any():
        values = col.astype(object).to_numpy()[bad]
        shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:5])
        shown += f" and {len(values) - 5} more" * (len(values) > 5)
        raise ValueError(
            f"column {name!r} has {int(bad.sum())} value(s) that are not numbers: {shown} "
            f"({_where(col.index, bad)}); fix them or convert the column before fitting"
        )
    return out


def _numeric_column(frame: pd.DataFrame, name: Any, role: str) -> np.ndarray:
    """One input or metric column as positive, finite, normal floats, or a ValueError."""
    if name not in frame.columns:
        raise ValueError(
            f"unknown {role} column {name!r}; the table has columns {list(frame.columns)}"
        )
    copies = int(np.sum(frame.columns == name))
    if copies > 1:
        raise ValueError(
            f"column {name!r} appears {copies} times in the table; rename or drop the copies"
        )
    col = frame[name]
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise ValueError(f"column {name!r} holds booleans (dtype {dtype}), not positive numbers")
    if pd.api.types.is_complex_dtype(dtype):
        raise ValueError(f"column {name!r} holds complex numbers (dtype {dtype})")
    if pd.api.types.is_numeric_dtype(dtype):
        values = col.to_numpy(dtype=float, na_value=np.nan)
    elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        values = _parse_numbers(col, name)
    else:
        raise ValueError(
            f"column {name!r} must be numeric, but has dtype {dtype}; convert it "
            "(e.g. pd.to_numeric) before fitting"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"column {name!r} has {int(bad.sum())} NaN or infinite value(s) "
            f"({_where(col.index, bad)}); remove or fix them explicitly"
        )
    nonpos = values <= 0
    if nonpos.any():
        raise ValueError(
            f"column {name!r} has {int(nonpos.sum())} zero or negative value(s) "
            f"({_where(col.index, nonpos)}); its logarithm is taken, so every value must be > 0"
        )
    tiny = values < np.finfo(float).tiny
    if tiny.any():
        raise ValueError(
            f"column {name!r} has {int(tiny.sum())} subnormal value(s) below "
            f"{np.finfo(float).tiny:.3g} ({_where(col.index, tiny)}); their logarithm is not "
            "reliable, so rescale the column (e.g. change its units)"
        )
    return values


def validate_inputs(frame: Any, x_names: Sequence[str]) -> np.ndarray:
    """Validate the input columns of a table (for fitting or prediction); returns (n, m)."""
    frame = as_columns(frame)
    return np.column_stack([_numeric_column(frame, n, "input") for n in x_names])


def _column_names(x: Any, y: Any) -> tuple[tuple[Any, ...], Any]:
    if isinstance(x, str):
        x_names = (x,)
    elif isinstance(x, Sequence) and all(isinstance(n, str) for n in x):
        x_names = tuple(x)
    else:
        raise TypeError(f"x must be a column name or a list of column names, got {x!r}")
    if not isinstance(y, str):
        raise TypeError(f"y must be a column name, got {y!r}")
    if not x_names:
        raise ValueError("at least one input column is needed")
    repeated = sorted({n for n in x_names if x_names.count(n) > 1})
    if repeated:
        raise ValueError(f"input column(s) {repeated} are listed more than once in x")
    if y in x_names:
        raise ValueError(f"column {y!r} is given both as an input and as the metric")
    return x_names, y


class TooFewPoints(ValueError):
    """A curve with fewer points than the model has free parameters."""


def validate(
    data: Any,
    x: str | Sequence[str],
    y: str,
    *,
    min_points: int = 3,
    scaling: LogScaling | None = None,
) -> Dataset:
    """Check a table and return a :class:`Dataset` with log coordinates.

    ``min_points`` is the number of free parameters of the model about to be fitted: a curve
    with fewer points than parameters is refused, since the data could not inform them all.

    Rows may come in any order, and several rows may share an input value (repeated runs,
    e.g. seeds): both are kept as given. Extra columns are ignored. An input column whose
    values all lie within a factor ``exp(RESOLUTION)`` of each other counts as a single value,
    and a metric column that close to constant counts as constant: both are refused.
    """
    frame = as_columns(data)
    x_names, y = _column_names(x, y)
    xs = validate_inputs(frame, x_names)
    ys = _numeric_column(frame, y, "metric")
    n = ys.shape[0]
    if n == 0:
        raise ValueError("the table has no rows")
    if n < min_points:
        raise TooFewPoints(
            f"{n} point(s) is too few: this model has {min_points} free parameters and needs "
            "at least as many points; use fewer breaks or a simpler form"
        )
    log_x = np.log(xs)
    lo, hi = log_x.min(axis=0), log_x.max(axis=0)
    for name, values, a, b in zip(x_names, xs.T, lo, hi, strict=True):
        if b - a <= RESOLUTION:
            raise ValueError(
                f"input column {name!r} takes a single value ({_span(values)}); "
                "a scaling law needs inputs over a range"
            )
    if np.ptp(np.log(ys)) <= RESOLUTION:
        raise ValueError(
            f"metric column {y!r} is constant ({_span(ys)}); a constant metric carries no "
            "scaling information, so there is no trend to fit"
        )
    if scaling is None:
        scaling = LogScaling(tuple((0.5 * (lo + hi)).tolist()), tuple((0.5 * (hi - lo)).tolist()))
    return Dataset(x=xs, y=ys, x_names=x_names, y_name=y, scaling=scaling)


def _span(values: np.ndarray) -> str:
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return f"every row is {lo:.6g}"
    return f"every row is within a factor 1 + {hi / lo - 1:.1g} of {lo:.6g}"
