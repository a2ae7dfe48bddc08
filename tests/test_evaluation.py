"""Tests of bayes_unsl.evaluation: scores of predictive draws against held-out truth."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from bayes_unsl.evaluation import (
    COVERAGE_LEVELS,
    MSCE_LEVELS,
    CoverageCounts,
    central_interval,
    coverage,
    coverage_counts,
    coverage_table,
    crps,
    interval_score,
    interval_width,
    log_predictive_density,
    msce,
    pit,
    pool_coverage,
    pooled_coverage_interval,
    pooled_msce,
    rmsle,
    score_all,
    score_names,
)


def lognormal_case(seed=0, n_points=1000, n_draws=1000, sigma=0.3, shift=0.0, spread=1.0):
    """Truth y ~ LN(mu, sigma); draws ~ LN(mu + shift*sigma, spread*sigma) at each point."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-1.0, 2.0, size=n_points)
    y = np.exp(mu + sigma * rng.standard_normal(n_points))
    z = rng.standard_normal((n_draws, n_points))
    draws = np.exp(mu + shift * sigma + spread * sigma * z)
    return draws, y, mu


def lognormal_logpdf(y, mu, sigma):
    ly = np.log(y)
    return -ly - np.log(sigma) - 0.5 * np.log(2 * np.pi) - 0.5 * ((ly - mu) / sigma) ** 2


def normal_crps(y, m, s):
    z = (y - m) / s
    return s * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def energy_crps(draws, y, fair=False):
    """Brute-force energy form of the sample CRPS, O(n^2), per point."""
    n = draws.shape[0]
    e1 = np.mean(np.abs(draws - y), axis=0)
    pair = np.abs(draws[:, None, :] - draws[None, :, :]).sum(axis=(0, 1))
    e2 = pair / (n * (n - 1) if fair else n**2)
    return e1 - 0.5 * e2


# ------------------------------------------------------------------------------ coverage


def test_calibrated_draws_cover_near_nominal():
    draws, y, _ = lognormal_case()
    table = coverage_table(draws, y)
    assert set(table) == set(COVERAGE_LEVELS)
    for level, cov in table.items():
        # binomial sd with 1000 points is at most 0.016
        assert abs(cov - level) < 0.05, (level, cov)
    assert coverage(draws, y, 0.9) == table[0.9]


def test_biased_predictor_covers_less_and_scores_worse():
    draws, y, _ = lognormal_case(seed=1)
    biased, _, _ = lognormal_case(seed=1, shift=1.5)
    for level in (0.5, 0.8, 0.9, 0.95):
        assert coverage(biased, y, level) < coverage(draws, y, level) - 0.1
    assert interval_score(biased, y, 0.9) > 1.2 * interval_score(draws, y, 0.9)
    assert crps(biased, y) > crps(draws, y)
    assert rmsle(biased, y) > rmsle(draws, y)


def test_coverage_interval_is_inclusive_central_quantiles():
    # 101 equally spaced draws: linear-interpolated quantile q is exactly 1 + 100 q
    col = np.arange(1.0, 102.0)
    draws = np.column_stack([col, col, col, col])
    lo, hi = central_interval(draws, 0.9)
    np.testing.assert_allclose(lo, 6.0)
    np.testing.assert_allclose(hi, 96.0)
    y = np.array([6.0, 96.0, 5.5, 96.5])  # both ends count as covered
    assert coverage(draws, y, 0.9) == 0.5


def test_msce_small_for_calibrated_large_for_overconfident():
    draws, y, _ = lognormal_case(seed=2)
    narrow, _, _ = lognormal_case(seed=2, spread=0.25)
    assert msce(draws, y) < 0.003
    assert msce(narrow, y) > 0.1
    # by hand from the coverage counts
    c = coverage_counts(narrow, y)
    expected = np.mean((c.coverage - np.array(MSCE_LEVELS)) ** 2)
    assert msce(narrow, y) == pytest.approx(expected)


def test_pooled_msce_pools_points_not_curves():
    draws, y, _ = lognormal_case(seed=3, n_points=300, n_draws=400, spread=0.5)
    parts = [(draws[:, :50], y[:50]), (draws[:, 50:120], y[50:120]), (draws[:, 120:], y[120:])]
    # same number of draws in each part, so pooling equals scoring the concatenation
    assert pooled_msce(parts) == pytest.approx(msce(draws, y), abs=1e-15)
    pooled = pool_coverage(parts)
    assert pooled.n_points == 300
    np.testing.assert_array_equal(pooled.hits, coverage_counts(draws, y).hits)
    assert sum(coverage_counts(d, t) for d, t in parts) == pooled
    # averaging per-curve MSCE is a different quantity in general
    mean_of_parts = np.mean([msce(d, t) for d, t in parts])
    assert mean_of_parts != pytest.approx(pooled.msce, abs=1e-12)


