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
- ``beta``, ``c0`` (one per input): the form's log scale at the centre (before the breaks'
  contribution there) and initial slope of each bottleneck component; each component is
  sampled through its value at the centre, its mean slope over the data and its breaks'
  visible slope changes, as in the BNSL model (:mod:`bayes_unsl.models.pivot`);
- ``c``, ``delta``, ``f`` (input, break): slope changes, break locations (log units from the
  centre) and sharpness of the breaks of each bottleneck component;
- ``beta_joint``, ``c0_joint`` (one per input): log scale at the centre and slopes of the
  non-bottleneck component, when there is one;
- ``gamma`` (force) and ``rise`` (force, input): log scale at the centre and rise per log
  unit of each oppositional force, with ``UNSLPriors(opposition=[...])``.

``UNSLPriors(no_bottleneck=[...])`` leaves inputs without a bottleneck component (their
``beta`` is ``-inf``); ``opposition=[...]`` adds one rising force per entry (an input, or a
list of inputs the force rises with together), so that an input with both falls and then
rises (a learning rate) and an input with only a force just hurts (epochs of repeated
data).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_unsl.data import Dataset
from bayes_unsl.forms import UNSLStructure, unsl
from bayes_unsl.forms._ops import log1mexp
from bayes_unsl.models.likelihood import NOISE_TREND_SITE, observe_log_y
from bayes_unsl.models.pivot import centre_slope_scale, from_centre
from bayes_unsl.models.registry import FormModel, register
from bayes_unsl.models.spec import ModelSpec
from bayes_unsl.priors import UNSLPriors

