"""NumPyro model of this project's UNSL composition, with a default structure.

The structure (see :func:`default_structure`) has one bottleneck component per input, an
MBNSL over that input alone with ``spec.breaks`` breaks, and, with
``UNSLPriors(joint_component=True)`` and two or more inputs, the non-bottleneck component
over all inputs, a plane in multi-log space without hyperbreaks:

    y = a + sum_j M_j(x_j) [+ M_0(x)]

with no oppositional force and no ceiling. Without M_0 and with no breaks the curve is the
Chinchilla form. M_0 is off by default: on data close to a sum of single-input laws it is
weakly identified (it stands in for part of the limit or of a bottleneck component) and
chains mixed poorly with it (max R-hat 1.13 on simulated Chinchilla-form data, against
1.02 without it); compare the two structures by PSIS-LOO.

The priors follow the BNSL model's (see :mod:`bayes_unsl.models.bnsl`) input by input;
the reducible part at the centre of the data divides among the components by a Dirichlet
share. With one input the model is the BNSL model and its curve is the BNSL. As for the
BNSL, the sampler works in standardised coordinates and the natural-unit parameters at
``u = log x - center`` are recorded as deterministic sites:

- ``log_a``: log of the limit a;
- ``beta``, ``c0`` (one per input): log scale at the centre and initial slope of each
  bottleneck component;
- ``c``, ``delta``, ``f`` (input, break): slope changes, break locations (log units from the
  centre) and sharpness of the breaks of each bottleneck component;
- ``beta_joint``, ``c0_joint`` (one per input): log scale at the centre and slopes of the
  non-bottleneck component, when there is one.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_unsl.data import Dataset
from bayes_unsl.forms import UNSLStructure, unsl
from bayes_unsl.models.likelihood import observe_log_y
from bayes_unsl.models.registry import FormModel, register
from bayes_unsl.models.spec import ModelSpec
from bayes_unsl.priors import UNSLPriors

__all__ = [
    "UNSL",
    "UNSLContext",
    "default_structure",
    "has_joint",
    "unsl_context",
    "unsl_curve",
    "unsl_model",
    "unsl_param_count",
]


def has_joint(n_inputs: int, joint_component: bool = True) -> bool:
    """Whether the default structure has a non-bottleneck component: with two or more
    inputs, unless ``joint_component`` is off."""
    return joint_component and n_inputs > 1


def default_structure(n_inputs: int, joint_component: bool = True) -> UNSLStructure:
    """One single-input bottleneck component per input, then (with two or more inputs,
    unless ``joint_component`` is off) the non-bottleneck component over all of them; no
    opposition, no ceiling."""
    components = tuple((j,) for j in range(n_inputs))
    if has_joint(n_inputs, joint_component):
        components += (tuple(range(n_inputs)),)
    return UNSLStructure(n_inputs=n_inputs, components=components)


def unsl_param_count(n_inputs: int, breaks: int, joint_component: bool = True) -> int:
    """Free parameters of the default UNSL over ``n_inputs`` inputs with ``breaks`` breaks.

    Limit, centre scale and noise; the shares of the components but one; one slope per
    bottleneck component and one per input for the non-bottleneck component (if any);
    three per break of each bottleneck component.
    """
    joint = has_joint(n_inputs, joint_component)
    n_components = n_inputs + joint
    return 3 + (n_components - 1) + n_inputs * (1 + joint) + 3 * breaks * n_inputs


class UNSLContext(NamedTuple):
    """Constants the priors take from the training data (never from held-out points).

    A pytree passed to the model as an argument; ``half_range`` and ``break_upper_z`` hold
    one value per input column.
    """

    half_range: tuple[float, ...]
    log_y_min: float
    log_y_mean: float
    y_spread: float
    break_upper_z: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            k: [float(x) for x in v] if isinstance(v, tuple) else float(v)
            for k, v in self._asdict().items()
        }


def unsl_context(data: Dataset, spec: ModelSpec) -> UNSLContext:
    """Prior constants; refuses tables with fewer rows than the model has parameters.

    ``spec.n_params`` of the UNSL is the count for one input (the spec does not know the
    number of inputs), so the count for the table's inputs is checked here.
    """
    m = len(data.x_names)
    needed = unsl_param_count(m, spec.breaks, spec.priors.joint_component)
    if data.n_points < needed:
        raise ValueError(
            f"{data.n_points} point(s) is too few: form 'unsl' over {m} input(s) with "
            f"{spec.breaks} break(s) has {needed} free parameters and needs at least as many "
            "points; use fewer breaks or a simpler form"
        )
    half_range = tuple(float(h) for h in data.scaling.half_range)
    log_y = data.log_y
    margin = spec.priors.break_margin_decades * math.log(10.0)
    return UNSLContext(
        half_range=half_range,
        log_y_min=float(log_y.min()),
        log_y_mean=float(log_y.mean()),
        y_spread=max(float(np.ptp(log_y)), spec.priors.y_spread_floor),
        break_upper_z=tuple(1.0 + margin / h for h in half_range),
    )


def unsl_model(z, context: UNSLContext, log_y=None, *, spec: ModelSpec) -> None:
    """Default UNSL on log y: ``log y ~ Normal(log(a + sum_r M_r(x)), sigma)`` (or Student-t).

    ``z``: standardised log inputs, shape (n, m). ``context``: data-derived prior constants.
    ``log_y``: observed log metric, or None to sample from the prior predictive.
    """
    m = z.shape[1]
    p = spec.priors
    n = spec.breaks
    hr = jnp.asarray(context.half_range)
    spread = context.y_spread
    joint = has_joint(m, p.joint_component)
    n_components = m + joint

    limit_fraction = numpyro.sample("limit_fraction", dist.Beta(*p.limit_fraction))
    # log y near the centre of the data; a is kept below both min(y) and that value, and
    # the rest, the reducible part there, divides among the components.
    m_centre = numpyro.sample("m_centre", dist.Normal(context.log_y_mean, p.scale_sd))
    log_a = numpyro.deterministic(
        "log_a", jnp.log(limit_fraction) + jnp.minimum(context.log_y_min, m_centre)
    )
    log_reducible = m_centre + jnp.log1p(-jnp.exp(log_a - m_centre))
    if n_components > 1:
        share = numpyro.sample(
            "share", dist.Dirichlet(jnp.full(n_components, p.share_concentration))
        )
        log_scale = log_reducible + jnp.log(share)
    else:
        log_scale = log_reducible[None]
    # Slopes in log-y units at the lowest observation, as in the BNSL model.
    slope_scale = 1.0 / (1.0 - p.slope_coupling * limit_fraction)
    slope = dist.Normal(0.0, p.slope_sd * spread)
    c0_z = slope_scale * numpyro.sample("c0_y", slope.expand([m]))
    if n > 0:
        # Ordered breaks per input: Dirichlet spacings over [-1, break_upper_z_j].
        gaps = numpyro.sample("break_gaps", dist.Dirichlet(jnp.ones(n + 1)).expand([m]))
        upper = jnp.asarray(context.break_upper_z)[:, None]
        delta_z = -1.0 + (upper + 1.0) * jnp.cumsum(gaps, axis=-1)[:, :n]
        c_z = slope_scale * numpyro.sample(
            "c_y", dist.Normal(0.0, p.break_slope_sd * spread).expand([m, n])
        )
        log_f = numpyro.sample(
            "log_f_excess",
            dist.Normal(math.log(p.sharpness_median), p.sharpness_sd).expand([m, n]),
        )
        f_z = p.sharpness_floor + jnp.exp(log_f)
    else:
        delta_z = c_z = f_z = jnp.zeros((m, 0))
    params = {
        "log_a": log_a,
        "beta": numpyro.deterministic("beta", log_scale[:m]),
        "c0": numpyro.deterministic("c0", c0_z / hr),
        "c": numpyro.deterministic("c", c_z / hr[:, None]),
        "delta": numpyro.deterministic("delta", delta_z * hr[:, None]),
        "f": numpyro.deterministic("f", f_z * hr[:, None]),
    }
    if joint:
        c0_joint_z = slope_scale * numpyro.sample("c0_joint_y", slope.expand([m]))
        params["beta_joint"] = numpyro.deterministic("beta_joint", log_scale[m])
        params["c0_joint"] = numpyro.deterministic("c0_joint", c0_joint_z / hr)
    mu = unsl_curve(params, z * hr)
    observe_log_y(mu, log_y, priors=p, likelihood=spec.likelihood)


def unsl_curve(params, u):
    """Mean log y of one draw at ``u = log x - center``, shape (n, m).

    Builds the component parameters of :func:`bayes_unsl.forms.unsl` for
    :func:`default_structure` from the flat posterior sites; the non-bottleneck component
    is there when its sites are.
    """
    m = u.shape[-1]
    delta = jnp.asarray(params["delta"])
    n = delta.shape[-1]
    components = [
        {
            "beta": params["beta"][j],
            "c0": params["c0"][j : j + 1],
            "w": jnp.ones((n, 1), dtype=delta.dtype),
            "delta": delta[j],
            "f": params["f"][j],
            "c": params["c"][j],
        }
        for j in range(m)
    ]
    joint = "beta_joint" in params
    if joint:
        empty = jnp.zeros(0, dtype=delta.dtype)
        components.append(
            {
                "beta": params["beta_joint"],
                "c0": params["c0_joint"],
                "w": jnp.zeros((0, m), dtype=delta.dtype),
                "delta": empty,
                "f": empty,
                "c": empty,
            }
        )
    structure = default_structure(m, joint)
    return unsl({"log_a": params["log_a"], "components": components}, u, structure)


_BY_INPUT = ["input"]
_BY_BREAK = ["input", "brk"]

UNSL = register(
    FormModel(
        name="unsl",
        n_inputs=None,
        priors_type=UNSLPriors,
        context=unsl_context,
        model=unsl_model,
        curve=unsl_curve,
        curve_sites=("log_a", "beta", "c0", "c", "delta", "f", "beta_joint", "c0_joint", "sigma"),
        sampled_sites=(
            "limit_fraction",
            "m_centre",
            "share",
            "c0_y",
            "c0_joint_y",
            "break_gaps",
            "c_y",
            "log_f_excess",
            "log_sigma",
        ),
        # The count for one input; unsl_context checks the count for the table's inputs.
        n_params=lambda spec: unsl_param_count(1, spec.breaks),
        dims={
            "beta": _BY_INPUT,
            "c0": _BY_INPUT,
            "c0_y": _BY_INPUT,
            "c0_joint": _BY_INPUT,
            "c0_joint_y": _BY_INPUT,
            "c": _BY_BREAK,
            "delta": _BY_BREAK,
            "f": _BY_BREAK,
            "c_y": _BY_BREAK,
            "log_f_excess": _BY_BREAK,
            "break_gaps": ["input", "gap"],
            "share": ["component"],
        },
    )
)
