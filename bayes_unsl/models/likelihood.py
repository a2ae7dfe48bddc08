"""The noise model every form shares: a LogNormal noise scale and a likelihood on log y."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.primitives import Messenger

__all__ = ["StudentT", "masked", "observe_log_y"]


def observe_log_y(mu, log_y, *, priors, likelihood: str) -> None:
    """Sample the noise scale ``sigma`` and observe ``log_y ~ Normal(mu, sigma)``.

    With ``likelihood="student_t"`` (the default of form "bnsl") the observation is Student-t
    with ``priors.student_df`` degrees of freedom, which tolerates outlying runs.
    ``log_y=None`` draws from the model.
    """
    log_sigma = numpyro.sample(
        "log_sigma", dist.Normal(math.log(priors.noise_median), priors.noise_sd)
    )
    sigma = numpyro.deterministic("sigma", priors.noise_floor + jnp.exp(log_sigma))
    if likelihood == "student_t":
        noise = StudentT(priors.student_df, mu, sigma)
    else:
        noise = dist.Normal(mu, sigma)
    with numpyro.plate("point", mu.shape[0]):
        numpyro.sample("log_y", noise, obs=log_y)


# Up to this many degrees of freedom, a whole df draws chi-square as a sum of squared normals.
_SUM_OF_SQUARES_MAX_DF = 30


class StudentT(dist.StudentT):
    """NumPyro's Student-t with an exact, loop-free sampler for whole degrees of freedom.

    NumPyro draws the chi-square part through ``jax.random.gamma``, a rejection sampler
    whose while loop dominates the posterior predictive on a CPU (several times the cost
    of the normal likelihood's draws). For a whole ``df`` up to 30, chi-square with ``df``
    degrees of freedom is the sum of ``df`` squared standard normals: the same
    distribution, drawn with no loop. Other ``df`` fall back to NumPyro's sampler.
    """

    pytree_aux_fields = ("whole_df",)

    def __init__(self, df, loc=0.0, scale=1.0, *, validate_args=None):
        whole = isinstance(df, int | float) and float(df).is_integer()
        self.whole_df = int(df) if whole and 1 <= df <= _SUM_OF_SQUARES_MAX_DF else None
        super().__init__(df, loc, scale, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        if self.whole_df is None:
            return super().sample(key, sample_shape)
        k = self.whole_df
        shape = sample_shape + self.batch_shape + self.event_shape
        key_normal, key_chi2 = jax.random.split(key)
        z = jax.random.normal(key_normal, shape)
        chi2 = jnp.sum(jnp.square(jax.random.normal(key_chi2, (k,) + shape)), axis=0)
        return self.loc + self.scale * z / jnp.sqrt(chi2 / k)


class _MaskObservations(Messenger):
    """Drop the log density of the observations where ``mask`` is False (padding).

    Only the ``log_y`` site: other observed sites exist (the sampler's log-Jacobian factors
    are observed ``Unit`` sites) and must keep their full weight.
    """

    def __init__(self, fn=None, mask=None, site: str = "log_y"):
        self.mask = mask
        self.site = site
        super().__init__(fn)

    def process_message(self, msg) -> None:
        if msg["type"] == "sample" and msg["name"] == self.site:
            msg["fn"] = msg["fn"].mask(self.mask)


def masked(model):
    """``model(z, context, log_y)`` as ``masked(z, context, mask, log_y)``.

    Curves of different lengths share one compiled program by padding to a common length;
    padded points repeat a real point (so every value stays finite, and so do gradients) and
    are masked out of the likelihood, leaving the posterior of the real points unchanged.
    A partial of a module-level function, so that stored programs are keyed by the wrapped
    model and its settings (a closure would name every wrapped model alike).
    """
    return functools.partial(_masked_model, model=model)


def _masked_model(z, context, mask, log_y=None, *, model) -> None:
    with _MaskObservations(mask=mask):
        model(z, context, log_y)
