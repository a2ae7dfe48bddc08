"""The multivariate benchmark judges its coverage target with the held-out rows it has."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def multivariate():
    return load_benchmark("multivariate")


def test_least_coverage_gap_follows_from_the_number_of_rows(multivariate):
    # 3 rows: coverage 0, 1/3, 2/3 or 1; 50% is 1/6 from the nearest.
    assert multivariate.least_coverage_gap(3) == pytest.approx(1 / 6)
    assert multivariate.least_coverage_gap(12) == pytest.approx(0.05 - 1 / 60)
    assert multivariate.least_coverage_gap(20) == pytest.approx(0.0)


def test_target_lines_say_when_the_rows_cannot_meet_the_coverage_target(multivariate):
    def rows(n_test):
        return dict(
            task=f"t{n_test}",
            method="unsl",
            n_test=n_test,
            rmsle=0.1,
            coverage_50=0.5,
            coverage_80=0.8,
            coverage_90=0.9,
            coverage_95=0.95,
            r_hat_max=1.0,
            converged=n_test > 3,
            divergences=0 if n_test > 3 else 2,
            seconds=1.0,
        )

    lines = multivariate.target_lines(pd.DataFrame([rows(3), rows(40)]))
    # The target's R-hat and the package's fuller checks are judged apart.
    rhat = next(line for line in lines if line.startswith("- t3: unsl R-hat"))
    assert "(at most 1.01, the target" in rhat and "NOT passed, 2 divergences" in rhat
    few = next(line for line in lines if line.startswith("- t3: unsl coverage"))
    many = next(line for line in lines if line.startswith("- t40: unsl coverage"))
    assert "unattainable with 3 held-out rows" in few
    assert "unattainable" not in many and "(within 0.075 of nominal)" in many


def test_paired_verdict_adopts_only_a_variant_better_by_msce_and_no_worse_by_lpd(multivariate):
    rows = [
        ("a", "unsl", "normal", 0.02, 1.0),
        ("b", "unsl", "normal", 0.04, 2.0),
        ("a", "unsl", "gp", 0.01, 1.2),  # better in both
        ("b", "unsl", "gp", 0.03, 1.8),
        ("a", "unsl", "other", 0.01, 0.5),  # lower MSCE, lower LPD
        ("b", "unsl", "other", 0.03, 1.0),
        ("c", "cf", "other", 0.0, 9.0),  # a pair the baseline lacks is not counted
    ]
    table = pd.DataFrame(rows, columns=["task", "method", "likelihood", "msce", "lpd"])
    gp, other = multivariate.paired_verdict(table, "likelihood", "normal", "likelihood")
    assert gp.startswith("- likelihood gp against normal, over 2 (dataset, method) pairs")
    assert "mean MSCE 0.0200 against 0.0300, mean LPD 1.500 against 1.500" in gp
    assert "**adopt**" in gp
    assert "over 2 (dataset, method) pairs" in other and "**not** the default" in other
    numeric = table.assign(trend=table["likelihood"].map({"normal": 0.0, "gp": 0.5}))
    (line,) = multivariate.paired_verdict(numeric.dropna(), "trend", 0.0, "trend sd")
    assert line.startswith("- trend sd 0.5 against 0, over 2")


def test_variant_rows_fit_each_pair_once_per_value(multivariate, monkeypatch):
    """The inner studies' loop: every (task, method) the plan allows, once per value, with
    the plan and settings ``vary`` gives and the columns ``extras`` adds."""
    import argparse

    seen = []

    def fake_row(task, method, p, train, test, sampler, seed):
        seen.append((task.name, method, p.priors.get("tag"), sampler.get("likelihood"), seed))
        return {"msce": 0.1, "lpd": 1.0, "coverage_90": 0.9, "r_hat_max": 1.0, "seconds": 1.0}, p

    train, test = pd.DataFrame({"a": range(5)}), pd.DataFrame({"a": range(2)})
    monkeypatch.setattr(multivariate, "bayes_row", fake_row)
    monkeypatch.setattr(multivariate, "inner_split", lambda task, root: (train, test))
    args = argparse.Namespace(tasks=["gadre2024_overtraining"], data_root=None, breaks=1, seed=3)

    def vary(base, sampler, value):
        return multivariate.Plan(base.form, base.x, base.breaks, {"tag": value}), {
            **sampler,
            "likelihood": value,
        }

    table = multivariate.variant_rows(
        args, {}, ("unsl", "dc", "cf"), "likelihood", ["normal", "gp"], vary, lambda f: {"k": 7}
    )
    # Gadre has no DC inputs: that method is skipped.
    assert [(m, v) for _, m, v, _, _ in seen] == [
        ("unsl", "normal"),
        ("unsl", "gp"),
        ("cf", "normal"),
        ("cf", "gp"),
    ]
    assert all(t == "gadre2024_overtraining" and s == v and seed == 3 for t, _, v, s, seed in seen)
    assert table["likelihood"].tolist() == ["normal", "gp", "normal", "gp"]
    assert (table[["n_train", "n_test", "k"]] == [5, 2, 7]).all().all()