def test_pooled_curves_may_differ_in_draw_count():
    a, ya, _ = lognormal_case(seed=4, n_points=10, n_draws=50)
    b, yb, _ = lognormal_case(seed=5, n_points=7, n_draws=80)
    c = pool_coverage([(a, ya), (b, yb)], levels=(0.5, 0.9))
    assert c.n_points == 17
    np.testing.assert_array_equal(
        c.hits, coverage_counts(a, ya, (0.5, 0.9)).hits + coverage_counts(b, yb, (0.5, 0.9)).hits
    )


def test_coverage_counts_refuse_mixed_levels():
    draws, y, _ = lognormal_case(n_points=5, n_draws=20)
    with pytest.raises(ValueError, match="different levels"):
        coverage_counts(draws, y, (0.5,)) + coverage_counts(draws, y, (0.9,))
    with pytest.raises(ValueError, match="nothing to pool"):
        CoverageCounts.pool([])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_coverage_monotone_in_level(data):
    n_draws = data.draw(st.integers(2, 25), label="n_draws")
    n_points = data.draw(st.integers(1, 8), label="n_points")
    positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
    draws = data.draw(hnp.arrays(float, (n_draws, n_points), elements=positive), label="draws")
    # y either free or equal to one of the draws (to hit interval ends exactly)
    free = data.draw(hnp.arrays(float, (n_points,), elements=positive), label="y")
    pick = data.draw(hnp.arrays(int, (n_points,), elements=st.integers(0, n_draws - 1)))
    use_draw = data.draw(hnp.arrays(bool, (n_points,)), label="use_draw")
    y = np.where(use_draw, draws[pick, np.arange(n_points)], free)
    levels = data.draw(
        st.lists(st.floats(1e-6, 1 - 1e-6), min_size=1, max_size=8, unique=True), label="levels"
    )
    # coverage at the levels given in any order, checked after sorting
    cov = coverage_counts(draws, y, levels).coverage
    order = np.argsort(levels)
    assert np.all(np.diff(cov[order]) >= 0)
    sorted_levels = sorted(levels)
    single = [coverage(draws, y, lv) for lv in sorted_levels]
    assert all(a <= b for a, b in zip(single, single[1:], strict=False))


# ------------------------------------------------------------------------------ rmsle


def test_rmsle_hand_example():
    draws = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # medians 2 and 20
    y = np.array([2.0 * np.e, 20.0 / np.e**2])  # log errors -1 and +2
    assert rmsle(draws, y) == pytest.approx(np.sqrt(2.5), rel=1e-12)
    assert rmsle(draws, np.array([2.0, 20.0])) == 0.0


# ------------------------------------------------------------------------------ lpd


def test_lpd_matches_analytic_lognormal_density_of_y():
    sigma = 0.2
    draws, y, mu = lognormal_case(seed=6, n_points=12, n_draws=20000, sigma=sigma)
    exact = lognormal_logpdf(y, mu, sigma)
    est = log_predictive_density(draws, y, pointwise=True)
    assert est.shape == (12,)
    assert np.mean(est) == pytest.approx(np.mean(exact), abs=0.03)
    np.testing.assert_allclose(est, exact, atol=0.12)
    assert log_predictive_density(draws, y) == pytest.approx(np.mean(est))
    # the density of log y (without Jacobian) would be off by mean(log y): make sure it is not
    assert abs(np.mean(est) + np.mean(np.log(y)) - np.mean(exact)) > 0.3
    # natural-scale KDE estimates the same density of y
    nat = log_predictive_density(draws, y, log_space=False)
    assert nat == pytest.approx(np.mean(exact), abs=0.06)


def test_lpd_equals_scipy_gaussian_kde_plus_jacobian():
    draws, y, _ = lognormal_case(seed=7, n_points=4, n_draws=300)
    ours = log_predictive_density(draws, y, pointwise=True)
    ref = [
        stats.gaussian_kde(np.log(draws[:, j])).logpdf(np.log(y[j]))[0] - np.log(y[j])
        for j in range(4)
    ]
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    ours_s = log_predictive_density(draws, y, bw_method="silverman", pointwise=True)
    ref_s = [
        stats.gaussian_kde(np.log(draws[:, j]), bw_method="silverman").logpdf(np.log(y[j]))[0]
        - np.log(y[j])
        for j in range(4)
    ]
    np.testing.assert_allclose(ours_s, ref_s, rtol=1e-10, atol=1e-10)


