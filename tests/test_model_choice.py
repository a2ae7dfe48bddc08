"""PSIS-LOO selection and stacking over fits of one curve with different numbers of breaks."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.evaluation import (
    loo_compare,
    parsimonious_choice,
    select_by_loo,
    stacked_samples,
    stacking_counts,
)
from tests.conftest import QUICK, X, Y

NEW_X = [800.0, 864.0, 928.0]


@pytest.fixture(scope="module")
def fits(addition, quick_fit):
    train, _ = addition
    zero = bu.fit(train, X, Y, breaks=0, seed=1, warn=False, **QUICK)
    return {"bnsl0": zero, "bnsl1": quick_fit}


@pytest.fixture(scope="module")
def table(fits):
    return loo_compare(fits)


def test_compare_ranks_fits_and_gives_stacking_weights(fits, table):
    assert set(table.index) == set(fits)
    assert list(table["rank"]) == [0, 1]
    assert table["elpd_loo"].is_monotonic_decreasing
    assert table["weight"].sum() == pytest.approx(1.0)
    assert (table["weight"] >= 0).all()
    assert table["pareto_k_high"].between(0, 14).all()
    assert (table["pareto_k_max"] > table["good_k"]).eq(table["pareto_k_high"] > 0).all()
    assert select_by_loo(fits, table) == table.index[0] == select_by_loo(fits)


def test_parsimonious_rule_picks_among_the_fits_by_their_size(fits, table):
    chosen = select_by_loo(fits, table, rule="parsimonious")
    assert chosen in fits
    behind = table["elpd_loo"].max() - table.loc["bnsl0", "elpd_loo"]
    clearly_worse = behind > max(4.0, 2.0 * table.loc["bnsl0", "dse"])
    assert chosen == ("bnsl1" if clearly_worse else "bnsl0")
    with pytest.raises(ValueError, match="rule must be"):
        select_by_loo(fits, table, rule="simplest")


def _comparison(elpd: dict[str, float], dse: dict[str, float]) -> pd.DataFrame:
    table = pd.DataFrame({"elpd_loo": elpd, "dse": dse})
    return table.sort_values("elpd_loo", ascending=False)


SIZES = {"bnsl0": 4, "bnsl1": 7, "bnsl2": 10}


@pytest.mark.parametrize(
    ("elpd", "dse", "chosen"),
    [
        # Ahead by less than 4: a small difference, the simplest fit is kept.
        ((10.0, 13.5, 13.9), (0.5, 0.3, 0.0), "bnsl0"),
        # Ahead by more than 4 but within 2 standard errors: still not clearly better.
        ((10.0, 16.0, 16.5), (3.5, 0.2, 0.0), "bnsl0"),
        # Clearly better than no break; the second break adds too little.
        ((10.0, 30.0, 32.0), (5.0, 1.5, 0.0), "bnsl1"),
        # The second break clearly pays.
        ((10.0, 30.0, 45.0), (8.0, 4.0, 0.0), "bnsl2"),
        # The simplest fit is also the best.
        ((20.0, 19.0, 18.0), (0.0, 0.5, 1.0), "bnsl0"),
    ],
)
def test_parsimonious_choice_needs_a_clear_gain_for_each_break(elpd, dse, chosen):
    table = _comparison(dict(zip(SIZES, elpd, strict=True)), dict(zip(SIZES, dse, strict=True)))
    assert parsimonious_choice(table, SIZES) == chosen


def test_parsimonious_choice_refuses_unknown_sizes_and_bad_bars():
    table = _comparison({"bnsl0": 1.0, "bnsl1": 2.0}, {"bnsl0": 1.0, "bnsl1": 0.0})
    with pytest.raises(ValueError, match=r"no complexity given for fit\(s\) \['bnsl1'\]"):
        parsimonious_choice(table, {"bnsl0": 4})
    with pytest.raises(ValueError, match="must be >= 0"):
        parsimonious_choice(table, SIZES, margin=-1.0)
    # With no margin at all the rule is the plain best.
    assert parsimonious_choice(table, SIZES, margin=0.0, se_multiple=0.0) == "bnsl1"
    with pytest.raises(ValueError, match="log scale"):
        parsimonious_choice(table.assign(scale="deviance"), SIZES)
    # A fit without a finite estimate is never chosen; none at all is an error.
    broken = table.assign(elpd_loo=[np.nan, 1.0])
    assert parsimonious_choice(broken, SIZES) == broken.index[1]
    with pytest.raises(ValueError, match="no fit has a finite"):
        parsimonious_choice(table.assign(elpd_loo=np.nan), SIZES)


def test_compare_refuses_fits_of_different_data(quick_fit):
    idata = copy.deepcopy(quick_fit.idata)
    idata.observed_data["log_y"] = idata.observed_data["log_y"] + 0.1
    with pytest.raises(ValueError, match="different observations"):
        loo_compare({"a": quick_fit, "b": bu.Fit(idata)})
    with pytest.raises(ValueError, match="no fits"):
        loo_compare({})


def test_compare_takes_other_inputs_of_the_same_observations(quick_fit):
    """Models of the same measurements through other inputs (CF against DC) are compared;
    a shared input column must hold the same values."""
    renamed = copy.deepcopy(quick_fit.idata)
    renamed.attrs["x_names"] = json.dumps(["another_input"])
    renamed.constant_data["x"] = renamed.constant_data["x"] * 3.0
    table = loo_compare({"a": quick_fit, "b": bu.Fit(renamed)})
    assert set(table.index) == {"a", "b"}
    shifted = copy.deepcopy(quick_fit.idata)
    shifted.constant_data["x"] = shifted.constant_data["x"] * 3.0
    with pytest.raises(ValueError, match=rf"share input column\(s\) \['{X}'\]"):
        loo_compare({"a": quick_fit, "b": bu.Fit(shifted)})


def test_a_single_fit_gets_all_the_weight(quick_fit):
    table = loo_compare({"only": quick_fit})
    assert table.loc["only", "weight"] == pytest.approx(1.0)


def test_stacked_draws_are_reproducible_and_follow_the_weights(fits):
    n = 3 * 200
    a = stacked_samples(fits, {"bnsl0": 1, "bnsl1": 2}, NEW_X, seed=5, n_draws=n)
    b = stacked_samples(fits, {"bnsl0": 1, "bnsl1": 2}, NEW_X, seed=5, n_draws=n)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (n, 3)
    assert not np.array_equal(a, stacked_samples(fits, {"bnsl0": 1, "bnsl1": 2}, NEW_X, seed=6))
    from_zero = _rows_in(a, fits["bnsl0"].samples(NEW_X))
    from_one = _rows_in(a, fits["bnsl1"].samples(NEW_X))
    assert from_zero.sum() == n // 3 and from_one.sum() == 2 * n // 3
    assert not np.any(from_zero & from_one)


def test_a_weight_of_one_gives_that_fit_alone(fits, table):
    draws = stacked_samples(fits, {"bnsl1": 1.0}, NEW_X, seed=0)
    assert draws.shape == fits["bnsl1"].samples(NEW_X).shape
    assert _rows_in(draws, fits["bnsl1"].samples(NEW_X)).all()
    mixed = stacked_samples(fits, table["weight"], NEW_X, seed=0)
    assert mixed.shape == draws.shape and np.all(np.isfinite(mixed) & (mixed > 0))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"bnsl0": -1.0, "bnsl1": 2.0}, "non-negative"),
        ({"bnsl0": 0.0, "bnsl1": 0.0}, "not all zero"),
        ({"bnsl0": np.nan}, "finite"),
        ({"bnsl7": 1.0}, "not given"),
    ],
)
def test_bad_weights_are_refused(fits, weights, message):
    with pytest.raises(ValueError, match=message):
        stacked_samples(fits, weights, NEW_X)


def test_counts_add_up_to_the_draws():
    counts = stacking_counts({"a": 0.5, "b": 0.3, "c": 0.2}, 7)
    assert sum(counts.values()) == 7
    assert counts == {"a": 4, "b": 2, "c": 1}
    assert stacking_counts({"a": 1.0, "b": 0.0}, 5) == {"a": 5, "b": 0}


def _rows_in(draws: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Which rows of ``draws`` are rows of ``pool`` (exact float match)."""
    rows = {tuple(r) for r in pool}
    return np.array([tuple(r) in rows for r in draws])
