"""The NumPyro model: what its priors generate, and that the form it uses is the BNSL."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.infer import Predictive

from bayes_unsl.data import validate
from bayes_unsl.forms import bnsl, bnsl_log_m
from bayes_unsl.models import ModelSpec, bnsl_context, bnsl_model


@pytest.fixture(scope="module")
def curve(addition):
    train, _ = addition
    return validate(train, "train_dataset_size", "test_cross_entropy", min_points=7)


@pytest.mark.parametrize("breaks", [0, 1, 3])
def test_prior_draws_have_ordered_breaks_and_valid_parameters(curve, breaks):
    spec = ModelSpec(breaks=breaks)
    context = bnsl_context(curve, spec)
    draws = Predictive(bnsl_model, num_samples=300)(
        jax.random.PRNGKey(0), jnp.asarray(curve.z), context, spec=spec
    )
    delta = np.asarray(draws["delta"])
    assert delta.shape == (300, breaks)
    assert np.all(np.diff(delta, axis=1) > 0)
    upper = context.break_upper_z * context.half_range
    assert np.all(delta > -context.half_range) and np.all(delta < upper)
    assert np.all(np.asarray(draws["f"]) > 0)
    assert np.all(np.exp(np.asarray(draws["log_a"])) < curve.y.min())
    assert np.all(np.isfinite(np.asarray(draws["log_y"])))


def test_model_mean_is_the_bnsl_form(curve):
    spec = ModelSpec(breaks=2)
    context = bnsl_context(curve, spec)
    z = jnp.asarray(curve.z)
    trace = handlers.trace(handlers.seed(bnsl_model, 3)).get_trace(z, context, spec=spec)
    params = {k: trace[k]["value"] for k in ("log_a", "beta", "c0", "c", "delta", "f")}
    mu = trace["log_y"]["fn"].loc
    assert np.allclose(mu, bnsl(params, z[:, 0] * context.half_range))


def test_breaks_lie_within_the_data_unless_a_margin_is_asked_for(curve):
    assert np.isclose(bnsl_context(curve, ModelSpec()).break_upper_z, 1.0)
    spec = ModelSpec.build("bnsl", 1, priors={"break_margin_decades": 1.0})
    context = bnsl_context(curve, spec)
    top = (context.break_upper_z - 1.0) * context.half_range
    assert np.isclose(top, np.log(10.0))


def test_spacing_floor_keeps_breaks_no_sharper_than_the_data_can_show(curve):
    """With ``sharpness_floor_spacing``, f stays above that share of the median z spacing."""
    spacing = float(np.median(np.diff(np.unique(curve.z[:, 0]))))
    assert bnsl_context(curve, ModelSpec()).sharpness_floor_z == 0.01
    spec = ModelSpec.build("bnsl", 1, priors={"sharpness_floor_spacing": 0.5})
    context = bnsl_context(curve, spec)
    assert np.isclose(context.sharpness_floor_z, 0.5 * spacing)
    draws = Predictive(bnsl_model, num_samples=500)(
        jax.random.PRNGKey(2), jnp.asarray(curve.z), context, spec=spec
    )
    f_z = np.asarray(draws["f"]) / context.half_range
    assert f_z.min() > 0.5 * spacing
    # Above the floor, the excess keeps its LogNormal prior (median sharpness_median).
    assert np.isclose(np.median(f_z - 0.5 * spacing), 0.2, rtol=0.15)


@pytest.mark.parametrize("concentration, variance", [(1.0, 1 / 12), (3.0, 1 / 28)])
def test_break_concentration_sets_the_spread_of_one_break_over_the_data(
    curve, concentration, variance
):
    """One break's position within the data is Beta(k, k): uniform at 1, central above."""
    spec = ModelSpec.build("bnsl", 1, priors={"break_concentration": concentration})
    context = bnsl_context(curve, spec)
    draws = Predictive(bnsl_model, num_samples=4000)(
        jax.random.PRNGKey(1), jnp.asarray(curve.z), context, spec=spec
    )
    position = (np.asarray(draws["delta"])[:, 0] / context.half_range + 1.0) / 2.0
    assert abs(position.mean() - 0.5) < 0.02
    assert np.isclose(position.var(), variance, rtol=0.1)


