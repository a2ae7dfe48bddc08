"""The leave-future-out rule of the break-rule study picks the count that forecast best."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def break_rule():
    return load_benchmark("break_rule")


class _Forecast:
    """A stand-in fit whose predictive draws sit at ``level`` times the truth line y = 1/x."""

    def __init__(self, level: float):
        self.level = level

    def samples(self, x):
        rng = np.random.default_rng(0)
        centre = self.level / np.asarray(x, float)
        return centre * np.exp(0.01 * rng.standard_normal((400, len(centre))))


def _splits(n: int = 12) -> dict:
    x = np.arange(1.0, n + 1)
    frame = pd.DataFrame({"x": x, "y": 1.0 / x})
    return {"curve": (frame.iloc[:9], frame.iloc[9:])}


def test_lfo_chooses_the_count_whose_forecast_of_the_next_points_scored_best(
    break_rule, monkeypatch
):
    seen = {}

    def fake_fit_counts(table, args, fits_dir, counts=(0, 1, 2)):
        seen["rows"] = len(table)
        # 1 break forecasts the truth; 0 and 2 miss it by 10% and 30%.
        return {
            0: {"curve": _Forecast(1.1)},
            1: {"curve": _Forecast(1.0)},
            2: {"curve": _Forecast(1.3)},
        }

    monkeypatch.setattr(break_rule, "fit_counts", fake_fit_counts)
    args = SimpleNamespace(hold=0.3, fits_dir=None)
    assert break_rule.forecast_choices(_splits(), args) == {"curve": 1}
    # The 9 inner-training points lose their largest 3 to the forecast check.
    assert seen["rows"] == 6


def test_lfo_falls_back_to_the_package_rule_where_its_choice_was_not_fitted(
    break_rule, monkeypatch
):
    monkeypatch.setattr(break_rule, "choose_breaks", lambda fits, rule: 0)
    monkeypatch.setattr(break_rule, "RULES", {"parsimonious": lambda fits: 0})
    curve = SimpleNamespace(key="curve", domain="DD")
    fits = {k: SimpleNamespace(converged=True, samples=_Forecast(1.0).samples) for k in (0, 1)}
    runs = {k: {"curve": f} for k, f in fits.items()}
    rows = break_rule.score_rules([curve], _splits(), runs, lfo={"curve": 2})
    assert rows.set_index("rule").loc["lfo", "breaks"] == 0
    rows = break_rule.score_rules([curve], _splits(), runs, lfo={"curve": 1})
    assert rows.set_index("rule").loc["lfo", "breaks"] == 1
