"""Compiled NUTS: multi-start MAP, chain initialisation and chunks of iterations.

NumPyro's ``MCMC`` driver runs initialisation op by op, which on a small model costs far
more compilation than sampling. Here the functional NUTS kernels of ``numpyro.infer.hmc``
are vmapped over chains and run inside ``lax.scan``, so a fit compiles two programs (an
initialiser and a chunk of iterations, cached on disk across processes when JAX's
persistent compilation cache is on). The same programs vmap over curves for batched fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from numpyro.infer.hmc import HMCState, hmc

__all__ = ["ChainOutput", "advance_chains", "chunk_length", "init_chains", "map_starts"]


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
    steps: int = 400,
    learning_rate: float = 0.05,
) -> tuple[jax.Array, jax.Array]:
    """Adam on the potential from each row of ``starts``; optima and potentials (inf if bad).

    A fixed number of Adam steps is a small program that compiles in a fraction of the time
    of a line-search optimiser; the optimum only has to place the chains in the right mode,
    and NUTS warm-up does the rest. Non-finite gradients stop a start where it is.
    """
    value_and_grad = jax.value_and_grad(potential)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def one(v0):
        def step(i, carry):
            v, m, s, best_v, best_f = carry
            f, g = value_and_grad(v)
            ok = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
            better = ok & (f < best_f)
            best_v = jnp.where(better, v, best_v)
            best_f = jnp.where(better, f, best_f)
            g = jnp.where(ok, g, 0.0)
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * g * g
            t = i + 1
            m_hat = m / (1 - b1**t)
            s_hat = s / (1 - b2**t)
            v = jnp.where(ok, v - learning_rate * m_hat / (jnp.sqrt(s_hat) + eps), v)
            return v, m, s, best_v, best_f

        zeros = jnp.zeros_like(v0)
        init = (v0, zeros, zeros, v0, jnp.asarray(jnp.inf, v0.dtype))
        _, _, _, best_v, best_f = jax.lax.fori_loop(0, steps, step, init)
        return best_v, best_f

    return jax.vmap(one)(starts)


def _kernels(potential, *, warmup, target_accept, max_tree_depth, dense_mass):
    init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")

    def init(key, z0):
        return init_kernel(
            z0,
            num_warmup=warmup,
            dense_mass=dense_mass,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            rng_key=key,
        )

    return init, sample_kernel


def init_chains(
    potential: Callable[[jax.Array], jax.Array],
    keys: jax.Array,
    inits: jax.Array,
    **config,
) -> HMCState:
    """NUTS states, one per row of ``inits`` (flat unconstrained vectors).

    ``config``: ``warmup``, ``target_accept``, ``max_tree_depth``, ``dense_mass``; the same
    values must be given to :func:`advance_chains`.
    """
    init, _ = _kernels(potential, **config)
    return jax.vmap(init)(keys, inits)


def advance_chains(
    potential: Callable[[jax.Array], jax.Array],
    state: HMCState,
    length: int,
    **config,
) -> tuple[HMCState, ChainOutput]:
    """``length`` NUTS iterations of every chain, with per-iteration draws and statistics.

    Warm-up and sampling are the same step: the kernel adapts while its iteration counter is
    below the warm-up length. Running the iterations in chunks lets the caller report
    progress between chunks without host callbacks inside the compiled loop.
    """
    init, sample = _kernels(potential, **config)
    # NumPyro's functional kernels keep their adaptation settings in the closure that the
    # init function fills in; trace one (discarded) init so that the sampler is configured.
    jax.vmap(init)(state.rng_key, state.z)
    step = jax.vmap(sample)

    def one(s, _):
        s = step(s)
        return s, (s.z, s.diverging, s.num_steps, s.accept_prob, s.potential_energy, s.energy)

    state, out = jax.lax.scan(one, state, None, length=length)
    out = jax.tree_util.tree_map(lambda v: jnp.swapaxes(v, 0, 1), out)  # (chain, iteration)
    return state, ChainOutput(*out, step_size=state.adapt_state.step_size)


def chunk_length(warmup: int, draws: int, chunks: int = 20) -> int:
    """Largest common divisor of warm-up and draws that gives at least ``chunks`` chunks."""
    g = math.gcd(warmup, draws)
    target = max(1, (warmup + draws) // chunks)
    return max(d for d in range(1, g + 1) if g % d == 0 and d <= target)
