"""One compiled NUTS program: warm-up and sampling for every chain in a single ``jit``.

NumPyro's ``MCMC`` driver runs initialisation op by op, which on a small model costs far
more compilation than sampling. Here the functional NUTS kernels of ``numpyro.infer.hmc``
are run inside ``lax.scan`` and vmapped over chains, so a fit compiles one program (cached
on disk across processes when JAX's persistent compilation cache is on). The same program
vmaps over curves for batched fits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.optimize import minimize
from numpyro.infer.hmc import hmc

__all__ = ["ChainOutput", "map_starts", "nuts_chains"]


class ChainOutput(NamedTuple):
    """Draws in flat unconstrained space and per-draw sampler statistics."""

    z: jax.Array  # (..., draws, dim)
    diverging: jax.Array
    num_steps: jax.Array
    accept_prob: jax.Array
    potential_energy: jax.Array
    energy: jax.Array
    step_size: jax.Array  # (...,) adapted step size


def map_starts(
    potential: Callable[[jax.Array], jax.Array],
    starts: jax.Array,
    *,
    maxiter: int = 300,
) -> tuple[jax.Array, jax.Array]:
    """BFGS from each row of ``starts``; returns optima and their potentials (inf if bad)."""

    def one(v0):
        res = minimize(potential, v0, method="BFGS", options={"maxiter": maxiter})
        ok = jnp.isfinite(res.fun) & jnp.all(jnp.isfinite(res.x))
        return res.x, jnp.where(ok, res.fun, jnp.inf)

    return jax.vmap(one)(starts)


def nuts_chains(
    potential: Callable[[jax.Array], jax.Array],
    keys: jax.Array,
    inits: jax.Array,
    *,
    warmup: int,
    draws: int,
    target_accept: float,
    max_tree_depth: int,
    dense_mass: bool,
) -> ChainOutput:
    """Run one NUTS chain per row of ``inits`` (flat unconstrained vectors)."""
    init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")

    def one_chain(key, z0):
        state = init_kernel(
            z0,
            num_warmup=warmup,
            dense_mass=dense_mass,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            rng_key=key,
        )

        def warm(s, _):
            return sample_kernel(s), None

        state, _ = jax.lax.scan(warm, state, None, length=warmup)

        def draw(s, _):
            s = sample_kernel(s)
            return s, (s.z, s.diverging, s.num_steps, s.accept_prob, s.potential_energy, s.energy)

        state, out = jax.lax.scan(draw, state, None, length=draws)
        return ChainOutput(*out, step_size=state.adapt_state.step_size)

    return jax.vmap(one_chain)(keys, inits)
