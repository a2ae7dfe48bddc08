"""Compute-optimal allocation: the iso-cost optimiser, and its posterior on a simulated CF fit."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.allocation import (
    AllocationEdgeWarning,
    allocation_exponents,
    compute_optimal,
    iso_cost_minimum,
)
from bayes_unsl.fit import Fit
from bayes_unsl.models.spec import ModelSpec
from tests.conftest import QUICK

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
BUDGETS = np.array([1e20, 1e22, 1e24])


def closed_form(log_e, log_a_raw, log_b_raw, alpha, beta, budget):
    """N*, D* and loss of ``E + A N^-alpha + B D^-beta`` (raw counts) under 6 N D = budget."""
    g = np.exp((np.log(alpha) + log_a_raw - np.log(beta) - log_b_raw) / (alpha + beta))
    n = g * (budget / 6.0) ** (beta / (alpha + beta))
    d = (budget / 6.0) ** (alpha / (alpha + beta)) / g
    loss = np.exp(log_e) + np.exp(log_a_raw) * n**-alpha + np.exp(log_b_raw) * d**-beta
    return n, d, loss


def true_optimum(budget):
    t = TRUTH
    return closed_form(
        math.log(t["E"]), math.log(t["A"]), math.log(t["B"]), t["alpha"], t["beta"], budget
    )


def posterior_closed_form(fit: Fit, budget):
    """Closed form per draw; the model's A and B are the terms at the data centre."""
    post = fit.idata.posterior

    def flat(name):
        return post[name].transpose("chain", "draw").values.reshape(-1)

    c_n, c_d = fit.scaling.center
    alpha, beta = flat("alpha"), flat("beta")
    return closed_form(
        flat("log_e"), flat("log_a") + alpha * c_n, flat("log_b") + beta * c_d, alpha, beta, budget
    )


def cf_table(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 8), np.geomspace(1e9, 1e12, 5))
    n, d = n.ravel(), d.ravel()
    t = TRUTH
    y = t["E"] + t["A"] * n ** -t["alpha"] + t["B"] * d ** -t["beta"]
    return pd.DataFrame({"N": n, "D": d, "loss": y * np.exp(0.01 * rng.standard_normal(n.size))})


@pytest.fixture(scope="module")
def cf_fit() -> Fit:
    return bu.fit(cf_table(), ["N", "D"], "loss", form="chinchilla", seed=2, warn=False, **QUICK)


@pytest.fixture(scope="module")
def optimum(cf_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AllocationEdgeWarning)
        return compute_optimal(cf_fit, BUDGETS)


def relabelled(fit: Fit, names, form: str | None = None) -> Fit:
    """The same posterior under other input names (and form): to exercise input handling."""
    idata = fit.idata.copy()
    idata.attrs["x_names"] = json.dumps(list(names))
    center = list(fit.scaling.center) + [0.0] * (len(names) - 2)
    idata.attrs["scaling"] = json.dumps(
        {"center": center[: len(names)], "half_range": [1.0] * len(names)}
    )
    if form is not None:
        idata.attrs["spec"] = ModelSpec.build(form, 0).to_json()
    return Fit(idata)


# -- the optimiser on known functions (no sampling) ---------------------------------------


def test_iso_cost_minimum_finds_a_quadratic_minimum_exactly():
    centres = np.log([1e8, 3e9, 5e10])

    def log_loss(log_n, log_d):
        return 1.0 + 0.3 * (log_n - centres[:, None]) ** 2 + 0.0 * log_d

    budget = 1e21
    out = iso_cost_minimum(log_loss, budget, (math.log(1e6), math.log(1e12)), n_grid=41)
    np.testing.assert_allclose(out.log_n, centres, atol=1e-9)
    np.testing.assert_allclose(out.log_d, math.log(budget / 6) - centres, atol=1e-12)
    np.testing.assert_allclose(out.log_loss, 1.0, atol=1e-12)
    assert not out.at_edge.any()


def test_iso_cost_minimum_matches_the_chinchilla_closed_form():
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0.2, 0.5, 50)
    beta = rng.uniform(0.2, 0.5, 50)
    log_a, log_b = np.log(rng.uniform(100, 1000, 50)), np.log(rng.uniform(100, 1000, 50))
    log_e = np.full(50, math.log(1.7))

    def log_loss(log_n, log_d):
        c = (slice(None), None)
        reducible = np.logaddexp(log_a[c] - alpha[c] * log_n, log_b[c] - beta[c] * log_d)
        return np.logaddexp(log_e[c], reducible)

    budget = 3e22
    out = iso_cost_minimum(log_loss, budget, (math.log(1e3), math.log(1e18)))
    n, d, loss = closed_form(log_e, log_a, log_b, alpha, beta, budget)
    assert not out.at_edge.any()
    np.testing.assert_allclose(np.exp(out.log_n), n, rtol=1e-3)
    np.testing.assert_allclose(np.exp(out.log_d), d, rtol=1e-3)
    np.testing.assert_allclose(np.exp(out.log_loss), loss, rtol=1e-7)


