"""A direct parameterisation of the BNSL, kept only to measure against the package's own.

Registers the form ``"bnsl_direct"``: the BNSL sampled in its natural parameters at
centred log inputs (``u = log x - center``), as a first NumPyro model would write it:
``a ~ Uniform(0, min y)``, ``log b`` at the centre, initial slope ``c0`` and per break a
slope change ``c``, a location ``delta`` uniform over the observed range plus the break
margin (sorted) and a sharpness ``f``. The prior scales match the package's default priors
(``bayes_unsl.priors.BNSLPriors``) converted to these units. The two models' priors agree
in scale but not exactly: the package puts its slope priors on the mean slope over the data
and on each break's slope change within the data, this model on ``c0`` and ``c``. What the
package changes: the curve's value at the centre and its mean log-y slope over the data
sampled instead of ``b`` and ``c0`` (which decouples them from ``a`` and from the breaks),
each break's slope change as seen within the data, standardised inputs, and ordered breaks
from Dirichlet spacings of concentration 3 (away from the edges of the data).

Import this module to register the form; nothing in the package uses it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayes_unsl.forms import bnsl
from bayes_unsl.models.bnsl import BNSLContext, bnsl_context, bnsl_curve
from bayes_unsl.models.likelihood import observe_log_y
from bayes_unsl.models.registry import FormModel, available_forms, form_model, register
from bayes_unsl.models.spec import ModelSpec
from bayes_unsl.priors import BNSLPriors

NAME = "bnsl_direct"


def direct_model(z, context: BNSLContext, log_y=None, *, spec: ModelSpec) -> None:
    p = spec.priors
    n = spec.breaks
    hr = context.half_range
    u = z[:, 0] * hr
    a = numpyro.sample("a", dist.Uniform(0.0, jnp.exp(context.log_y_min)))
    log_b = numpyro.sample("log_b", dist.Normal(context.log_y_mean, p.scale_sd))
    slope_sd = p.slope_sd * context.y_spread / hr
    c0 = numpyro.sample("c0_direct", dist.Normal(0.0, slope_sd))
    if n > 0:
        upper = hr * context.break_upper_z
        delta = jnp.sort(numpyro.sample("delta_direct", dist.Uniform(-hr, upper).expand([n])))
        c = numpyro.sample(
            "c_direct", dist.Normal(0.0, p.break_slope_sd * context.y_spread / hr).expand([n])
        )
        f = numpyro.sample(
            "f_direct",
            dist.LogNormal(jnp.log(p.sharpness_median * hr), p.sharpness_sd).expand([n]),
        )
    else:
        delta = c = f = jnp.zeros(0)
    params = {
        "log_a": numpyro.deterministic("log_a", jnp.log(a)),
        "beta": numpyro.deterministic("beta", log_b),
        "c0": numpyro.deterministic("c0", c0),
        "c": numpyro.deterministic("c", c),
        "delta": numpyro.deterministic("delta", delta),
        "f": numpyro.deterministic("f", f),
    }
    observe_log_y(bnsl(params, u), log_y, priors=p, likelihood=spec.likelihood)


if NAME not in available_forms():
    register(
        FormModel(
            name=NAME,
            n_inputs=1,
            priors_type=BNSLPriors,
            context=bnsl_context,
            model=direct_model,
            curve=bnsl_curve,
            curve_sites=("log_a", "beta", "c0", "c", "delta", "f", "sigma"),
            sampled_sites=(
                "a",
                "log_b",
                "c0_direct",
                "delta_direct",
                "c_direct",
                "f_direct",
                "log_sigma",
            ),
            n_params=lambda spec: 4 + 3 * spec.breaks,
            dims={k: ["brk"] for k in ("c", "delta", "f", "delta_direct", "c_direct", "f_direct")},
            # The same noise model as the BNSL it is compared with.
            default_likelihood=form_model("bnsl").default_likelihood,
        )
    )