def test_the_curve_has_the_sampled_value_at_the_centre_and_mean_slope_over_the_data(curve):
    """What the sampler moves is the curve's value at the centre and its mean log-M slope."""
    spec = ModelSpec(breaks=2)
    context = bnsl_context(curve, spec)
    z = jnp.asarray(curve.z)
    hr = context.half_range
    for seed in range(5):
        trace = handlers.trace(handlers.seed(bnsl_model, seed)).get_trace(z, context, spec=spec)
        params = {k: trace[k]["value"] for k in ("log_a", "beta", "c0", "c", "delta", "f")}
        value = bnsl(params, 0.0)
        assert np.isclose(value, trace["m_centre"]["value"], rtol=1e-5, atol=1e-5)
        log_m = bnsl_log_m(params, jnp.array([-hr, hr]))
        # Mean decay of log M per unit of z, in log-y units at the centre (1 - a / y there,
        # with the coupling that bounds the factor).
        limit_share = np.exp(trace["log_a"]["value"] - trace["m_centre"]["value"])
        factor = 1 - spec.priors.slope_coupling * limit_share
        mean_slope_y = (log_m[0] - log_m[1]) / 2 * factor
        assert np.isclose(mean_slope_y, trace["c0_y"]["value"], rtol=1e-3, atol=1e-5)


def test_multi_input_bnsl_is_refused(addition):
    train, _ = addition
    frame = train.assign(other=np.linspace(1, 2, len(train)))
    data = validate(frame, ["train_dataset_size", "other"], "test_cross_entropy")
    with pytest.raises(ValueError, match="takes one input column, got 2"):
        bnsl_context(data, ModelSpec())


@pytest.mark.parametrize("df", [1.0, 4.0, 4.5])
def test_student_t_draws_follow_the_student_t_distribution(df):
    """The loop-free sampler (whole df) and NumPyro's (other df) both draw Student-t."""
    from scipy import stats

    from bayes_unsl.models.likelihood import StudentT

    noise = StudentT(df, jnp.full(2, 1.5), jnp.full(2, 0.5))
    assert (noise.whole_df is None) == (not float(df).is_integer())
    draws = np.asarray(jax.jit(noise.sample, static_argnums=1)(jax.random.PRNGKey(3), (20000,)))
    assert draws.shape == (20000, 2)
    for column in draws.T:
        assert stats.kstest(column, stats.t(df, loc=1.5, scale=0.5).cdf).pvalue > 1e-3
    # A wrong df is detected at this sample size: the test can fail.
    assert stats.kstest(draws[:, 0], stats.t(df + 3, loc=1.5, scale=0.5).cdf).pvalue < 1e-3


def _correlated_case():
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, 12)
    z[3] = z[5]  # a repeated input: only the independent part tells the two apart
    mu, scale = rng.normal(size=12), np.full(12, 0.1)
    return z, mu, scale, mu + rng.normal(size=12) * 0.1


def _ou_covariance(z, scale, share, length):
    corr = np.exp(-np.abs(z[:, None] - z[None, :]) / length)
    return share * np.outer(scale, scale) * corr + np.diag((1 - share) * scale**2)


def test_correlated_errors_have_the_joint_normal_density_and_skip_masked_points():
    from scipy import stats

    from bayes_unsl.models.likelihood import CorrelatedNormal

    z, mu, scale, y = _correlated_case()
    with jax.enable_x64(True):
        noise = CorrelatedNormal(jnp.array(mu), jnp.array(scale), 0.7, 0.3, jnp.array(z))
        joint = stats.multivariate_normal(mu, _ou_covariance(z, scale, 0.7, 0.3)).logpdf(y)
        assert np.isclose(float(noise.log_prob(jnp.array(y)).sum()), joint, rtol=1e-10)
        # Independent errors would give another density: the correlation is really there.
        assert not np.isclose(joint, stats.norm(mu, scale).logpdf(y).sum(), rtol=1e-2)
        keep = np.ones(12, bool)
        keep[[2, 7]] = False
        dropped = CorrelatedNormal(
            jnp.array(mu[keep]), jnp.array(scale[keep]), 0.7, 0.3, jnp.array(z[keep])
        )
        masked_lp = noise.with_mask(jnp.array(keep)).log_prob(jnp.array(y))
        assert np.all(np.asarray(masked_lp)[~keep] == 0.0)
        assert np.isclose(float(masked_lp.sum()), float(dropped.log_prob(jnp.array(y[keep])).sum()))


def test_correlated_error_draws_have_its_covariance():
    from bayes_unsl.models.likelihood import CorrelatedNormal

    z, mu, scale, _ = _correlated_case()
    with jax.enable_x64(True):
        noise = CorrelatedNormal(jnp.array(mu), jnp.array(scale), 0.7, 0.3, jnp.array(z))
        draws = np.asarray(noise.sample(jax.random.PRNGKey(1), (100_000,)))
    cov = _ou_covariance(z, scale, 0.7, 0.3)
    assert np.abs(np.cov(draws.T) - cov).max() < 0.05 * cov.max()
    assert np.abs(draws.mean(axis=0) - mu).max() < 0.003


def test_ou_likelihood_takes_one_input_only():
    assert ModelSpec.build("bnsl", 1, "ou").likelihood == "ou"
    with pytest.raises(ValueError, match="likelihood 'ou' correlates errors along one input"):
        ModelSpec.build("chinchilla", 0, "ou")
