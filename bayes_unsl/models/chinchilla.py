"""NumPyro models of the Chinchilla form (CF) and the data-constrained form (DC).

CF: ``y = E + A / N^alpha + B / D^beta`` over two input columns, N then D.
DC: CF at effective counts N' and D' that discount repeated data (Muennighoff et al.
2023), over three input columns: N, D and the unique tokens available U_D.

Both models are written around the centre of the data. With ``u = log x - center`` (the
reference scale of each input is the geometric centre of its observed range), A and B are
the two reducible terms at that centre, which the data fix well, while the raw-count
coefficients ``A s_N^alpha`` are strongly correlated with the exponents. The sampler moves
log y at the centre, the share of A in the reducible part, E as a fraction of the smallest
value, and the exponents; the natural-unit parameters of :mod:`bayes_unsl.forms` are
recorded as deterministic sites, so that prediction is a pure function of the posterior
and the log inputs.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayes_unsl.data import Dataset
from bayes_unsl.forms import chinchilla, data_constrained
from bayes_unsl.forms._ops import log1mexp
from bayes_unsl.models.likelihood import NOISE_TREND_SITE, observe_log_y
from bayes_unsl.models.registry import FormModel, register
from bayes_unsl.models.spec import ModelSpec
from bayes_unsl.priors import ChinchillaPriors, DCPriors

__all__ = [
    "CF",
    "DC",
    "CFContext",
    "chinchilla_context",
    "chinchilla_curve",
    "chinchilla_model",
    "dc_context",
    "dc_curve",
    "dc_model",
]


class CFContext(NamedTuple):
    """Constants the priors take from the training data (never from held-out points).

    A pytree passed to the model as an argument. ``center`` and ``half_range`` hold one
    value per input column, in the column order of the form.
    """

    center: tuple[float, ...]
    half_range: tuple[float, ...]
    log_y_min: float
    log_y_mean: float

    def to_dict(self) -> dict[str, Any]:
        return {
            k: [float(x) for x in v] if isinstance(v, tuple) else float(v)
            for k, v in self._asdict().items()
        }


def check_no_breaks(name: str, spec: ModelSpec) -> None:
    """Forms without breaks refuse ``breaks`` other than 0."""
    if spec.breaks != 0:
        raise ValueError(f"form {name!r} has no breaks; use breaks=0 (got breaks={spec.breaks})")


def _context(name: str, columns: str, data: Dataset, spec: ModelSpec) -> CFContext:
    check_no_breaks(name, spec)
    m = len(columns.split(", "))
    if len(data.x_names) != m:
        raise ValueError(
            f"form {name!r} takes {m} input columns ({columns}, in that order), "
            f"got {len(data.x_names)}: {list(data.x_names)}"
        )
    log_y = data.log_y
    return CFContext(
        center=tuple(float(c) for c in data.scaling.center),
        half_range=tuple(float(h) for h in data.scaling.half_range),
        log_y_min=float(log_y.min()),
        log_y_mean=float(log_y.mean()),
    )


def chinchilla_context(data: Dataset, spec: ModelSpec) -> CFContext:
    return _context("chinchilla", "N, D", data, spec)


def dc_context(data: Dataset, spec: ModelSpec) -> CFContext:
    return _context("data_constrained", "N, D, U_D", data, spec)


def _cf_terms(context: CFContext, p: Any) -> dict[str, Any]:
    """Sample the CF parameters around the centre; natural units relative to the centre.

    Returns ``log_e``, ``log_a``, ``log_b`` (A and B at ``u = 0``) and the exponents.
    """
    limit_fraction = numpyro.sample("limit_fraction", dist.Beta(*p.limit_fraction))
    # log y at the centre, log(E + A + B); E is kept below both min(y) and that value.
    m_centre = numpyro.sample("m_centre", dist.Normal(context.log_y_mean, p.scale_sd))
    log_e = numpyro.deterministic(
        "log_e", jnp.log(limit_fraction) + jnp.minimum(context.log_y_min, m_centre)
    )
    log_reducible = m_centre + log1mexp(log_e - m_centre)
    share = numpyro.sample("term_share", dist.Beta(*p.term_share))
    exponent = dist.LogNormal(math.log(p.exponent_median), p.exponent_sd)
    return {
        "log_e": log_e,
        "log_a": log_reducible + jnp.log(share),
        "log_b": log_reducible + jnp.log1p(-share),
        "alpha": numpyro.sample("alpha", exponent),
        "beta": numpyro.sample("beta", exponent),
    }


def chinchilla_model(z, context: CFContext, log_y=None, *, spec: ModelSpec) -> None:
    """CF on log y: ``log y ~ Normal(log(E + A/N^alpha + B/D^beta), sigma)`` (or Student-t).

    ``z``: standardised log inputs (N, D), shape (n, 2). The deterministic sites
    ``log_e``, ``log_a``, ``log_b``, ``alpha``, ``beta`` are the parameters that
    :func:`bayes_unsl.forms.chinchilla` takes at ``u = log x - center``: A and B there are
    the terms at the centre of the data, ``A (N / s_N)^-alpha`` with ``s_N = exp(center_N)``.
    For comparison with fits on raw counts, ``log_a_raw = log_a + alpha center_N`` and
    ``log_b_raw = log_b + beta center_D`` are recorded too.
    """
    check_no_breaks("chinchilla", spec)
    u = z * jnp.asarray(context.half_range)
    terms = _cf_terms(context, spec.priors)
    params = {
        "log_e": terms["log_e"],
        "log_a": numpyro.deterministic("log_a", terms["log_a"]),
        "log_b": numpyro.deterministic("log_b", terms["log_b"]),
        "alpha": terms["alpha"],
        "beta": terms["beta"],
    }
    numpyro.deterministic("log_a_raw", params["log_a"] + params["alpha"] * context.center[0])
    numpyro.deterministic("log_b_raw", params["log_b"] + params["beta"] * context.center[1])
    mu = chinchilla(params, u[:, 0], u[:, 1])
    observe_log_y(mu, log_y, priors=spec.priors, likelihood=spec.likelihood, z=z)


def chinchilla_curve(params, u):
    """Mean log y of one draw at ``u = log x - center``, shape (n, 2): columns N, D."""
    return chinchilla(params, u[..., 0], u[..., 1])


def dc_model(z, context: CFContext, log_y=None, *, spec: ModelSpec) -> None:
    """DC on log y, with N' and D' the effective counts; likelihood as in CF.

    ``z``: standardised log inputs (N, D, U_D), shape (n, 3). DC needs raw counts (the
    tokens-per-parameter ratio links N to U_D), so the recorded ``log_a`` and ``log_b``
    are the coefficients of raw N' and D', ``log_a = log A_centre + alpha center_N``,
    and the centres are recorded as the deterministic site ``center``, from which
    :func:`dc_curve` rebuilds the raw logs.
    """
    check_no_breaks("data_constrained", spec)
    p = spec.priors
    center = numpyro.deterministic("center", jnp.asarray(context.center))
    log_x = z * jnp.asarray(context.half_range) + center
    terms = _cf_terms(context, p)
    log_r_d = numpyro.sample("log_r_d_star", dist.Normal(math.log(p.r_d_star_median), p.r_star_sd))
    log_r_n = numpyro.sample("log_r_n_star", dist.Normal(math.log(p.r_n_star_median), p.r_star_sd))
    log_tpp = numpyro.deterministic(
        "log_tokens_per_param", jnp.asarray(math.log(p.tokens_per_param))
    )
    params = {
        "log_e": terms["log_e"],
        "log_a": numpyro.deterministic("log_a", terms["log_a"] + terms["alpha"] * center[0]),
        "log_b": numpyro.deterministic("log_b", terms["log_b"] + terms["beta"] * center[1]),
        "alpha": terms["alpha"],
        "beta": terms["beta"],
        "log_r_d_star": log_r_d,
        "log_r_n_star": log_r_n,
        "log_tokens_per_param": log_tpp,
    }
    mu = data_constrained(params, log_x[:, 0], log_x[:, 1], log_x[:, 2])
    observe_log_y(mu, log_y, priors=spec.priors, likelihood=spec.likelihood, z=z)


def dc_curve(params, u):
    """Mean log y of one draw at ``u = log x - center``, shape (n, 3): N, D, U_D.

    Reads the centres from the ``center`` site to rebuild the logs of raw counts.
    """
    log_x = u + params["center"]
    return data_constrained(params, log_x[..., 0], log_x[..., 1], log_x[..., 2])


_CF_SAMPLED = (
    "limit_fraction",
    "m_centre",
    "term_share",
    "alpha",
    "beta",
    "log_sigma",
    NOISE_TREND_SITE,
)


def fixed_count(name: str, count: int):
    """``n_params`` of a form without breaks: ``count``, refusing breaks other than 0."""

    def n_params(spec: ModelSpec) -> int:
        check_no_breaks(name, spec)
        return count

    return n_params


CF = register(
    FormModel(
        name="chinchilla",
        n_inputs=2,
        priors_type=ChinchillaPriors,
        context=chinchilla_context,
        model=chinchilla_model,
        curve=chinchilla_curve,
        curve_sites=("log_e", "log_a", "log_b", "alpha", "beta", "sigma", NOISE_TREND_SITE),
        sampled_sites=_CF_SAMPLED,
        # Free parameters: E, A, B, alpha, beta and the noise.
        n_params=fixed_count("chinchilla", 6),
    )
)

DC = register(
    FormModel(
        name="data_constrained",
        n_inputs=3,
        priors_type=DCPriors,
        context=dc_context,
        model=dc_model,
        curve=dc_curve,
        curve_sites=(
            "log_e",
            "log_a",
            "log_b",
            "alpha",
            "beta",
            "log_r_d_star",
            "log_r_n_star",
            "log_tokens_per_param",
            "center",
            "sigma",
            NOISE_TREND_SITE,
        ),
        sampled_sites=(*_CF_SAMPLED, "log_r_d_star", "log_r_n_star"),
        # Free parameters: those of CF and the two decay constants.
        n_params=fixed_count("data_constrained", 8),
        dims={"center": ["input"]},
    )
)