def test_lpd_scale_adds_log_scale():
    draws, y, _ = lognormal_case(seed=8, n_points=6, n_draws=500)
    base = log_predictive_density(draws, y)
    for log_space in (True, False):
        base = log_predictive_density(draws, y, log_space=log_space)
        scaled = log_predictive_density(draws, y, log_space=log_space, scale=7.5)
        assert scaled == pytest.approx(base + np.log(7.5), abs=1e-9)
    per_point_scale = np.linspace(1.0, 3.0, 6)
    a = log_predictive_density(draws, y, scale=per_point_scale, pointwise=True)
    b = log_predictive_density(draws, y, pointwise=True) + np.log(per_point_scale)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_lpd_rejects_degenerate_draws():
    draws = np.ones((10, 3))
    draws[:, 1] = np.linspace(1, 2, 10)
    with pytest.raises(ValueError, match=r"zero spread at point\(s\) \[0, 2\]"):
        log_predictive_density(draws, np.ones(3))
    with pytest.raises(ValueError, match="bw_method"):
        log_predictive_density(draws[:, 1:2], np.ones(1), bw_method="wide")


# ------------------------------------------------------------------------------ crps


def test_crps_close_to_analytic_normal():
    rng = np.random.default_rng(9)
    m, s = 100.0, 2.0
    y = m + np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 5.0])
    draws = m + s * rng.standard_normal((40000, y.size))
    est = crps(draws, y, pointwise=True)
    np.testing.assert_allclose(est, normal_crps(y, m, s), rtol=0.02)
    assert crps(draws, y) == pytest.approx(np.mean(est))


def test_crps_equals_energy_form_exactly():
    draws, y, _ = lognormal_case(seed=10, n_points=5, n_draws=37)
    np.testing.assert_allclose(crps(draws, y, pointwise=True), energy_crps(draws, y), rtol=1e-10)
    np.testing.assert_allclose(
        crps(draws, y, fair=True, pointwise=True), energy_crps(draws, y, fair=True), rtol=1e-10
    )


def test_crps_of_point_mass_is_absolute_error():
    draws = np.full((5, 2), 3.0)
    y = np.array([1.0, 4.5])
    np.testing.assert_allclose(crps(draws, y, pointwise=True), [2.0, 1.5])


# ------------------------------------------------------------------------------ interval score


def test_interval_score_and_width_hand_example():
    col = np.arange(1.0, 102.0)  # 90% interval is [6, 96]
    draws = np.column_stack([col, col, col])
    y = np.array([50.0, 1.0, 100.0])
    # width 90; below by 5 -> +2/0.1*5 = 100; above by 4 -> +80
    np.testing.assert_allclose(interval_score(draws, y, 0.9, pointwise=True), [90, 190, 170])
    assert interval_score(draws, y) == pytest.approx(150.0)
    assert interval_width(draws, 0.9) == pytest.approx(90.0)
    assert interval_width(draws, 0.5) == pytest.approx(50.0)


# ------------------------------------------------------------------------------ pit


def test_pit_hand_example_and_ties():
    draws = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [4.0, 2.0]])
    y = np.array([2.5, 2.0])
    np.testing.assert_allclose(pit(draws, y), [0.5, 0.5])  # all four tie at point 2: 0 + 0.5
    u = pit(draws, y, rng=np.random.default_rng(0))
    assert u[0] == 0.5
    assert 0.0 <= u[1] <= 1.0
    with pytest.raises(TypeError, match="Generator"):
        pit(draws, y, rng=0)


def test_pit_uniform_for_calibrated_draws():
    draws, y, _ = lognormal_case(seed=11, n_points=2000, n_draws=500)
    u = pit(draws, y)
    assert np.all((u >= 0) & (u <= 1))
    assert stats.kstest(u, "uniform").pvalue > 0.01
    biased, _, _ = lognormal_case(seed=11, n_points=2000, n_draws=500, shift=1.0)
    assert stats.kstest(pit(biased, y), "uniform").pvalue < 1e-6


# ------------------------------------------------------------------------------ score_all


def test_score_all_keys_and_values():
    draws, y, _ = lognormal_case(seed=12, n_points=40, n_draws=800)
    out = score_all(draws, y)
    assert list(out) == [
        "rmsle",
        "lpd",
        "coverage_50",
        "coverage_80",
        "coverage_90",
        "coverage_95",
        "msce",
        "crps",
        "interval_score_90",
        "width_90",
        "n_points",
    ]
    assert out["n_points"] == 40
    assert out["rmsle"] == rmsle(draws, y)
    assert out["lpd"] == pytest.approx(log_predictive_density(draws, y))
    assert out["coverage_90"] == coverage(draws, y, 0.9)
    assert out["msce"] == msce(draws, y)
    assert out["crps"] == pytest.approx(crps(draws, y))
    assert out["interval_score_90"] == pytest.approx(interval_score(draws, y, 0.9))
    assert out["width_90"] == pytest.approx(interval_width(draws, 0.9))


