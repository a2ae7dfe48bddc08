"""Context / held-out splits follow the documented rules of the published benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.evaluation import (
    addition_cut_split,
    addition_split,
    benchmark_split,
    double_descent_context,
    double_descent_split,
    match_resolution,
    steepest_cut_split,
)

X = "train_dataset_size"


@pytest.mark.parametrize(
    ("n", "expected"),
    [(4, 3), (5, 3), (6, 3), (7, 4), (8, 4), (13, 7), (25, 13), (27, 14), (65, 33), (76, 38)],
)
def test_double_descent_context_size(n, expected):
    assert double_descent_context(n) == expected


def test_double_descent_context_needs_a_held_out_point():
    with pytest.raises(ValueError, match="too short"):
        double_descent_context(3)


def test_double_descent_split_sorts_by_x_and_keeps_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x_value": rng.permutation(np.arange(1.0, 12.0)), "tag": "t"})
    frame["metric_value"] = 1.0 / frame["x_value"]
    train, held = double_descent_split(frame)
    assert train["x_value"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert held["x_value"].tolist() == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert list(train.columns) == list(frame.columns)
    assert list(train.index) == list(range(6))


def test_shipped_double_descent_curves_split_as_published():
    dd = bu.datasets.load("double_descent")
    assert dd["task"].nunique() == 16
    for _, curve in dd.groupby("task"):
        train, held = double_descent_split(curve)
        n = len(curve)
        assert len(train) == max(3, min(int(0.5 * n + 0.5), n - 1))
        assert len(train) + len(held) == n
        assert train["x_value"].max() <= held["x_value"].min()


def test_addition_split_is_the_papers_14_and_3():
    addition = bu.datasets.load("four_digit_addition")
    train, held = addition_split(addition.sample(frac=1.0, random_state=1))
    assert len(train) == 14 and held[X].tolist() == [800, 864, 928]
    assert (train["split"] == "train").all() and (held["split"] == "extrapolate").all()


def test_cut_split_sees_only_the_flat_part_and_scores_the_same_points():
    addition = bu.datasets.load("four_digit_addition")
    train, held = addition_cut_split(addition)
    assert train[X].tolist() == [160, 192, 256, 320, 384]
    assert held.equals(addition_split(addition)[1])
    with pytest.raises(ValueError, match="must lie below"):
        addition_cut_split(addition, cut=800.0)
    with pytest.raises(ValueError, match="empty"):
        addition_cut_split(addition, cut=100.0)


def test_benchmark_split_uses_the_authors_column():
    addition = bu.datasets.load("four_digit_addition")
    train, held = benchmark_split(addition)
    assert len(train) == 14 and len(held) == 3
    bad = addition.assign(split=["train"] * 16 + ["test"])
    with pytest.raises(ValueError, match="'test'"):
        benchmark_split(bad)
    with pytest.raises(ValueError, match="both"):
        benchmark_split(addition.assign(split="train"))
    with pytest.raises(ValueError, match="not found"):
        benchmark_split(addition.drop(columns="split"))


def test_too_short_curves_are_refused():
    short = pd.DataFrame({X: [1.0, 2.0, 3.0], "y": [3.0, 2.0, 1.0]})
    with pytest.raises(ValueError, match="nothing is left"):
        addition_split(short)
    with pytest.raises(ValueError, match="not found"):
        double_descent_split(short)


def test_the_double_descent_dataset_is_shipped_and_aliased():
    assert "double_descent" in bu.datasets.available()
    dd = bu.datasets.load("double_descent_nslpfn")
    assert list(dd.columns) == [
        "task",
        "x_variable",
        "x_value",
        "metric",
        "metric_value",
        "point_index",
        "n_points_in_curve",
    ]
    assert len(dd) == 929 and (dd["metric_value"] > 0).all()
    assert bu.datasets.load("four_digit_addition").shape == (17, 4)


def _hinge_curve(n: int, knee: int) -> pd.DataFrame:
    """A slow power law that turns steep after point ``knee`` (0-based)."""
    log_x = np.linspace(0.0, 4.0, n)
    log_y = -0.1 * log_x - 1.5 * np.maximum(log_x - log_x[knee], 0.0)
    return pd.DataFrame({"x": np.exp(log_x), "y": np.exp(log_y)})


def test_steepest_cut_ends_the_context_where_the_steep_part_begins():
    curve = _hinge_curve(40, knee=25)
    train, held = steepest_cut_split(curve.iloc[::-1], "x", "y")
    # Every window wholly past the knee is steepest (equal up to rounding).
    assert curve["x"].iloc[25] <= train["x"].iloc[-1] <= curve["x"].iloc[40 - 4 - 1]
    assert len(train) + len(held) == 40
    assert train["x"].is_monotonic_increasing and held["x"].min() > train["x"].max()


def test_steepest_cut_keeps_the_minimum_context():
    # The knee lies inside the minimum context: the cut waits for it, and the context
    # (shallower on the whole than the part after the knee) still qualifies.
    curve = _hinge_curve(40, knee=15)
    train, _ = steepest_cut_split(curve, "x", "y", min_context=20)
    assert len(train) >= 20


def test_steepest_cut_refuses_a_curve_without_transition():
    log_x = np.linspace(0.0, 4.0, 30)
    curve = pd.DataFrame({"x": np.exp(log_x), "y": np.exp(-0.3 * log_x)})
    with pytest.raises(ValueError, match="no transition"):
        steepest_cut_split(curve, "x", "y")


def test_steepest_cut_rejects_short_curves_and_bad_values():
    with pytest.raises(ValueError, match="too short"):
        steepest_cut_split(_hinge_curve(9, knee=5), "x", "y")
    bad = _hinge_curve(40, knee=25)
    bad.loc[3, "y"] = 0.0
    with pytest.raises(ValueError, match="> 0"):
        steepest_cut_split(bad, "x", "y")
    with pytest.raises(ValueError, match="'z' not found"):
        steepest_cut_split(bad, "x", "z")


def _dense_after_sparse() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame({"x": np.exp(np.arange(10) * 0.1), "y": np.linspace(1.0, 0.5, 10)})
    # Held out: 20 points in each of the next three context-spaced windows.
    log_x = 0.9 + np.concatenate([0.001 + k * 0.1 + np.arange(20) * 0.004 for k in range(3)])
    y = np.exp(-0.5 - 0.1 * np.arange(60) / 20 + np.tile([0.05, -0.05], 30))
    return train, pd.DataFrame({"x": np.exp(log_x), "y": y, "other": 1})


def test_match_resolution_averages_windows_of_the_context_spacing():
    train, held = _dense_after_sparse()
    out = match_resolution(train, held, "x", "y")
    assert list(out.columns) == ["x", "y", "n_averaged"]
    assert out["n_averaged"].tolist() == [20, 20, 20]
    # Geometric means: the +-0.05 scatter of log y cancels within each window.
    np.testing.assert_allclose(np.log(out["y"]), -0.5 - 0.1 * (np.arange(3) + 0.475), rtol=1e-9)
    np.testing.assert_allclose(np.log(out["x"]), 0.9 + 0.001 + 0.1 * np.arange(3) + 0.038)


def test_match_resolution_refuses_what_it_cannot_average():
    train, held = _dense_after_sparse()
    with pytest.raises(ValueError, match="2 distinct x"):
        match_resolution(train.iloc[:1], held, "x", "y")
    with pytest.raises(ValueError, match="no held-out points"):
        match_resolution(train, held.iloc[:0], "x", "y")
    with pytest.raises(ValueError, match="lacks column"):
        match_resolution(train, held, "x", "loss")
    bad = held.assign(y=held["y"].where(held.index != 3, 0.0))
    with pytest.raises(ValueError, match="> 0"):
        match_resolution(train, bad, "x", "y")
