"""Bad input gets a clear error naming the column and the problem; nothing is dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_unsl.data import validate


def table(**overrides):
    base = {"n": np.geomspace(1e3, 1e6, 8), "loss": np.linspace(3.0, 2.0, 8)}
    base.update(overrides)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (table(loss=[3, 2.9, np.nan, 2.7, 2.6, 2.5, 2.4, 2.3]), "'loss' has 1 NaN or infinite"),
        (table(n=[1, 2, 3, np.inf, 5, 6, 7, 8]), "'n' has 1 NaN or infinite"),
        (table(n=[0, 2, 3, 4, 5, 6, 7, 8]), "'n' has 1 zero or negative"),
        (table(loss=[3, 2.9, -1, 2.7, 2.6, 2.5, 2.4, 2.3]), "'loss' has 1 zero or negative"),
        (table(n=[f"{v}x" for v in range(1, 9)]), "column 'n' has 8 value\\(s\\) that are not"),
        (table(loss=[2.0] * 8), "'loss' is constant"),
        (table(n=[5.0] * 8), "takes a single value"),
        (table(n=[1e-320] + list(range(2, 9))), "subnormal"),
    ],
)
def test_bad_values_are_named(frame, message):
    with pytest.raises(ValueError, match=message):
        validate(frame, "n", "loss")


def test_unknown_columns_are_named():
    with pytest.raises(ValueError, match="unknown input column 'params'"):
        validate(table(), "params", "loss")
    with pytest.raises(ValueError, match="unknown metric column 'acc'"):
        validate(table(), "n", "acc")


def test_too_few_points_for_the_parameters():
    with pytest.raises(ValueError, match="8 point\\(s\\) is too few: this model has 10"):
        validate(table(), "n", "loss", min_points=10)


def test_numbers_written_as_strings_are_read():
    ds = validate(table(n=[str(v) for v in range(1, 9)]), "n", "loss")
    assert np.array_equal(ds.x[:, 0], np.arange(1.0, 9.0))


def test_dict_input_and_mismatched_lengths():
    ds = validate({"n": [1.0, 10.0, 100.0], "loss": [3.0, 2.0, 1.5]}, "n", "loss")
    assert ds.n_points == 3
    with pytest.raises(ValueError, match="different lengths"):
        validate({"n": [1.0, 10.0, 100.0], "loss": [3.0, 2.0]}, "n", "loss")


def test_standardised_inputs_span_minus_one_to_one():
    ds = validate(table(), "n", "loss")
    assert np.isclose(ds.z.min(), -1.0) and np.isclose(ds.z.max(), 1.0)
    assert ds.x.shape == (8, 1) and ds.y.shape == (8,)
