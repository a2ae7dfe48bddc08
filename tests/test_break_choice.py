"""breaks="auto": one fit per number of breaks, the parsimonious PSIS-LOO choice recorded."""

from __future__ import annotations

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