def test_score_all_scale_and_custom_levels():
    draws, y, _ = lognormal_case(seed=13, n_points=20, n_draws=400)
    base = score_all(draws, y)
    s = 4.0
    scaled = score_all(draws, y, scale=s)
    for k in ("rmsle", "coverage_50", "coverage_95", "msce"):
        assert scaled[k] == pytest.approx(base[k], abs=1e-12)
    assert scaled["lpd"] == pytest.approx(base["lpd"] + np.log(s))
    for k in ("crps", "interval_score_90", "width_90"):
        assert scaled[k] == pytest.approx(base[k] / s)
    custom = score_all(draws, y, levels=(0.975, 0.5), interval_level=0.8)
    assert {"coverage_97.5", "coverage_50", "interval_score_80", "width_80"} <= set(custom)
    assert list(custom)[:-1] == score_names(levels=(0.975, 0.5), interval_level=0.8)
    assert list(base)[:-1] == score_names()


# ------------------------------------------------------------------------------ validation


GOOD_DRAWS = np.ones((4, 3)) + np.arange(12.0).reshape(4, 3)
GOOD_Y = np.array([1.0, 2.0, 3.0])

ALL_SCORES = [
    rmsle,
    lambda d, y: coverage(d, y, 0.9),
    coverage_table,
    msce,
    coverage_counts,
    log_predictive_density,
    crps,
    interval_score,
    pit,
    score_all,
]


@pytest.mark.parametrize("fn", ALL_SCORES)
@pytest.mark.parametrize(
    ("draws", "y", "message"),
    [
        (np.ones(3), GOOD_Y, r"draws must be a 2-D array of shape \(n_draws, n_points\)"),
        (np.ones((2, 2, 3)), GOOD_Y, "draws must be a 2-D array"),
        (np.ones((1, 3)), GOOD_Y, "at least 2 draws"),
        (GOOD_DRAWS, np.ones(4), "shape mismatch: draws has 3 points .* y_true has 4"),
        (GOOD_DRAWS, np.ones((3, 1)), "y_true must be a 1-D array"),
        (GOOD_DRAWS * np.array([1, -1, 1]), GOOD_Y, "draws must be strictly positive"),
        (GOOD_DRAWS, np.array([1.0, 0.0, 2.0]), "y_true must be strictly positive"),
        (GOOD_DRAWS * np.array([1, np.nan, 1]), GOOD_Y, "draws must be finite"),
        (GOOD_DRAWS, np.array([1.0, np.inf, 2.0]), "y_true must be finite"),
    ],
)
def test_bad_inputs_raise_clear_errors(fn, draws, y, message):
    with pytest.raises(ValueError, match=message):
        fn(draws, y)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
def test_bad_levels_raise(level):
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        coverage(GOOD_DRAWS, GOOD_Y, level)
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        interval_score(GOOD_DRAWS, GOOD_Y, level)
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        msce(GOOD_DRAWS, GOOD_Y, levels=(0.5, level))


def test_interval_width_validates_draws_and_scale_validates():
    with pytest.raises(ValueError, match="draws must be strictly positive"):
        interval_width(-GOOD_DRAWS)
    with pytest.raises(ValueError, match="scale must be finite and strictly positive"):
        log_predictive_density(GOOD_DRAWS, GOOD_Y, scale=0.0)
    with pytest.raises(ValueError, match=r"scale must be a scalar or have shape \(n_points,\)"):
        score_all(GOOD_DRAWS, GOOD_Y, scale=np.ones(2))


def test_lists_are_accepted():
    assert rmsle(GOOD_DRAWS.tolist(), GOOD_Y.tolist()) == rmsle(GOOD_DRAWS, GOOD_Y)


def test_pooled_coverage_interval_resamples_curves_not_points():
    levels = (0.5, 0.9)
    # Ten curves of 100 points each, every point of a curve in or out together.
    curves = [CoverageCounts(levels, [100 * (i % 2), 100], 100) for i in range(10)]
    lo, hi = pooled_coverage_interval(curves, n_resamples=4000, seed=1).T
    # Curves are the units: half of them cover at 50%, so the interval is that of a share
    # of 10 coin flips (about 0.2 to 0.8), far wider than 1,000 independent points allow.
    assert lo[0] < 0.3 and hi[0] > 0.7
    assert lo[1] == hi[1] == 1.0
    same = [CoverageCounts(levels, [40, 90], 100)] * 5
    np.testing.assert_allclose(pooled_coverage_interval(same), [[0.4, 0.4], [0.9, 0.9]])


def test_pooled_coverage_interval_checks_its_input():
    with pytest.raises(ValueError, match="no coverage counts"):
        pooled_coverage_interval([])
    c = CoverageCounts((0.5,), [1], 2)
    with pytest.raises(ValueError, match="confidence"):
        pooled_coverage_interval([c], confidence=1.0)
    with pytest.raises(ValueError, match="different levels"):
        pooled_coverage_interval([c, CoverageCounts((0.9,), [1], 2)])
