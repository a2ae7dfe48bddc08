"""Small datasets shipped with the package, and a reader for local dataset folders."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["available", "load", "read_folder"]

_SHIPPED = {
    "four_digit_addition": "four_digit_addition.csv",
    "double_descent": "double_descent.csv",
}
_ALIASES = {
    "4_digit_addition": "four_digit_addition",
    "bnsl_4digit_addition": "four_digit_addition",
    "double_descent_nslpfn": "double_descent",
}


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_SHIPPED)


def load(name: str) -> pd.DataFrame:
    """Load a shipped dataset by name (see :func:`available`; provenance in SOURCES.md).

    ``"four_digit_addition"``: one 17-point curve. ``"double_descent"``: 16 curves in long
    form, one per value of ``task`` (x in ``x_value``, y in ``metric_value``).
    """
    key = _ALIASES.get(name, name)
    if key not in _SHIPPED:
        raise ValueError(f"unknown dataset {name!r}; shipped: {available()}")
    with resources.files(__package__).joinpath(_SHIPPED[key]).open("r") as fh:
        return pd.read_csv(fh)


def read_folder(name: str, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read ``<root>/<name>/data.csv`` from a local collection of dataset folders.

    ``root`` defaults to the ``BAYES_UNSL_DATA`` environment variable. Datasets whose licence
    does not allow redistribution are read this way instead of being shipped.
    """
    root = root if root is not None else os.environ.get("BAYES_UNSL_DATA")
    if root is None:
        raise ValueError("give root= or set BAYES_UNSL_DATA to the folder holding the datasets")
    path = Path(root) / name / "data.csv"
    if not path.exists():
        raise FileNotFoundError(f"no dataset {name!r} under {root} (looked for {path})")
    return pd.read_csv(path)
