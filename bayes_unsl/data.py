"""Validated datasets: user tables turned into checked arrays and log coordinates.

Every check raises a ``ValueError`` that names the column and the problem. Nothing is
silently dropped: a table with one bad row is refused, not trimmed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Dataset", "LogScaling", "as_columns", "validate", "validate_inputs"]


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
    """Accept a DataFrame or a mapping of equal-length 1-D arrays."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        lengths = {k: np.shape(v) for k, v in data.items()}
        bad = [k for k, s in lengths.items() if len(s) != 1]
        if bad:
            raise ValueError(f"columns must be 1-D arrays; not 1-D: {bad}")
        if len({s[0] for s in lengths.values()}) > 1:
            raise ValueError(f"columns have different lengths: {lengths}")
        return pd.DataFrame({k: np.asarray(v) for k, v in data.items()})
    raise TypeError(
        f"data must be a pandas DataFrame or a dict of arrays, not {type(data).__name__}"
    )


def _numeric_column(frame: pd.DataFrame, name: str, role: str) -> np.ndarray:
    if name not in frame.columns:
        raise ValueError(
            f"unknown {role} column {name!r}; the table has columns {list(frame.columns)}"
        )
    col = frame[name]
    if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
        raise ValueError(
            f"column {name!r} must be numeric, but has dtype {col.dtype}; convert it "
            "(e.g. pd.to_numeric) before fitting"
        )
    values = col.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"column {name!r} has {int(bad.sum())} NaN or infinite value(s) (rows {rows}); "
            "remove or fix them explicitly"
        )
    nonpos = values <= 0
    if nonpos.any():
        rows = np.flatnonzero(nonpos)[:5].tolist()
        raise ValueError(
            f"column {name!r} has {int(nonpos.sum())} zero or negative value(s) (rows {rows}); "
            "its logarithm is taken, so every value must be > 0"
        )
    tiny = values < np.finfo(float).tiny
    if tiny.any():
        raise ValueError(f"column {name!r} has subnormal values; its logarithm is not reliable")
    return values


def validate_inputs(frame: Any, x_names: Sequence[str]) -> np.ndarray:
    """Validate the input columns of a table (for fitting or prediction); returns (n, m)."""
    frame = as_columns(frame)
    return np.column_stack([_numeric_column(frame, n, "input") for n in x_names])


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
    """
    frame = as_columns(data)
    x_names = (x,) if isinstance(x, str) else tuple(x)
    if not x_names:
        raise ValueError("at least one input column is needed")
    if y in x_names:
        raise ValueError(f"column {y!r} is given both as an input and as the metric")
    xs = validate_inputs(frame, x_names)
    ys = _numeric_column(frame, y, "metric")
    n = ys.shape[0]
    if n < min_points:
        raise ValueError(
            f"{n} point(s) is too few: this model has {min_points} free parameters and needs "
            "at least as many points; use fewer breaks or a simpler form"
        )
    log_x = np.log(xs)
    lo, hi = log_x.min(axis=0), log_x.max(axis=0)
    flat = [name for name, a, b in zip(x_names, lo, hi, strict=True) if b - a <= 1e-12]
    if flat:
        raise ValueError(f"input column(s) {flat} take a single value; a scaling law needs a range")
    if np.ptp(np.log(ys)) <= 1e-12:
        raise ValueError(f"metric column {y!r} is constant; there is no trend to fit")
    if scaling is None:
        scaling = LogScaling(tuple((0.5 * (lo + hi)).tolist()), tuple((0.5 * (hi - lo)).tolist()))
    return Dataset(x=xs, y=ys, x_names=x_names, y_name=y, scaling=scaling)
