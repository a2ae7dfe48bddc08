"""The NumPyro model: what its priors generate, and that the form it uses is the BNSL."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.infer import Predictive

from bayes_unsl.data import validate
from bayes_unsl.forms import bnsl
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


def test_the_break_margin_extends_one_decade_past_the_data(curve):
    context = bnsl_context(curve, ModelSpec())
    top = (context.break_upper_z - 1.0) * context.half_range
    assert np.isclose(top, np.log(10.0))


def test_multi_input_bnsl_is_refused(addition):
    train, _ = addition
    frame = train.assign(other=np.linspace(1, 2, len(train)))
    data = validate(frame, ["train_dataset_size", "other"], "test_cross_entropy")
    with pytest.raises(ValueError, match="takes one input column, got 2"):
        bnsl_context(data, ModelSpec())