def test_iso_cost_minimum_solves_d_for_any_increasing_cost():
    target = np.log([1e9, 1e10])

    def log_loss(log_n, log_d):  # best at a given D whatever N
        return (log_d - target[:, None]) ** 2 + 0.0 * log_n

    budget = 1e30

    def cost(n, d):  # D* = target, so N* = budget / D*^2
        return n * d**2

    out = iso_cost_minimum(log_loss, budget, (math.log(1e6), math.log(1e14)), cost=cost)
    np.testing.assert_allclose(out.log_d, target, atol=1e-6)
    np.testing.assert_allclose(out.log_n, math.log(budget) - 2 * target, atol=1e-6)


def test_iso_cost_minimum_flags_optima_at_the_edge():
    centres = np.log([1e3, 1e9, 1e20])

    def log_loss(log_n, log_d):
        return (log_n - centres[:, None]) ** 2 + 0.0 * log_d

    lo, hi = math.log(1e6), math.log(1e12)
    out = iso_cost_minimum(log_loss, 1e21, (lo, hi))
    assert out.at_edge.tolist() == [True, False, True]
    np.testing.assert_allclose(out.log_n[[0, 2]], [lo, hi])
    assert out.log_n[1] == pytest.approx(centres[1], abs=1e-9)


# -- posterior allocation of a fitted Chinchilla form --------------------------------------


@pytest.mark.slow
def test_numeric_optimum_matches_the_closed_form_draw_by_draw(cf_fit, optimum):
    draws = optimum.draws
    assert not draws["at_edge"].any()
    assert len(draws) == len(BUDGETS) * QUICK["chains"] * QUICK["draws"]
    for budget in BUDGETS:
        rows = draws[draws["budget"] == budget].sort_values("draw")
        n, d, loss = posterior_closed_form(cf_fit, budget)
        np.testing.assert_allclose(rows["N"], n, rtol=2e-3)
        np.testing.assert_allclose(rows["D"], d, rtol=2e-3)
        np.testing.assert_allclose(rows["loss"], loss, rtol=1e-6)
        np.testing.assert_allclose(rows["tokens_per_param"], rows["D"] / rows["N"], rtol=1e-9)
        np.testing.assert_allclose(6 * rows["N"] * rows["D"], budget, rtol=1e-9)


@pytest.mark.slow
def test_exponent_interval_covers_the_truth(cf_fit):
    exps = allocation_exponents(cf_fit)
    assert list(exps.columns) == ["alpha", "beta", "a", "b"]
    np.testing.assert_allclose(exps["a"] + exps["b"], 1.0)
    t = TRUTH
    a_true = t["beta"] / (t["alpha"] + t["beta"])
    lo, hi = np.quantile(exps["a"], [0.05, 0.95])
    assert lo < a_true < hi
    assert hi - lo < 0.2  # informative, not the prior


@pytest.mark.slow
def test_posterior_n_star_covers_the_true_optimum(optimum):
    table = optimum.summary()
    assert list(table.columns) == [
        "budget",
        "quantity",
        "median",
        "lower_50",
        "upper_50",
        "lower_90",
        "upper_90",
        "edge_fraction",
    ]
    assert len(table) == len(BUDGETS) * 4
    rows = table[table["budget"] == 1e22].set_index("quantity")
    n_true, d_true, _ = true_optimum(1e22)
    assert rows.loc["N", "lower_90"] < n_true < rows.loc["N", "upper_90"]
    assert rows.loc["D", "lower_90"] < d_true < rows.loc["D", "upper_90"]
    for quantity in ("N", "D", "tokens_per_param", "loss"):
        q = rows.loc[quantity]
        assert q["lower_90"] < q["lower_50"] < q["median"] < q["upper_50"] < q["upper_90"]
    assert (optimum.edge_fraction == 0).all()


