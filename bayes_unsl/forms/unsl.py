"""Unified Neural Scaling Law (UNSL): this project's formulation, in log space.

UNSL (arXiv 2605.26248) nests three layers; its exact equations are not reproduced
here, and the form below is this project's own formulation of that structure:

- K: each component is an MBNSL (:func:`bayes_unsl.forms.mbnsl.mbnsl_log`) over a
  subset U_r of the inputs. A subset equal to all inputs is the non-bottleneck
  component; smaller subsets are bottleneck components (one input scarce).
- R: ``R = a + sum_r M_r``, with ``a >= 0`` the irreducible limit.
- Q: oppositional forces ``O_k`` rise with the inputs that hurt (a learning rate past
  its optimum, epochs of repetition), ``log O_k = gamma_k + u_U . e_k - hyperbreaks``,
  and ``y_Q = R + sum_k O_k``: a falling and a rising law added (additive symmetry).
- Ceiling (optional): for a metric bounded by chance level ``y_max``,
  ``y = (y_Q^(-p) + y_max^(-p))^(-1/p)``, so y never exceeds ``y_max``.

All sums are log-sum-exps of log terms. The Chinchilla form is the special case with
two single-input components, no breaks and no opposition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from bayes_unsl.forms._ops import break_sum, logsumexp_terms
from bayes_unsl.forms.mbnsl import mbnsl_log

Params = Mapping[str, Any]


@dataclass(frozen=True)
class UNSLStructure:
    """Static structure of a UNSL: which inputs each component and force depends on.

    Attributes:
        n_inputs: number of inputs m (the last axis of ``u``).
        components: input subsets U_r, one MBNSL each; a subset holding every input is
            the non-bottleneck component.
        opposition: input subsets of the oppositional forces O_k.
        ceiling: whether to bound y smoothly by ``y_max`` (needs ``log_y_max``, ``log_p``).
    """

    n_inputs: int
    components: tuple[tuple[int, ...], ...]
    opposition: tuple[tuple[int, ...], ...] = ()
    ceiling: bool = False

    def __post_init__(self) -> None:
        if self.n_inputs < 1:
            raise ValueError(f"n_inputs must be >= 1, got {self.n_inputs}")
        if not self.components:
            raise ValueError("a UNSL needs at least one component")
        for kind, subsets in (("component", self.components), ("opposition", self.opposition)):
            for subset in subsets:
                if not subset:
                    raise ValueError(f"empty {kind} subset")
                if len(set(subset)) != len(subset):
                    raise ValueError(f"repeated input in {kind} subset {subset}")
                if any(not 0 <= j < self.n_inputs for j in subset):
                    raise ValueError(f"{kind} subset {subset} out of range 0..{self.n_inputs - 1}")


def opposition_log(params: Params, u: ArrayLike) -> jax.Array:
    """Log O of one oppositional force at log inputs ``u`` of shape (..., k).

    params: ``gamma`` (scalar), ``e`` (k,) rising slopes, and hyperbreak terms ``w``,
    ``delta``, ``f``, ``c`` as in :func:`bayes_unsl.forms.mbnsl.mbnsl_log`.
    """
    u = jnp.asarray(u)
    proj = u @ jnp.asarray(params["w"]).T
    breaks = break_sum(proj, params["delta"], params["f"], params["c"])
    return params["gamma"] + u @ jnp.asarray(params["e"]) - breaks


def ceiling_log(log_y: ArrayLike, log_y_max: ArrayLike, log_p: ArrayLike) -> jax.Array:
    """Smooth minimum ``-(1/p) logaddexp(-p log_y, -p log_y_max)``, with ``p = e^log_p``.

    Written as the smaller of the two minus a non-negative softplus term (the same value,
    on each side of ``log_y = log_y_max``), so that the result is never above ``log_y_max``
    even after rounding. Both branches are finite, so gradients are too.
    """
    p = jnp.exp(log_p)
    log_y = jnp.asarray(log_y)
    gap = log_y - log_y_max
    below = log_y - jax.nn.softplus(p * gap) / p
    above = log_y_max - jax.nn.softplus(-p * gap) / p
    return jnp.where(gap <= 0, below, above)


def _subset(u: jax.Array, subset: Sequence[int]) -> jax.Array:
    return u[..., jnp.asarray(subset, dtype=jnp.int32)]


def unsl(params: Params, u: ArrayLike, structure: UNSLStructure) -> jax.Array:
    """Log y of a UNSL at log inputs ``u`` of shape (..., n_inputs); returns shape (...).

    params: ``log_a`` (scalar, ``-inf`` for a = 0); ``components``, a sequence of
    MBNSL param dicts in the order of ``structure.components``; ``opposition``, a
    sequence of :func:`opposition_log` param dicts in the order of
    ``structure.opposition`` (may be omitted when there is none); and with a ceiling,
    ``log_y_max`` and ``log_p`` (scalars).
    """
    u = jnp.asarray(u)
    if u.shape[-1:] != (structure.n_inputs,):
        raise ValueError(f"u must have last axis {structure.n_inputs}, got shape {u.shape}")
    comp_params = params["components"]
    opp_params = params.get("opposition", ()) if structure.opposition else ()
    if len(comp_params) != len(structure.components):
        raise ValueError(
            f"{len(comp_params)} component params for {len(structure.components)} components"
        )
    if len(opp_params) != len(structure.opposition):
        raise ValueError(
            f"{len(opp_params)} opposition params for {len(structure.opposition)} forces"
        )
    terms = [params["log_a"]]
    terms += [
        mbnsl_log(p, _subset(u, s)) for p, s in zip(comp_params, structure.components, strict=True)
    ]
    terms += [
        opposition_log(p, _subset(u, s))
        for p, s in zip(opp_params, structure.opposition, strict=True)
    ]
    log_y = logsumexp_terms(*terms)
    if structure.ceiling:
        log_y = ceiling_log(log_y, params["log_y_max"], params["log_p"])
    return log_y
