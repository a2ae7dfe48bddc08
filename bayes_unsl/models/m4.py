"""NumPyro model of M4 (Alabdulmohsin et al. 2022, arXiv 2209.06640) of a single input.

M4 is the implicit law ``(y - eps_inf) / (eps_0 - y)^alpha = beta x^(-c)``: the metric
falls from its random-guess level eps_0 towards its limit eps_inf. As for the BNSL, the
sampler works in standardised coordinates and the natural-unit parameters that
:func:`bayes_unsl.forms.m4` takes at ``u = log x - center`` are recorded as deterministic
sites (``beta`` there is the value at the centre of the data: the reference scale is
absorbed into it, ``beta_raw = beta s^c`` with ``s = exp(center)``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_unsl.data import Dataset
from bayes_unsl.forms import m4
from bayes_unsl.forms._ops import log1mexp
from bayes_unsl.models.chinchilla import check_no_breaks, fixed_count
from bayes_unsl.models.likelihood import (
    NOISE_CORRELATION_SITES,
    NOISE_TREND_SITE,
    observe_log_y,
)
from bayes_unsl.models.registry import FormModel, register
from bayes_unsl.models.spec import ModelSpec
from bayes_unsl.priors import M4Priors

__all__ = ["M4", "M4Context", "m4_context", "m4_curve", "m4_model"]


class M4Context(NamedTuple):
    """Constants the priors take from the training data (never from held-out points)."""

    half_range: float
    log_y_min: float
    log_y_max: float
    log_y_mean: float
    y_spread: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._asdict().items()}


def m4_context(data: Dataset, spec: ModelSpec) -> M4Context:
    check_no_breaks("m4", spec)
    if len(data.x_names) != 1:
        raise ValueError(
            f"form 'm4' takes one input column, got {len(data.x_names)}: {list(data.x_names)}"
        )
    log_y = data.log_y
    return M4Context(
        half_range=float(data.scaling.half_range[0]),
        log_y_min=float(log_y.min()),
        log_y_max=float(log_y.max()),
        log_y_mean=float(log_y.mean()),
        y_spread=max(float(np.ptp(log_y)), spec.priors.y_spread_floor),
    )


def m4_model(z, context: M4Context, log_y=None, *, spec: ModelSpec) -> None:
    """M4 on log y: ``log y ~ Normal(log y_M4(x), sigma)`` (or Student-t).

    ``z``: standardised log input, shape (n, 1). The curve passes through ``exp(m_centre)``
    at the centre of the data; the limits are kept on either side of it and of the data
    (``eps_inf < min(y)``, ``eps_0 > max(y)``), and ``log_beta`` follows from the law at
    the centre.
    """
    check_no_breaks("m4", spec)
    z = z[:, 0]
    p = spec.priors
    hr = context.half_range

    limit_fraction = numpyro.sample("limit_fraction", dist.Beta(*p.limit_fraction))
    m_centre = numpyro.sample("m_centre", dist.Normal(context.log_y_mean, p.scale_sd))
    log_eps_inf = numpyro.deterministic(
        "log_eps_inf", jnp.log(limit_fraction) + jnp.minimum(context.log_y_min, m_centre)
    )
    top_excess = numpyro.sample(
        "top_excess", dist.LogNormal(math.log(p.top_excess_median), p.top_excess_sd)
    )
    log_eps_0 = numpyro.deterministic(
        "log_eps_0", jnp.maximum(context.log_y_max, m_centre) + jnp.log1p(top_excess)
    )
    alpha = numpyro.sample("alpha", dist.HalfNormal(p.alpha_sd))
    # As in the BNSL model: the decay is sampled as seen in log y at the lowest
    # observation, where the limit flattens it by about (1 - eps_inf / min(y)).
    slope_scale = 1.0 / (1.0 - p.slope_coupling * limit_fraction)
    c_z = slope_scale * numpyro.sample("c_y", dist.HalfNormal(p.slope_sd * context.y_spread))
    # At the centre, (y_c - eps_inf) / (eps_0 - y_c)^alpha = beta.
    log_above_floor = m_centre + log1mexp(log_eps_inf - m_centre)
    log_below_top = log_eps_0 + log1mexp(m_centre - log_eps_0)
    params = {
        "log_eps_inf": log_eps_inf,
        "log_eps_0": log_eps_0,
        "log_beta": numpyro.deterministic("log_beta", log_above_floor - alpha * log_below_top),
        "c": numpyro.deterministic("c", c_z / hr),
        "alpha": alpha,
    }
    mu = m4(params, z * hr)
    observe_log_y(mu, log_y, priors=p, likelihood=spec.likelihood, z=z)


def m4_curve(params, u):
    """Mean log y of one draw at ``u = log x - center``, shape (n, 1)."""
    return m4(params, u[..., 0])


M4 = register(
    FormModel(
        name="m4",
        n_inputs=1,
        priors_type=M4Priors,
        context=m4_context,
        model=m4_model,
        curve=m4_curve,
        curve_sites=(
            "log_eps_inf",
            "log_eps_0",
            "log_beta",
            "c",
            "alpha",
            "sigma",
            NOISE_TREND_SITE,
        ),
        sampled_sites=(
            "limit_fraction",
            "m_centre",
            "top_excess",
            "alpha",
            "c_y",
            "log_sigma",
            *NOISE_CORRELATION_SITES,
            NOISE_TREND_SITE,
        ),
        # Free parameters: eps_inf, eps_0, beta, c, alpha and the noise.
        n_params=fixed_count("m4", 6),
    )
)