@pytest.mark.slow
def test_custom_cost_equals_the_default_at_the_scaled_budget(cf_fit, optimum):
    scaled = compute_optimal(cf_fit, BUDGETS * 1.5, cost=lambda n, d: 6 * n * d * 1.5)
    cols = ["N", "D", "loss", "tokens_per_param"]
    np.testing.assert_allclose(scaled.draws[cols], optimum.draws[cols], rtol=1e-8)
    np.testing.assert_allclose(scaled.draws["budget"], optimum.draws["budget"] * 1.5)


@pytest.mark.slow
def test_optimum_in_a_tiny_span_is_flagged_at_its_edge(cf_fit):
    with pytest.warns(AllocationEdgeWarning, match="100% at budget 1e"):
        out = compute_optimal(cf_fit, 1e22, span=(1e6, 2e6), n_grid=16)
    assert out.edge_fraction.iloc[0] == 1.0
    np.testing.assert_allclose(out.draws["N"], 2e6)
    assert out.summary()["edge_fraction"].eq(1.0).all()


@pytest.mark.slow
def test_inputs_are_taken_by_name_or_index(cf_fit, optimum):
    # With 6ND symmetric in N and D, swapping the columns swaps N* and D*.
    swapped = compute_optimal(cf_fit, BUDGETS, inputs=("D", "N"))
    assert swapped.inputs == ("D", "N")
    np.testing.assert_allclose(swapped.draws["N"], optimum.draws["D"], rtol=1e-6)
    np.testing.assert_allclose(swapped.draws["D"], optimum.draws["N"], rtol=1e-6)


@pytest.mark.slow
def test_further_inputs_need_values(cf_fit, optimum):
    # The CF curve ignores a third column, so holding it anywhere leaves the optimum as is.
    three = relabelled(cf_fit, ["N", "D", "U"])
    with pytest.raises(ValueError, match=r"hold \['U'\] .*at="):
        compute_optimal(three, BUDGETS)
    held = compute_optimal(three, BUDGETS, at={"U": 1e10})
    np.testing.assert_allclose(held.draws["N"], optimum.draws["N"], rtol=1e-9)
    with pytest.raises(ValueError, match="is N or D"):
        compute_optimal(three, BUDGETS, at={"U": 1e10, "N": 1e9})
    with pytest.raises(ValueError, match="positive and finite"):
        compute_optimal(three, BUDGETS, at={"U": -1.0})
    with pytest.raises(ValueError, match="'V' is not an input"):
        compute_optimal(three, BUDGETS, at={"V": 1.0})


@pytest.mark.slow
@pytest.mark.parametrize("budget", [0.0, -1e20, float("nan"), float("inf"), [], [[1e20]], "x"])
def test_bad_budgets_are_refused(cf_fit, budget):
    with pytest.raises(ValueError, match="budget"):
        compute_optimal(cf_fit, budget)


@pytest.mark.slow
def test_bad_costs_and_options_are_refused(cf_fit):
    with pytest.raises(ValueError, match="must be positive, got -"):
        compute_optimal(cf_fit, 1e21, cost=lambda n, d: 6 * n * d - 1e21)
    with pytest.raises(ValueError, match="must be positive, got nan"):
        compute_optimal(cf_fit, 1e21, cost=lambda n, d: np.full_like(n * d, np.nan))
    with pytest.raises(ValueError, match="increasing"):
        compute_optimal(cf_fit, 1e21, cost=lambda n, d: 1e40 / d, span=(1e6, 1e9))
    with pytest.raises(ValueError, match="vectorised"):
        compute_optimal(cf_fit, 1e21, cost=lambda n, d: np.ones(3))
    with pytest.raises(TypeError, match="callable"):
        compute_optimal(cf_fit, 1e21, cost=6.0)
    with pytest.raises(ValueError, match="span"):
        compute_optimal(cf_fit, 1e21, span=(1e9, 1e6))
    with pytest.raises(ValueError, match="n_grid"):
        compute_optimal(cf_fit, 1e21, n_grid=3)
    with pytest.raises(ValueError, match="two different"):
        compute_optimal(cf_fit, 1e21, inputs=("N", 0))
    with pytest.raises(ValueError, match="out of range"):
        compute_optimal(cf_fit, 1e21, inputs=(0, 2))


@pytest.mark.slow
def test_one_input_fits_and_other_forms_are_refused(cf_fit):
    with pytest.raises(ValueError, match="at least two inputs"):
        compute_optimal(relabelled(cf_fit, ["N"]), 1e21)
    with pytest.raises(ValueError, match="'chinchilla' form, not 'bnsl'"):
        allocation_exponents(relabelled(cf_fit, ["N", "D"], form="bnsl"))
