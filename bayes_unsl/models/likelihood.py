"""The noise model every form shares: a LogNormal noise scale and a likelihood on log y."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

__all__ = ["observe_log_y"]


def observe_log_y(mu, log_y, *, priors, likelihood: str) -> None:
    """Sample the noise scale ``sigma`` and observe ``log_y ~ Normal(mu, sigma)``.

    With ``likelihood="student_t"`` the observation is Student-t with ``priors.student_df``
    degrees of freedom, which tolerates outlying runs. ``log_y=None`` draws from the model.
    """
    log_sigma = numpyro.sample(
        "log_sigma", dist.Normal(math.log(priors.noise_median), priors.noise_sd)
    )
    sigma = numpyro.deterministic("sigma", jnp.exp(log_sigma))
    if likelihood == "student_t":
        noise = dist.StudentT(priors.student_df, mu, sigma)
    else:
        noise = dist.Normal(mu, sigma)
    with numpyro.plate("point", mu.shape[0]):
        numpyro.sample("log_y", noise, obs=log_y)
