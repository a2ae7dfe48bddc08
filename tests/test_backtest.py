"""Backtests: leave-future-out splits, refits, and scores of the forecasts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.backtest import AS_FITTED, backtest, ordering_key
from bayes_unsl.cli import main
from bayes_unsl.evaluation import future_split
from tests.conftest import QUICK, X, Y, load_benchmark

NO_BREAK = {"no further break": {"rate": 0.0}}


# -- the split rule -----------------------------------------------------------------------


def test_future_split_holds_out_the_largest_scales_and_keeps_ties_together():
    frame = pd.DataFrame({"x": [3, 1, 5, 2, 5, 3, 4, 5], "y": list("abcdefgh")})  # y unread
    train, held = future_split(frame, frame["x"], 0.25)  # 2 rows asked, 3 tie at 5
    assert sorted(held["x"]) == [5, 5, 5] and sorted(train["x"]) == [1, 2, 3, 3, 4]
    train, held = future_split(frame, frame["x"], 0.5)
    assert sorted(held["x"]) == [4, 5, 5, 5]
    assert list(train["y"]) == ["a", "b", "d", "f"]  # rows keep their order
    _, held = future_split(frame, frame["x"], 0.01, min_heldout=4)
    assert len(held) == 4
    # In decades: the rows within log10(5 / 3) = 0.22 decades of the largest.
    _, held = future_split(frame, frame["x"], 0.25, unit="decades")
    assert sorted(held["x"]) == [3, 3, 4, 5, 5, 5]
    with pytest.raises(ValueError, match="1 row"):
        future_split(frame.iloc[:3], frame["x"].iloc[:3], 0.05, unit="decades", min_heldout=2)
    with pytest.raises(ValueError, match="every row is held out"):
        future_split(frame, frame["x"], 1.0, unit="decades")
    with pytest.raises(ValueError, match="unit must be one of"):
        future_split(frame, frame["x"], 0.3, unit="rows")


@pytest.mark.parametrize(
    ("key", "holdout", "message"),
    [
        ([1, 2, 3, 4], 0.0, "strictly between 0 and 1"),
        ([1, 2, 3, 4], 1.0, "strictly between 0 and 1"),
        ([1, 2, 3], 0.3, "one value per row"),
        ([1, np.nan, 3, 4], 0.3, "nan/inf"),
        ([2, 2, 2, 2], 0.3, "every row is held out"),
        ([1, 2, 3, 4], 0.9, "leaves none to fit"),
    ],
)
def test_future_split_refuses_what_it_cannot_split(key, holdout, message):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match=message):
        future_split(frame, key, holdout)


def test_ordering_key_takes_the_input_a_column_or_a_function():
    frame = pd.DataFrame({"n": [1.0, 2.0], "d": [10.0, 5.0]})
    assert list(ordering_key(frame, ["n"], None)) == [1.0, 2.0]
    assert list(ordering_key(frame, ["n", "d"], "d")) == [10.0, 5.0]
    assert list(ordering_key(frame, ["n", "d"], lambda t: 6 * t.n * t.d)) == [60.0, 60.0]
    with pytest.raises(ValueError, match="say what orders the runs"):
        ordering_key(frame, ["n", "d"], None)
    with pytest.raises(ValueError, match="column 'c' not found"):
        ordering_key(frame, ["n"], "c")
    with pytest.raises(ValueError, match="one value per row"):
        ordering_key(frame, ["n"], lambda t: [1.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"holdout": 1.5}, "strictly between 0 and 1"),
        ({"holdout": (0.2, 0.2)}, "repeat"),
        ({"future_breaks": {"a": {"rate": 1, "slope": 2}}}, "unknown setting"),
        ({"future_breaks": {AS_FITTED: {"rate": 1}}}, "names the fit's own"),
        ({"future_breaks": NO_BREAK, "form": "m4"}, "forms with breaks"),
        ({"group": "curve"}, "group column 'curve' not found"),
        ({"min_heldout": 0}, "min_heldout"),
        ({"holdout_unit": "rows"}, "holdout_unit must be one of"),
        ({"holdout": -0.5, "holdout_unit": "decades"}, "must lie above 0"),
    ],
)
def test_backtest_refuses_bad_settings_before_fitting(addition, kwargs, message):
    with pytest.raises(ValueError, match=message):
        backtest(addition[0], X, Y, **kwargs)


def test_backtest_refuses_bad_values_anywhere(addition):
    frame = addition[0].copy()
    frame.loc[13, Y] = np.nan  # a held-out row: checked all the same
    with pytest.raises(ValueError, match=Y):
        backtest(frame, X, Y)


# -- one curve ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curve_backtest():
    frame = bu.datasets.load("four_digit_addition")
    return backtest(frame, X, Y, holdout=0.2, future_breaks=NO_BREAK, seed=2, warn=False, **QUICK)


def test_one_curve_is_refitted_on_its_smaller_runs(curve_backtest):
    (part,) = curve_backtest.parts
    assert len(part.train) == 14 and len(part.heldout) == 3
    assert part.train[X].max() < part.heldout[X].min()
    assert part.fit.idata.observed_data["log_y"].size == 14


def test_scores_agree_with_the_predictions_they_come_from(curve_backtest):
    scores = curve_backtest.scores().set_index("variant")
    points = curve_backtest.predictions()
    assert set(scores.index) == {AS_FITTED, "no further break"}
    for variant, rows in points.groupby("variant"):
        for level in (50, 90):
            inside = (rows[f"lower_{level}"] <= rows["observed"]) & (
                rows["observed"] <= rows[f"upper_{level}"]
            )
            assert scores.loc[variant, f"coverage_{level}"] == pytest.approx(inside.mean())
        rmsle = np.sqrt(np.mean(rows["log_error"] ** 2))
        assert scores.loc[variant, "rmsle"] == pytest.approx(rmsle)
    summary = curve_backtest.summary().set_index("variant")
    for column in ("coverage_50", "coverage_90", "rmsle", "lpd", "msce"):
        assert summary[column].to_dict() == pytest.approx(scores[column].to_dict())


def test_variants_predict_from_the_same_refit(curve_backtest):
    (part,) = curve_backtest.parts
    points = curve_backtest.predictions()
    variant = points[points["variant"] == "no further break"]
    expected = part.fit.with_future_break(rate=0.0).samples(part.heldout[[X]])
    np.testing.assert_allclose(variant["median"], np.median(expected, axis=0))
    as_fitted = points[points["variant"] == AS_FITTED]
    np.testing.assert_allclose(
        as_fitted["median"], np.median(part.fit.samples(part.heldout[[X]]), 0)
    )


def test_a_saved_backtest_carries_what_reproduces_it(curve_backtest, tmp_path):
    out = curve_backtest.save(tmp_path / "bt", command="python make_backtest.py")
    names = {p.name for p in out.iterdir()}
    assert names == {
        "backtest.md",
        "summary.csv",
        "scores.csv",
        "predictions.csv",
        "reliability.png",
        "data.csv",
        "settings.json",
    }
    settings = json.loads((out / "settings.json").read_text())
    assert settings["fit_options"]["seed"] == 2 and settings["holdouts"] == [0.2]
    assert settings["versions"]["bayes_unsl"] == bu.__version__
    data = pd.read_csv(out / "data.csv")
    pd.testing.assert_frame_equal(data, curve_backtest.data, check_dtype=False)
    text = (out / "backtest.md").read_text()
    assert "python make_backtest.py" in text and "## Pooled over curves" in text


# -- many curves ----------------------------------------------------------------------------


def test_many_curves_are_pooled_and_short_ones_listed(addition):
    frame = bu.datasets.load("double_descent")
    two = frame[frame["task"].isin(frame["task"].unique()[:2])]
    first = two[two["task"] == two["task"].iloc[0]]
    one, pair = first.iloc[:1].assign(task="one row"), first.iloc[:2].assign(task="two rows")
    data = pd.concat([two, one, pair], ignore_index=True)
    result = backtest(
        data, "x_value", "metric_value", group="task", holdout=0.3, breaks=0, warn=False, **QUICK
    )
    assert set(result.errors) == {(0.3, "one row"), (0.3, "two rows")}
    assert "leaves none to fit" in result.errors[(0.3, "one row")]  # the split
    assert "too few" in result.errors[(0.3, "two rows")]  # the fit: 1 point left
    scores = result.scores()
    assert len(scores) == 2 and not {"one row", "two rows"} & set(scores["task"])
    (summary,) = result.summary().to_dict(orient="records")
    assert summary["curves"] == 2 and summary["n_test"] == scores["n_test"].sum()
    assert summary["coverage_90_lo"] <= summary["coverage_90"] <= summary["coverage_90_hi"]
    hits = (scores["coverage_90"] * scores["n_test"]).sum()
    assert summary["coverage_90"] == pytest.approx(hits / scores["n_test"].sum())


# -- the command line -----------------------------------------------------------------------


def test_backtest_command_writes_its_folder(tmp_path, capsys):
    csv = tmp_path / "curve.csv"
    bu.datasets.load("four_digit_addition").to_csv(csv, index=False)
    out = tmp_path / "bt"
    args = ["backtest", str(csv), "--x", X, "--y", Y, "--out", str(out), "--holdout", "0.2"]
    args += ["--future-break", "0,0", "--chains", "2", "--warmup", "200", "--draws", "200"]
    code = main([*args, "--retries", "0", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code in (0, 3) and (code == 3) == (payload["not_converged"] > 0)
    assert [r["variant"] for r in payload["summary"]] == [AS_FITTED, "future break 0,0"]
    assert (out / "backtest.md").exists() and (out / "reliability.png").exists()


@pytest.mark.parametrize("value", ["2", "a,b", "1,-2", "1,2,3,4"])
def test_backtest_command_refuses_a_bad_future_break(tmp_path, value, capsys):
    with pytest.raises(SystemExit):
        main(
            ["backtest", "x.csv", "--x", "x", "--y", "y", "--out", str(tmp_path)]
            + ["--future-break", value]
        )
    assert "RATE,SLOPE_SD" in capsys.readouterr().err


# -- the validity study's verdict -----------------------------------------------------------


def test_the_validity_verdict_counts_agreeing_groups_and_the_rank_correlation():
    study = load_benchmark("backtest_validity")
    pooled = pd.DataFrame(
        {
            "group": ["IC", "IC", "DD", "DD", "NLP", "NLP", "addition", "addition"],
            "split": ["inner", "outer"] * 4,
            "coverage_90": [0.6, 0.7, 0.9, 0.95, 0.9, 0.5, 0.2, 0.3],
        }
    )
    for level in (50, 80, 95):
        pooled[f"coverage_{level}"] = pooled["coverage_90"]
    rows = pd.DataFrame(
        {
            "curve": ["a", "a", "b", "b", "c", "c"],
            "split": ["inner", "outer"] * 3,
            "coverage_90": [0.1, 0.2, 0.5, 0.6, 0.9, 1.0],
        }
    )
    lines, met = study.verdicts(pooled, rows)
    assert met  # IC, DD, addition agree; NLP does not; rank correlation 1
    assert "NLP: inner 90% coverage 0.90, outer 0.50: opposite sides" in lines[2]
    assert "above outer at the 90% level in 1 of 4 groups (mean difference +0.04)" in lines[6]
    rows.loc[rows["split"] == "outer", "coverage_90"] = [1.0, 0.6, 0.2]
    assert not study.verdicts(pooled, rows)[1]  # correlation -1


def test_a_multi_input_table_is_ordered_by_the_scale_given():
    from tests.test_form_models import cf_table

    table = cf_table()
    compute = 6 * table["N"] * table["D"]
    result = backtest(
        table,
        ["N", "D"],
        "loss",
        by=lambda d: 6 * d.N * d.D,
        holdout=0.25,
        form="chinchilla",
        warn=False,
        **QUICK,
    )
    (part,) = result.parts
    assert (6 * part.train["N"] * part.train["D"]).max() < compute.max()
    assert (6 * part.heldout["N"] * part.heldout["D"]).min() >= np.quantile(compute, 0.7)
    points = result.predictions()
    assert list(points.columns[2:5]) == ["N", "D", "observed"]
    assert result.summary()["n_test"].item() == len(part.heldout)


def test_decades_ahead_is_how_far_the_held_out_runs_reach(curve_backtest):
    (part,) = curve_backtest.parts
    expected = np.log10(part.heldout[X].max() / part.train[X].max())
    assert curve_backtest.scores()["decades_ahead"].tolist() == pytest.approx([expected] * 2)
    assert curve_backtest.summary()["decades_ahead"].tolist() == pytest.approx([expected] * 2)


def test_a_report_shows_the_backtest_beside_the_forecast(curve_backtest, tmp_path):
    (part,) = curve_backtest.parts
    text = bu.report(part.fit, tmp_path / "r.html", backtest=curve_backtest).read_text()
    section = text[text.index('<section id="backtest">') :]
    section = section[: section.index("</section>")]
    assert "Backtest on runs already made" in section and "data:image/png;base64," in section
    assert ("Refits not converged" in section) == (not part.fit.converged)
    assert "no further break" in section and "decades_ahead" in section
    other = bu.fit(part.train.assign(loss=part.train[Y]), X, "loss", warn=False, **QUICK)
    with pytest.raises(ValueError, match="the backtest scores 'test_cross_entropy'"):
        bu.report(other, tmp_path / "s.html", backtest=curve_backtest)
    saved = curve_backtest.save(tmp_path / "bt")
    again = bu.report(part.fit, tmp_path / "t.html", backtest=saved).read_text()
    again = again[again.index('<section id="backtest">') :]
    assert again[: again.index("</section>")].count("<tr>") == section.count("<tr>")
    fit_path = part.fit.save(tmp_path / "fit.nc")
    code = main(
        ["report", str(fit_path), "--backtest", str(saved), "--out", str(tmp_path / "c.html")]
    )
    assert code in (0, 3) and '<section id="backtest">' in (tmp_path / "c.html").read_text()
    with pytest.raises(ValueError, match="not a saved backtest: it lacks summary.csv"):
        (saved / "summary.csv").unlink()
        bu.report(part.fit, tmp_path / "s.html", backtest=saved)
    with pytest.raises(TypeError, match="must be a bayes_unsl.Backtest"):
        bu.report(part.fit, tmp_path / "s.html", backtest=curve_backtest.summary())
    assert not (tmp_path / "s.html").exists()


def test_a_holdout_in_decades_forecasts_that_far(addition):
    frame = bu.datasets.load("four_digit_addition")
    result = backtest(frame, X, Y, holdout=0.1, holdout_unit="decades", warn=False, **QUICK)
    (part,) = result.parts
    largest = frame[X].max()
    assert (part.heldout[X] >= largest / 10**0.1).all()
    assert (part.train[X] < largest / 10**0.1).all()
    assert 0.1 < result.scores()["decades_ahead"].item() < 0.2  # the last fitted run is below
    assert "holdout in decades" in result.to_markdown()
