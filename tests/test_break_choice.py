"""breaks="auto": one fit per number of breaks, the parsimonious PSIS-LOO choice recorded."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
import bayes_unsl.break_choice as break_choice
from bayes_unsl.evaluation import parsimonious_choice, pointwise_loo
from tests.conftest import QUICK, X, Y

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::bayes_unsl.ConvergenceWarning"),  # quick settings
]


def _expected(choice: pd.DataFrame, rule: str = "parsimonious") -> str:
    """The rule applied to a recorded two-count choice: the parsimonious choice among both,
    or (converged-first) the converged fit when only one converged."""
    fitted = choice[choice["skipped"].isna()].rename(index=lambda k: f"breaks{k}")
    converged = fitted.index[fitted["converged"].astype(bool)]
    if rule == "converged-first" and len(converged) == 1:
        return converged[0]
    return parsimonious_choice(fitted, {n: 4 + 3 * int(n[-1]) for n in fitted.index})


class _Fake:
    def __init__(self, breaks: int, converged: bool):
        self.spec = SimpleNamespace(breaks=breaks, n_params=4 + 3 * breaks)
        self.converged = converged


@pytest.mark.parametrize(
    ("rule", "converged", "elpd", "chosen"),
    [
        # Every fit competes: the two-break fit leads clearly, converged or not.
        ("parsimonious", (True, True, False), (0.0, 30.0, 60.0), 2),
        ("parsimonious", (True, True, True), (28.0, 30.0, 31.0), 0),
        # Converged first: the two-break fit did not converge, so its LOO is not trusted.
        ("converged-first", (True, True, False), (0.0, 30.0, 60.0), 1),
        # Among the converged fits the simplest one not clearly worse.
        ("converged-first", (True, True, False), (28.0, 30.0, 60.0), 0),
        # None converged: the parsimonious choice among all of them.
        ("converged-first", (False, False, False), (0.0, 30.0, 60.0), 2),
        ("converged-first", (False, False, True), (0.0, 30.0, 31.0), 2),
    ],
)
def test_the_two_rules(monkeypatch, rule, converged, elpd, chosen):
    fits = {k: _Fake(k, ok) for k, ok in enumerate(converged)}
    by_name = {f"breaks{k}": v for k, v in enumerate(elpd)}

    def compare(named):
        table = pd.DataFrame({"elpd_loo": {n: by_name[n] for n in named}})
        return table.assign(dse=0.0).sort_values("elpd_loo", ascending=False)

    monkeypatch.setattr(break_choice, "loo_compare", compare)
    assert break_choice.choose_breaks(fits, rule) == chosen
    if rule == break_choice.DEFAULT_BREAK_RULE:
        assert break_choice.choose_breaks(fits) == chosen


@pytest.mark.parametrize(
    ("forecast", "chosen"),
    [
        ({0: -2.0, 1: 1.5, 2: 0.3}, 1),  # the best forecast, not the best PSIS-LOO (2)
        ({0: 1.5, 1: 1.5, 2: 1.0}, 0),  # a tie: the fewer breaks
        ({0: np.nan, 1: -np.inf, 2: 0.1}, 2),  # scores that are not finite do not compete
        ({1: 0.5}, 1),  # counts too big for the smaller runs have no score
        ({}, 0),  # nothing scored (a curve too short to split): the parsimonious choice
    ],
)
def test_the_forecast_rule_keeps_the_best_forecast(monkeypatch, forecast, chosen):
    fits = {k: _Fake(k, True) for k in range(3)}
    by_name = {"breaks0": 28.0, "breaks1": 29.0, "breaks2": 70.0}

    def compare(named):
        table = pd.DataFrame({"elpd_loo": {n: by_name[n] for n in named}})
        return table.assign(dse=0.0).sort_values("elpd_loo", ascending=False)

    monkeypatch.setattr(break_choice, "loo_compare", compare)
    if not forecast:
        by_name["breaks2"] = 30.0  # so that the parsimonious choice is 0, not 2
    assert break_choice.choose_breaks(fits, "forecast", forecast) == chosen


def test_the_forecast_split_holds_out_the_largest_inputs_together():
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6, 7, 8, 8, 9], "y": np.arange(10.0, 0, -1)})
    before, after = break_choice.forecast_split(frame, "x")
    # 30% of 10 is 3 rows (x 8, 8, 9); the tie at 8 stays together.
    assert after["x"].tolist() == [8.0, 8.0, 9.0]
    assert before["x"].max() == 7.0
    # At least 2 are held out, even where 30% rounds to fewer.
    assert len(break_choice.forecast_split(frame.iloc[:4], ["x"])[1]) == 2
    with pytest.raises(ValueError, match="takes one input"):
        break_choice.forecast_split(frame.assign(z=1.0), ["x", "z"])


def test_forecast_scores_rank_the_forecast_nearest_the_truth():
    held = pd.DataFrame({"x": [10.0, 20.0], "y": [1.0, 0.5]})
    rng = np.random.default_rng(0)

    class Forecast:
        def __init__(self, factor):
            self.factor = factor

        def samples(self, x):
            centre = self.factor * 10.0 / np.asarray(x)
            return centre * np.exp(0.05 * rng.standard_normal((500, len(centre))))

    scores = break_choice.forecast_scores(
        {0: Forecast(1.5), 1: Forecast(1.0), 2: Forecast(0.8)}, held, "x", "y"
    )
    assert max(scores, key=scores.get) == 1
    assert scores[2] > scores[0]  # 20% off beats 50% off


def test_the_command_line_offers_the_package_rules():
    from bayes_unsl.cli import BREAK_RULES

    assert BREAK_RULES == tuple(break_choice.BREAK_RULES)
    assert BREAK_RULES[0] == break_choice.DEFAULT_BREAK_RULE


@pytest.fixture(scope="module")
def auto_fit(addition):
    train, _ = addition
    return bu.fit(train, X, Y, breaks="auto", max_breaks=1, seed=2, warn=False, **QUICK)


def test_auto_fit_is_the_parsimonious_choice_and_records_it(auto_fit, tmp_path):
    choice = auto_fit.break_choice()
    assert list(choice.index) == [0, 1]
    assert choice["chosen"].sum() == 1
    assert choice.index[choice["chosen"]][0] == auto_fit.spec.breaks
    assert _expected(choice) == f"breaks{auto_fit.spec.breaks}"
    # The recorded PSIS-LOO is that of the returned fit.
    elpd = pointwise_loo(auto_fit).elpd_loo
    assert choice.loc[auto_fit.spec.breaks, "elpd_loo"] == pytest.approx(elpd)
    assert choice.loc[auto_fit.spec.breaks, "r_hat_max"] == pytest.approx(
        auto_fit.diagnostics()["r_hat_max"]
    )
    assert '"break_rule": "parsimonious"' in auto_fit.attrs["break_choice"]
    saved = bu.load(auto_fit.save(tmp_path / "auto.nc"))
    pd.testing.assert_frame_equal(saved.break_choice(), choice)


def test_auto_fit_with_the_forecast_rule_records_each_count_s_forecast(addition):
    train, _ = addition
    chosen = bu.fit(
        train, X, Y, breaks="auto", max_breaks=1, break_rule="forecast", seed=2, warn=False,
        **QUICK,
    )  # fmt: skip
    choice = chosen.break_choice()
    record = json.loads(chosen.attrs["break_choice"])
    assert record["break_rule"] == "forecast"
    # 14 points: the largest 4 (30%, rounded) forecast from the other 10.
    assert (record["forecast"]["fitted"], record["forecast"]["held_out"]) == (10, 4)
    scores = choice["forecast_lpd"]
    assert scores.notna().all()
    assert chosen.spec.breaks == scores.idxmax()
    # The forecast fits' time is counted with the choice.
    assert record["seconds_all_fits"] > record["forecast"]["seconds"] > 0


def test_fit_many_forecast_rule_falls_back_where_a_curve_is_too_short_to_split(addition):
    train, _ = addition
    table = pd.concat(
        [train.assign(curve="full"), train.iloc[:5].assign(curve="five")], ignore_index=True
    )
    fits = bu.fit_many(
        table, "curve", X, Y, breaks="auto", max_breaks=1, break_rule="forecast", seed=3,
        warn=False, **QUICK,
    )  # fmt: skip
    full = json.loads(fits["full"].attrs["break_choice"])
    assert set(fits["full"].break_choice()["forecast_lpd"].notna()) == {True}
    assert full["forecast"]["held_out"] == 4 and "fallback" not in full["forecast"]
    # 5 points: 2 held out leave 3, too few for any count; the parsimonious choice is kept.
    five = json.loads(fits["five"].attrs["break_choice"])
    assert five["forecast"]["fallback"] == "parsimonious"
    assert "too few" in five["forecast"]["note"]
    assert fits["five"].spec.breaks == 0


def test_the_forecast_rule_refuses_several_inputs_before_fitting():
    table = pd.DataFrame({"n": [1.0, 2, 3, 4, 5, 6], "d": [1.0, 2, 3, 4, 5, 6], "y": np.ones(6)})
    for fitter in (bu.fit, lambda *a, **k: bu.fit_many(table.assign(g="a"), "g", *a[1:], **k)):
        with pytest.raises(ValueError, match="takes one input"):
            fitter(table, ["n", "d"], "y", form="unsl", breaks="auto", break_rule="forecast")


def test_fits_with_given_breaks_record_no_choice(quick_fit):
    assert quick_fit.break_choice() is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"breaks": 1, "max_breaks": 2}, TypeError, "max_breaks applies to breaks='auto'"),
        ({"breaks": 1, "break_rule": "parsimonious"}, TypeError, "break_rule applies to"),
        ({"breaks": "auto", "break_rule": "best"}, ValueError, "break_rule must be one of"),
        ({"breaks": "auto", "form": "chinchilla"}, ValueError, "needs a form with breaks"),
        ({"breaks": "auto", "max_breaks": 0}, ValueError, "max_breaks must be a positive"),
        ({"breaks": "auto", "max_breaks": 1.5}, ValueError, "max_breaks must be a positive"),
    ],
)
def test_auto_breaks_refuses_bad_options(addition, kwargs, error, message):
    train, _ = addition
    with pytest.raises(error, match=message):
        bu.fit(train, X, Y, **kwargs)
    with pytest.raises(error, match=message):
        bu.fit_many(train.assign(curve="a"), "curve", X, Y, **kwargs)


def test_fit_many_chooses_per_group_and_skips_counts_too_big_for_a_curve(
    addition, tmp_path, monkeypatch
):
    train, _ = addition
    table = pd.concat(
        [
            train.assign(curve="full"),
            train.iloc[:5].assign(curve="five"),  # 0 breaks: 4 parameters; 1 break: 7
            train.iloc[:2].assign(curve="lonely"),  # too few for any count
        ],
        ignore_index=True,
    )
    out = tmp_path / "auto"
    # Every fit counted as unconverged: the one warning must name this file, not the package.
    monkeypatch.setattr(bu.Fit, "converged", property(lambda self: False))
    with pytest.warns(bu.ConvergenceWarning, match="did not converge") as caught:
        fits = bu.fit_many(
            table, "curve", X, Y, breaks="auto", max_breaks=1, break_rule="converged-first",
            seed=3, out=out, **QUICK,
        )  # fmt: skip
    monkeypatch.undo()
    ours = [w for w in caught if issubclass(w.category, bu.ConvergenceWarning)]
    assert [w.filename for w in ours] == [__file__], [str(w.message) for w in caught]
    assert list(fits) == ["full", "five"]
    assert "too few" in fits.errors["lonely"]
    five = fits["five"].break_choice()
    assert fits["five"].spec.breaks == 0
    assert five.loc[0, "chosen"] and five.loc[1, "skipped"].startswith("invalid data")
    assert five.index[five["chosen"]].tolist() == [0]  # a boolean column, skipped rows too
    full = fits["full"].break_choice()
    assert _expected(full, "converged-first") == f"breaks{fits['full'].spec.breaks}"
    assert '"break_rule": "converged-first"' in fits["full"].attrs["break_choice"]
    table = fits.diagnostics()
    assert list(table["curve"]) == ["full", "five", "lonely"]
    assert table["breaks"].tolist()[1:] == [0, pd.NA]
    assert table["breaks"].dtype == "Int64"
    # Every count is saved apart (a rerun resumes from them), the choices at the top.
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"breaks0", "breaks1"}
    again = bu.load_many(out)
    assert list(again) == ["full", "five"]
    np.testing.assert_array_equal(again["full"].samples([800.0]), fits["full"].samples([800.0]))
    pd.testing.assert_frame_equal(again["full"].break_choice(), full)


def test_the_command_line_summary_says_how_the_breaks_were_chosen(auto_fit, quick_fit):
    from bayes_unsl.cli import _chosen_how

    assert _chosen_how(auto_fit) == " (chosen by PSIS-LOO among 0, 1, parsimonious rule)"
    assert _chosen_how(quick_fit) == ""