__all__ = [
    "UNSL",
    "FewValuesWarning",
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


def unsl_param_count(
    n_inputs: int,
    breaks: int,
    joint_component: bool = True,
    no_bottleneck: tuple[int, ...] = (),
    opposition: tuple[tuple[int, ...], ...] = (),
) -> int:
    """Free parameters of the default UNSL over ``n_inputs`` inputs with ``breaks`` breaks.

    Limit, centre scale and noise; the shares of the components and forces but one; one
    slope per bottleneck component and one per input for the non-bottleneck component (if
    any); three per break of each bottleneck component; one rise per input of each
    oppositional force.
    """
    joint = has_joint(n_inputs, joint_component)
    n_bottleneck = n_inputs - len(no_bottleneck)
    n_terms = n_bottleneck + joint + len(opposition)
    n_rises = sum(len(force) for force in opposition)
    return 3 + (n_terms - 1) + n_bottleneck + n_inputs * joint + 3 * breaks * n_bottleneck + n_rises


def term_slope_scale(
    log_limit_share: jax.Array, share: jax.Array, coupling: float, share_slopes: bool
) -> jax.Array:
    """Factor from slopes seen in log y to slopes of each term's log, one per term.

    ``log_limit_share``: log(a / y) at the centre; ``share``: the terms' shares of y - a
    there. Without ``share_slopes`` every term gets the single-component factor of
    :func:`~bayes_unsl.models.pivot.centre_slope_scale`. With it, term r's factor uses the
    part of y that is not term r, ``a / y + (1 - a / y)(1 - share_r)``: its slope seen in
    log y is ``(M_r / y)`` times its slope in log M_r, and that is what the data fix. With
    one term the two agree.
    """
    if not share_slopes or share.shape[0] == 1:
        return jnp.broadcast_to(centre_slope_scale(log_limit_share, coupling), share.shape)
    log_reducible_share = log1mexp(log_limit_share)
    # A share that rounds to 1 leaves the rest to the limit alone (finite gradients).
    others = jnp.log1p(-jnp.minimum(share, 1.0 - jnp.finfo(share.dtype).eps))
    log_rest = jnp.logaddexp(log_limit_share, log_reducible_share + others)
    return centre_slope_scale(log_rest, coupling)


def _check_structure(m: int, priors: UNSLPriors) -> None:
    named = {
        "no_bottleneck": priors.no_bottleneck,
        "opposition": [j for force in priors.opposition for j in force],
    }
    for name, indices in named.items():
        bad = sorted({j for j in indices if j >= m})
        if bad:
            raise ValueError(
                f"prior setting {name!r} names input column(s) {bad}, but the data have "
                f"{m} input(s) (indices 0..{m - 1})"
            )
    if len(priors.no_bottleneck) == m and not has_joint(m, priors.joint_component):
        raise ValueError(
            "every input is in 'no_bottleneck' and there is no joint component: the model "
            "would have no falling component; turn joint_component on or list fewer inputs"
        )


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


class FewValuesWarning(UserWarning):
    """An input has too few distinct values for the breaks of its component."""


def warn_few_values(data: Dataset, kept: list[int], breaks: int) -> None:
    """Warn where a component with breaks is seen at fewer distinct input values than a BNSL
    with those breaks needs points.

    A bottleneck component over input j is a BNSL in x_j, and the data show it only at the
    distinct values of x_j: with fewer, its breaks cannot be placed. Measured: on a 5 x 5
    grid of two inputs, no UNSL fit with 1 break per input passed the convergence checks
    (90% diverged), against 70% without breaks (benchmarks/results/sbc_unsl*.md).
    """
    if breaks == 0:
        return
    needed = 4 + 3 * breaks
    for j in kept:
        distinct = int(np.unique(data.z[:, j]).size)
        if distinct < needed:
            warnings.warn(
                f"input {data.x_names[j]!r} takes {distinct} distinct value(s), fewer than the "
                f"{needed} a BNSL with {breaks} break(s) needs: the data cannot place the breaks "
                "of its component, and the posterior will mix poorly (on a 5 x 5 grid no "
                "two-input fit with a break per input converged). Fit with breaks=0, or give "
                "that input more distinct values.",
                FewValuesWarning,
                stacklevel=4,
            )


def unsl_context(data: Dataset, spec: ModelSpec) -> UNSLContext:
    """Prior constants; refuses tables with fewer rows than the model has parameters.

    ``spec.n_params`` of the UNSL is the count for one input (the spec does not know the
    number of inputs), so the count for the table's inputs is checked here.
    """
    m = len(data.x_names)
    p = spec.priors
    _check_structure(m, p)
    needed = unsl_param_count(m, spec.breaks, p.joint_component, p.no_bottleneck, p.opposition)
    if data.n_points < needed:
        raise ValueError(
            f"{data.n_points} point(s) is too few: form 'unsl' over {m} input(s) with "
            f"{spec.breaks} break(s) has {needed} free parameters and needs at least as many "
            "points; use fewer breaks or a simpler form"
        )
    kept = [j for j in range(m) if j not in p.no_bottleneck]
    warn_few_values(data, kept, spec.breaks)
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
    kept = [j for j in range(m) if j not in p.no_bottleneck]
    kept_idx = jnp.asarray(kept, dtype=jnp.int32)
    n_kept, n_forces = len(kept), len(p.opposition)
    n_terms = n_kept + joint + n_forces

    limit_fraction = numpyro.sample("limit_fraction", dist.Beta(*p.limit_fraction))
    # log y near the centre of the data; a is kept below both min(y) and that value, and
    # the rest, the reducible part there, divides among the components and forces.
    m_centre = numpyro.sample("m_centre", dist.Normal(context.log_y_mean, p.scale_sd))
    log_a = numpyro.deterministic(
        "log_a", jnp.log(limit_fraction) + jnp.minimum(context.log_y_min, m_centre)
    )
    log_reducible = m_centre + log1mexp(log_a - m_centre)
    log_limit_share = log_a - m_centre
    if n_terms > 1:
        share = numpyro.sample("share", dist.Dirichlet(jnp.full(n_terms, p.share_concentration)))
        log_scale = log_reducible + jnp.log(share)
    else:
        share = jnp.ones(1)
        log_scale = log_reducible[None]
    # Mean slopes over the data in log-y units at the centre, as in the BNSL model: one
    # factor per term, which with share_slopes also counts the other terms' part of y.
    slope_scale = term_slope_scale(log_limit_share, share, p.slope_coupling, p.share_slopes)
    slope = dist.Normal(0.0, p.slope_sd * spread)
    mean_slope = slope_scale[:n_kept] * numpyro.sample("c0_y", slope.expand([n_kept]))
    if n > 0:
        # Ordered breaks per input: Dirichlet spacings over [-1, break_upper_z_j].
        gaps = numpyro.sample(
            "break_gaps", dist.Dirichlet(jnp.full(n + 1, p.break_concentration)).expand([n_kept])
        )
        upper = jnp.asarray(context.break_upper_z)[kept_idx, None]
        delta_z = -1.0 + (upper + 1.0) * jnp.cumsum(gaps, axis=-1)[:, :n]
        c_visible = slope_scale[:n_kept, None] * numpyro.sample(
            "c_y", dist.Normal(0.0, p.break_slope_sd * spread).expand([n_kept, n])
        )
        log_f = numpyro.sample(
            "log_f_excess",
            dist.Normal(math.log(p.sharpness_median), p.sharpness_sd).expand([n_kept, n]),
        )
        f_z = p.sharpness_floor + jnp.exp(log_f)
        # Each component passes through its share of y - a at the centre, with the sampled
        # mean slope over the data (see bayes_unsl.models.pivot).
        beta, c0_z, c_z = from_centre(
            log_scale[:n_kept], mean_slope, c_visible, delta_z, f_z, upper
        )
    else:
        beta, c0_z = log_scale[:n_kept], mean_slope
        delta_z = c_z = f_z = jnp.zeros((n_kept, 0))

    # Inputs without a bottleneck component keep a place in the per-input sites, with a
    # component of zero size (log scale -inf) and no breaks that act.
    def per_input(values, fill):
        if n_kept == m:
            return values
        full = jnp.full((m, *values.shape[1:]), fill, dtype=values.dtype)
        return full.at[kept_idx].set(values)

    hr_kept = hr[kept_idx]
    params = {
        "log_a": log_a,
        "beta": numpyro.deterministic("beta", per_input(beta, -jnp.inf)),
        "c0": numpyro.deterministic("c0", per_input(c0_z / hr_kept, 0.0)),
        "c": numpyro.deterministic("c", per_input(c_z / hr_kept[:, None], 0.0)),
        "delta": numpyro.deterministic("delta", per_input(delta_z * hr_kept[:, None], 0.0)),
        "f": numpyro.deterministic("f", per_input(f_z * hr_kept[:, None], 1.0)),
    }
    if joint:
        c0_joint_z = slope_scale[n_kept] * numpyro.sample("c0_joint_y", slope.expand([m]))
        params["beta_joint"] = numpyro.deterministic("beta_joint", log_scale[n_kept])
        params["c0_joint"] = numpyro.deterministic("c0_joint", c0_joint_z / hr)
    if n_forces:
        # One rise per input of each force, placed in a (force, input) matrix.
        rows = jnp.asarray([k for k, force in enumerate(p.opposition) for _ in force])
        cols = jnp.asarray([j for force in p.opposition for j in force])
        rise_z = numpyro.sample(
            "rise_z", dist.HalfNormal(p.opposition_slope_sd).expand([len(cols)])
        )
        rise = jnp.zeros((n_forces, m)).at[rows, cols].set(rise_z / hr[cols])
        params["gamma"] = numpyro.deterministic("gamma", log_scale[n_kept + joint :])
        params["rise"] = numpyro.deterministic("rise", rise)
    mu = unsl_curve(params, z * hr)
    observe_log_y(mu, log_y, priors=p, likelihood=spec.likelihood, z=z)


def unsl_curve(params, u):
    """Mean log y of one draw at ``u = log x - center``, shape (n, m).

    Builds the component parameters of :func:`bayes_unsl.forms.unsl` for
    :func:`default_structure` from the flat posterior sites; the non-bottleneck component
    is there when its sites are, and so are the oppositional forces (``gamma``, ``rise``).
    An input without a bottleneck component has ``beta = -inf``: its term drops out.
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
    opposition = []
    if "gamma" in params:
        rise = jnp.asarray(params["rise"])
        empty = jnp.zeros(0, dtype=rise.dtype)
        opposition = [
            {
                "gamma": g,
                "e": e,
                "w": jnp.zeros((0, m), dtype=rise.dtype),
                "delta": empty,
                "f": empty,
                "c": empty,
            }
            for g, e in zip(jnp.asarray(params["gamma"]), rise, strict=True)
        ]
    structure = default_structure(m, joint)
    structure = UNSLStructure(
        n_inputs=m,
        components=structure.components,
        opposition=(tuple(range(m)),) * len(opposition),
    )
    return unsl(
        {"log_a": params["log_a"], "components": components, "opposition": opposition},
        u,
        structure,
    )


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
        curve_sites=(
            "log_a",
            "beta",
            "c0",
            "c",
            "delta",
            "f",
            "beta_joint",
            "c0_joint",
            "gamma",
            "rise",
            "sigma",
            NOISE_TREND_SITE,
        ),
        sampled_sites=(
            "limit_fraction",
            "m_centre",
            "share",
            "c0_y",
            "c0_joint_y",
            "break_gaps",
            "c_y",
            "log_f_excess",
            "rise_z",
            "log_sigma",
            NOISE_TREND_SITE,
        ),
        # The count for one input; unsl_context checks the count for the table's inputs.
        n_params=lambda spec: unsl_param_count(1, spec.breaks),
        dims={
            "beta": _BY_INPUT,
            "c0": _BY_INPUT,
            "c0_y": ["bottleneck"],
            "c0_joint": _BY_INPUT,
            "c0_joint_y": _BY_INPUT,
            "c": _BY_BREAK,
            "delta": _BY_BREAK,
            "f": _BY_BREAK,
            "c_y": ["bottleneck", "brk"],
            "log_f_excess": ["bottleneck", "brk"],
            "break_gaps": ["bottleneck", "gap"],
            "share": ["component"],
            "gamma": ["force"],
            "rise_z": ["force_input"],
            "rise": ["force", "input"],
        },
    )
)
