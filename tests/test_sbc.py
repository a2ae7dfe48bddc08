"""Simulation-based calibration: the rank test can fail, and the model passes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_unsl.data import validate
from bayes_unsl.evaluation.sbc import ecdf_uniformity, rank_statistics, run_sbc, uniformity
from bayes_unsl.inference import nuts
from bayes_unsl.inference.nuts import SamplerSettings
from bayes_unsl.models import ModelSpec
from tests.conftest import X, Y


def test_rank_statistics_thin_and_count():
    draws = np.arange(100.0)[None, :]
    assert rank_statistics(np.array([50.5]), draws, n_keep=100).tolist() == [51]
    assert rank_statistics(np.array([50.5]), draws, n_keep=10).tolist() == [6]
    assert rank_statistics(np.array([-1.0]), draws, n_keep=10).tolist() == [0]


def test_uniformity_passes_uniform_ranks_and_fails_biased_ones():
    rng = np.random.default_rng(0)
    n_draws = 99
    truth = rng.normal(size=400)
    calibrated = rng.normal(size=(400, 990))  # posterior = prior, truth from the prior
    overconfident = 0.5 * rng.normal(size=(400, 990))  # too narrow
    shifted = 0.5 + rng.normal(size=(400, 990))
    ranks = pd.DataFrame(
        {
            "calibrated": rank_statistics(truth, calibrated, n_draws),
            "overconfident": rank_statistics(truth, overconfident, n_draws),
            "shifted": rank_statistics(truth, shifted, n_draws),
        }
    )
    p = uniformity(ranks, n_draws).set_index("parameter")["p_value"]
    assert p["calibrated"] > 0.01
    assert p["overconfident"] < 1e-6 and p["shifted"] < 1e-6
    ecdf = ecdf_uniformity(ranks, n_draws, prob=0.99).set_index("parameter")
    assert ecdf.loc["calibrated", "ecdf_inside"] and ecdf.loc["calibrated", "ecdf_excess"] == 0
    assert not ecdf.loc["overconfident", "ecdf_inside"] and not ecdf.loc["shifted", "ecdf_inside"]
    assert ecdf.loc["shifted", "ecdf_excess"] > 0.05


def test_the_ecdf_band_holds_uniform_ranks_about_as_often_as_it_says():
    """99% simultaneous bands: of 200 sets of uniform ranks, about 2 leave the band."""
    rng = np.random.default_rng(1)
    ranks = pd.DataFrame({f"p{i}": rng.integers(0, 100, size=100) for i in range(200)})
    inside = ecdf_uniformity(ranks, 99, prob=0.99)["ecdf_inside"]
    assert inside.mean() >= 0.95


@pytest.mark.slow
def test_bnsl_posterior_ranks_are_uniform(addition):
    """Small SBC of the BNSL without breaks at the 14 inputs of the addition curve."""
    train, _ = addition
    data = validate(train, X, Y)
    settings = SamplerSettings(chains=2, warmup=250, draws=250, map_starts=8)
    result = run_sbc(data, ModelSpec.build("bnsl", 0), simulations=60, settings=settings, n_keep=29)
    table = result.uniformity(bins=6)
    assert list(table.parameter) == ["limit_fraction", "m_centre", "c0_y", "log_sigma"]
    # Bonferroni over the parameters at an overall 1% level.
    assert (table.p_value > 0.01 / len(table)).all(), table
    assert (result.divergences > 0).mean() <= 0.2


def test_batches_of_simulations_share_one_compiled_program(addition):
    """Every batch reuses the first batch's programs (a new model function per batch had
    compiled and kept new programs for each one)."""
    train, _ = addition
    data = validate(train, X, Y)
    settings = SamplerSettings(chains=2, warmup=10, draws=10, map_starts=2)
    before = set(nuts._PROGRAMS)
    run_sbc(data, ModelSpec.build("bnsl", 0), simulations=6, settings=settings, batch_size=2)
    assert len(set(nuts._PROGRAMS) - before) == 1


def test_the_sbc_benchmark_curve_at_other_lengths():
    """``--points N``: N log-spaced inputs over the addition curve's fitted range, y on the
    curve's log-log interpolation (the ends are its own points)."""
    from tests.conftest import load_benchmark

    sbc = load_benchmark("sbc")
    own = sbc.sbc_curve()
    assert len(own) == sbc.FITTED
    for points in (8, 30):
        curve = sbc.sbc_curve(points)
        assert len(curve) == points
        assert np.all(np.diff(np.log(curve[X])) > 0)
        assert np.allclose(np.diff(np.log(curve[X])), np.log(curve[X]).diff().iloc[1])
        for end in (0, -1):
            assert np.isclose(curve[X].iloc[end], own[X].iloc[end])
            assert np.isclose(curve[Y].iloc[end], own[Y].iloc[end])
        assert curve[Y].between(own[Y].min(), own[Y].max()).all()
    with pytest.raises(ValueError, match="at least 3"):
        sbc.sbc_curve(2)


def test_the_sbc_benchmark_adds_the_ecdf_test_to_a_saved_run_once(tmp_path):
    from tests.conftest import load_benchmark

    sbc = load_benchmark("sbc")
    rng = np.random.default_rng(2)
    ranks = pd.DataFrame({"a": rng.integers(0, 20, 80), "b": np.zeros(80, int)})
    ranks.to_csv(tmp_path / "run.csv", index=False)
    (tmp_path / "run.md").write_text("# A run\n\nIts chi-square table.\n")
    for _ in range(2):
        sbc.add_ecdf_section(tmp_path / "run.csv", keep=19)
    text = (tmp_path / "run.md").read_text()
    assert text.startswith("# A run\n\nIts chi-square table.\n\n## Simultaneous ECDF test")
    assert text.count(sbc.ECDF_HEADING) == 1
    assert "| a | True | 0 |" in text and "| b | False |" in text
    assert "Every parameter inside its band: False." in text


def test_the_sbc_benchmark_grid_for_two_input_forms():
    from tests.conftest import load_benchmark

    sbc = load_benchmark("sbc")
    grid = sbc.grid_curve()
    assert len(grid) == 25 and list(grid.columns) == [*sbc.GRID_INPUTS, "loss"]
    assert sorted(set(grid["n_params"])) == pytest.approx(np.geomspace(1e7, 1e10, 5).tolist())
    h = sbc.HOFFMANN
    corner = grid[(grid.n_params == grid.n_params.max()) & (grid.n_tokens == grid.n_tokens.max())]
    expected = h["E"] + h["A"] * 1e10 ** -h["alpha"] + h["B"] * 1e12 ** -h["beta"]
    assert corner["loss"].item() == pytest.approx(expected)
    assert (grid["loss"] > h["E"]).all()
