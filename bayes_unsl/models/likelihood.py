"""The noise model every form shares: a LogNormal noise scale and a likelihood on log y.

Three likelihoods: independent normal or Student-t errors, and (``"ou"``, single-input
forms) normal errors part of which are correlated along log x: an Ornstein-Uhlenbeck
process plus independent noise. A curve measured densely deviates from any smooth form in
runs, not point by point; independent errors then count every point as fresh evidence and
make the posterior too sure of the curve.

With ``priors.noise_trend_sd > 0`` the noise scale also trends with the inputs: log sigma
is linear in the standardised log inputs (one slope per input). Measurements (and a
form's misfit) often scatter more at the largest scales than at the smallest; a constant
scale learnt mostly from the many small runs then makes intervals past the data too
narrow, while the trend seen within the data carries on past it.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.primitives import Messenger

__all__ = [
    "MAX_CORR_SHARE",
    "NOISE_CORRELATION_SITES",
    "NOISE_TREND_SITE",
    "CorrelatedNormal",
    "StudentT",
    "masked",
    "noise_scale",
    "observe_log_y",
]

#: The sites likelihood "ou" adds to a single-input form (judged by the convergence checks).
NOISE_CORRELATION_SITES = ("noise_corr_share", "log_noise_length")

#: The site of the noise trend's slopes, one per input (present only when it is on).
NOISE_TREND_SITE = "noise_slope"

#: At least 1% of the error variance stays independent, which keeps the density finite at
#: repeated inputs (several seeds at one size), where the correlated part cannot differ.
MAX_CORR_SHARE = 0.99


def observe_log_y(mu, log_y, *, priors, likelihood: str, z=None) -> None:
    """Sample the noise scale ``sigma`` and observe ``log_y ~ Normal(mu, sigma)``.

    With ``likelihood="student_t"`` (the default of form "bnsl") the observation is Student-t
    with ``priors.student_df`` degrees of freedom, which tolerates outlying runs. With
    ``likelihood="ou"``, ``sigma`` is the sd of each error, a share (``MAX_CORR_SHARE`` times
    the sampled ``noise_corr_share``) of whose variance is an Ornstein-Uhlenbeck process
    along ``z`` (the standardised log input, shape (n,)) with correlation length
    ``exp(log_noise_length)`` (z units); see :class:`CorrelatedNormal`. ``log_y=None``
    draws from the model.

    With ``priors.noise_trend_sd > 0`` the site ``sigma`` is the scale at the centre of the
    data (z = 0) and each point's scale is :func:`noise_scale` of its inputs; the slopes
    ``noise_slope`` (one per input of ``z``, shape (n,) or (n, m)) have Normal(0,
    ``noise_trend_sd``) priors.
    """
    log_sigma = numpyro.sample(
        "log_sigma", dist.Normal(math.log(priors.noise_median), priors.noise_sd)
    )
    sigma = numpyro.deterministic("sigma", priors.noise_floor + jnp.exp(log_sigma))
    if priors.noise_trend_sd > 0:  # ModelSpec refuses it with likelihood "ou"
        if z is None:
            raise ValueError("a noise trend needs the inputs z")
        zz = jnp.reshape(z, (mu.shape[0], -1))
        trend = dist.Normal(0.0, priors.noise_trend_sd).expand([zz.shape[1]])
        slope = numpyro.sample(NOISE_TREND_SITE, trend)
        sigma = noise_scale(sigma, slope, zz, priors.noise_floor)
    if likelihood == "student_t":
        noise = StudentT(priors.student_df, mu, sigma)
    elif likelihood == "ou":
        if z is None:
            raise ValueError("likelihood 'ou' needs the inputs z to order the points")
        share = MAX_CORR_SHARE * numpyro.sample(
            "noise_corr_share", dist.Beta(*priors.noise_corr_share)
        )
        log_length = numpyro.sample(
            "log_noise_length",
            dist.Normal(math.log(priors.noise_length_median), priors.noise_length_sd),
        )
        noise = CorrelatedNormal(mu, sigma, share, jnp.exp(log_length), z)
    else:
        noise = dist.Normal(mu, sigma)
    with numpyro.plate("point", mu.shape[0]):
        numpyro.sample("log_y", noise, obs=log_y)


def noise_scale(sigma, slope, z, floor: float):
    """Noise scale of log y at standardised inputs ``z`` (points, inputs).

    ``sigma``: the scale at the centre (floor included); ``slope``: the noise trend, one
    per input. Arrays of draws broadcast: sigma (draws, 1), slope (draws, inputs) give
    (draws, points). The floor stays a floor: only the scale above it trends.
    """
    return floor + (sigma - floor) * jnp.exp(jnp.einsum("...m,nm->...n", slope, z))


class CorrelatedNormal(dist.Distribution):
    """Normal errors along one input: ``e = s + w``, ``s`` an Ornstein-Uhlenbeck process
    (covariance ``share * sigma**2 * exp(-|z_i - z_j| / length)``), ``w`` independent with
    variance ``(1 - share) * sigma**2``.

    ``log_prob`` is exact and linear in the number of points: a Kalman filter over the points
    in order of ``z`` gives each point's density given the points before it, whose sum is the
    joint density (those one-step densities are also what PSIS-LOO reads point by point).
    Points excluded by :meth:`with_mask` are skipped by the filter, so padding never changes
    the density of the real points. Draws are joint, from the same process.
    """

    arg_constraints = {"loc": dist.constraints.real, "scale": dist.constraints.positive}
    support = dist.constraints.real
    reparametrized_params = ["loc", "scale"]
    pytree_data_fields = ("loc", "scale", "share", "length", "z", "keep")

    def __init__(self, loc, scale, share, length, z, keep=None, *, validate_args=None):
        self.loc, self.scale = jnp.broadcast_arrays(loc, scale)
        self.share, self.length = share, length
        self.z = jnp.broadcast_to(z, self.loc.shape)
        self.keep = jnp.ones(self.loc.shape, bool) if keep is None else keep
        super().__init__(batch_shape=self.loc.shape, validate_args=validate_args)

    def with_mask(self, mask) -> CorrelatedNormal:
        """The same errors with the points where ``mask`` is False left out entirely."""
        return CorrelatedNormal(
            self.loc, self.scale, self.share, self.length, self.z, self.keep & mask
        )

    def _steps(self):
        order = jnp.argsort(self.z)
        gaps = jnp.diff(self.z[order], prepend=self.z[order][:1])
        return order, gaps

    def log_prob(self, value):
        order, _ = self._steps()
        var_s = self.share * self.scale[order] ** 2
        var_w = (1.0 - self.share) * self.scale[order] ** 2
        resid = (value - self.loc)[order]
        z, keep = self.z[order], self.keep[order]

        def step(carry, point):
            mean, var, z_last, started = carry
            r, zi, vs, vw, k = point
            phi = jnp.where(started, jnp.exp(-(zi - z_last) / self.length), 0.0)
            # Variances of the process carried forward, kept >= 0 against round-off.
            prior_var = jnp.maximum(phi**2 * var + vs * (1.0 - phi**2), 0.0)
            prior_mean = phi * mean
            total = prior_var + vw
            lp = -0.5 * (jnp.log(2.0 * jnp.pi * total) + (r - prior_mean) ** 2 / total)
            gain = prior_var / total
            new = (prior_mean + gain * (r - prior_mean), (1.0 - gain) * prior_var, zi, True)
            carry = jax.tree_util.tree_map(lambda a, b: jnp.where(k, a, b), new, carry)
            return carry, jnp.where(k, lp, 0.0)

        dtype = jnp.result_type(resid, var_s)
        start = (jnp.zeros((), dtype), jnp.zeros((), dtype), z[0], jnp.array(False))
        _, lp = jax.lax.scan(step, start, (resid, z, var_s, var_w, keep))
        return jnp.zeros_like(lp).at[order].set(lp)

    def sample(self, key, sample_shape=()):
        order, gaps = self._steps()
        key_s, key_w = jax.random.split(key)
        phi = jnp.exp(-gaps / self.length)
        shape = sample_shape + self.batch_shape
        innovations = jax.random.normal(key_s, shape)
        sd = self.scale[order] * jnp.sqrt(self.share)

        def step(prev, point):
            eps, p, s = point
            cur = p * prev + s * jnp.sqrt(1.0 - p**2) * eps
            return cur, cur

        first = innovations[..., order[0]] * sd[0]
        moved = jnp.moveaxis(innovations[..., order], -1, 0)
        _, path = jax.lax.scan(step, first, (moved, phi, sd))
        process = jnp.zeros(shape).at[..., order].set(jnp.moveaxis(path, 0, -1))
        white = jax.random.normal(key_w, shape) * self.scale * jnp.sqrt(1.0 - self.share)
        return self.loc + process + white


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
            fn = msg["fn"]
            # Correlated errors must skip padded points, not only drop their terms.
            msg["fn"] = (fn.with_mask(self.mask) if hasattr(fn, "with_mask") else fn).mask(
                self.mask
            )


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
