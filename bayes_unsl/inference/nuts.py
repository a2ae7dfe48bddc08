"""NUTS for one curve: multi-start MAP, jittered chain starts, compiled programs.

The result holds, as numpy arrays, what the InferenceData of a fit is built from: posterior
(sampled and deterministic sites), posterior predictive, log likelihood (for PSIS-LOO),
sample statistics and, on request, prior draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer import Predictive
from numpyro.infer.util import constrain_fn, log_likelihood, potential_energy

from bayes_unsl.inference.engine import (
    ChainOutput,
    advance_chains,
    chunk_length,
    init_chains,
    map_starts,
)
from bayes_unsl.inference.progress import ProgressBar

__all__ = ["PosteriorRun", "SamplerSettings", "run_nuts"]


@dataclass(frozen=True)
class SamplerSettings:
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    target_accept: float = 0.95
    max_tree_depth: int = 10
    dense_mass: bool = True
    map_starts: int = 16
    init_jitter: float = 0.1
    prior_draws: int = 0

    def __post_init__(self) -> None:
        for name in ("chains", "warmup", "draws", "max_tree_depth", "map_starts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept must be in (0, 1), got {self.target_accept!r}")
        if not isinstance(self.prior_draws, int) or self.prior_draws < 0:
            raise ValueError(
                f"prior_draws must be a non-negative integer, got {self.prior_draws!r}"
            )
        if not self.init_jitter >= 0:
            raise ValueError(f"init_jitter must be >= 0, got {self.init_jitter!r}")


@dataclass
class PosteriorRun:
    """Everything one NUTS run produced, as numpy arrays with a leading (chain, draw)."""

    posterior: dict[str, np.ndarray]
    log_likelihood: dict[str, np.ndarray]
    posterior_predictive: dict[str, np.ndarray]
    prior: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    info: dict[str, Any]


def _latent_sites(model: Callable, model_args: tuple, key: jax.Array) -> dict:
    """One prior draw of every latent site, in the sampler's unconstrained space."""
    tr = handlers.trace(handlers.seed(model, key)).get_trace(*model_args)
    return {
        name: biject_to(site["fn"].support).inv(site["value"])
        for name, site in tr.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def _structure(model: Callable, model_args: tuple):
    """Potential generator, postprocess generator and unravel function of a model.

    Read off an abstract trace (``jax.eval_shape``), so nothing runs op by op: NumPyro's
    ``initialize_model`` would spend seconds of eager compilation here.
    """
    shapes = jax.eval_shape(partial(_latent_sites, model, model_args), jax.random.PRNGKey(0))
    flat, unravel = ravel_pytree(
        jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    )

    def potential_gen(*args):
        return partial(potential_energy, model, args, {})

    def postprocess_gen(*args):
        return partial(constrain_fn, model, args, {}, return_deterministic=True)

    return potential_gen, postprocess_gen, unravel, int(flat.size)


def _kernel_config(settings: SamplerSettings) -> dict:
    return {
        "warmup": settings.warmup,
        "target_accept": settings.target_accept,
        "max_tree_depth": settings.max_tree_depth,
        "dense_mass": settings.dense_mass,
    }


def _init_program(potential_gen, unravel, dim: int, settings: SamplerSettings):
    """Multi-start MAP, then NUTS states for every chain near the best optimum."""

    def program(key, *model_args):
        potential_dict = potential_gen(*model_args)

        def potential(v):
            return potential_dict(unravel(v))

        start_key, jitter_key, chain_key = jax.random.split(key, 3)
        starts = jax.random.uniform(start_key, (settings.map_starts, dim), minval=-2, maxval=2)
        optima, values = map_starts(potential, starts)
        best = jnp.argmin(values)
        finite = jnp.isfinite(values[best])
        noise = settings.init_jitter * jax.random.normal(jitter_key, (settings.chains, dim))
        inits = jnp.where(finite, optima[best][None, :] + noise, starts[: settings.chains])
        state = init_chains(
            potential,
            jax.random.split(chain_key, settings.chains),
            inits,
            **_kernel_config(settings),
        )
        return state, values[best], jnp.sum(jnp.isfinite(values))

    return jax.jit(program)


def _chunk_program(potential_gen, unravel, length: int, settings: SamplerSettings):
    def program(state, *model_args):
        potential_dict = potential_gen(*model_args)

        def potential(v):
            return potential_dict(unravel(v))

        return advance_chains(potential, state, length, **_kernel_config(settings))

    return jax.jit(program)


def _posterior_program(model, postprocess_gen, unravel):
    def program(key, flat_z, *model_args):
        constrain = postprocess_gen(*model_args)
        samples = jax.vmap(lambda v: constrain(unravel(v)))(flat_z)
        loglik = log_likelihood(model, samples, *model_args)
        ppc = Predictive(model, posterior_samples=samples)(key, *model_args[:-1])
        return samples, loglik, ppc

    return jax.jit(program)


def _prior_program(model, draws: int):
    def one(key, *inputs):
        tr = handlers.trace(handlers.seed(model, key)).get_trace(*inputs)
        return {
            name: site["value"]
            for name, site in tr.items()
            if site["type"] in ("sample", "deterministic")
        }

    def program(key, *inputs):
        keys = jax.random.split(key, draws)
        return jax.vmap(lambda k: one(k, *inputs))(keys)

    return jax.jit(program)


_PROGRAMS: dict = {}


def _programs(model: Callable, settings: SamplerSettings, model_args: tuple):
    """Compiled programs for a model, settings and argument shapes, built once per process.

    The data are arguments of the programs, not constants, so every curve of the same length
    reuses them (and JAX's persistent cache can reuse them across processes).
    """
    leaves, treedef = jax.tree_util.tree_flatten(model_args)
    signature = tuple((np.shape(v), jnp.asarray(v).dtype.name) for v in leaves)
    key = (model, settings, treedef, signature, bool(jax.config.jax_enable_x64))
    if key not in _PROGRAMS:
        potential_gen, postprocess_gen, unravel, dim = _structure(model, model_args)
        init_program = _init_program(potential_gen, unravel, dim, settings)
        length = chunk_length(settings.warmup, settings.draws)
        chunk_program = _chunk_program(potential_gen, unravel, length, settings)
        example_state = jax.eval_shape(init_program, jax.random.PRNGKey(0), *model_args)[0]
        _PROGRAMS[key] = (
            init_program.lower(jax.random.PRNGKey(0), *model_args).compile(),
            chunk_program.lower(example_state, *model_args).compile(),
            length,
            _posterior_program(model, postprocess_gen, unravel),
            _prior_program(model, settings.prior_draws) if settings.prior_draws else None,
            dim,
        )
    return _PROGRAMS[key]


def run_nuts(
    rng_key: jax.Array,
    model: Callable,
    model_args: tuple,
    settings: SamplerSettings,
    *,
    progress: bool = False,
) -> PosteriorRun:
    """Multi-start MAP, then NUTS chains from the best optimum; all as compiled programs.

    ``model_args`` are the model's positional arguments, the observations last (the
    predictive programs call the model without them). ``progress``: draw a progress bar
    on stderr.
    """
    started = time.perf_counter()
    init_program, chunk_program, length, posterior_program, prior_program, dim = _programs(
        model, settings, model_args
    )
    compiled = time.perf_counter()
    run_key, post_key, prior_key = jax.random.split(rng_key, 3)
    state, map_value, n_finite = init_program(run_key, *model_args)
    total = settings.warmup + settings.draws
    bar = ProgressBar(total, settings.warmup, settings.chains) if progress else None
    chunks = []
    for done in range(length, total + 1, length):
        state, chunk = chunk_program(state, *model_args)
        if done > settings.warmup:
            chunks.append(jax.tree_util.tree_map(np.asarray, chunk))
        if bar is not None:
            jax.block_until_ready(state)
            bar.update(done)
    if bar is not None:
        bar.close()
    out = ChainOutput(
        *(
            np.concatenate([getattr(c, f) for c in chunks], axis=1)
            for f in ChainOutput._fields[:-1]
        ),
        step_size=np.asarray(chunks[-1].step_size),
    )
    sampled = time.perf_counter()
    c, d = settings.chains, settings.draws
    samples, loglik, ppc = posterior_program(
        post_key, jnp.asarray(out.z.reshape(c * d, dim)), *model_args
    )
    prior = prior_program(prior_key, *model_args[:-1]) if prior_program is not None else {}

    def by_chain(tree):
        return {k: np.asarray(v).reshape((c, d) + np.shape(v)[1:]) for k, v in tree.items()}

    stats = {
        "diverging": out.diverging,
        "n_steps": out.num_steps,
        "tree_depth": np.floor(np.log2(out.num_steps + 1.0)).astype(int),
        "acceptance_rate": out.accept_prob,
        "lp": -out.potential_energy,
        "energy": out.energy,
        "step_size": np.broadcast_to(out.step_size[:, None], out.diverging.shape),
    }
    info = {
        "map_potential": float(map_value),
        "map_starts_finite": int(n_finite),
        "seconds_compile": compiled - started,
        "seconds_sampling": sampled - compiled,
    }
    return PosteriorRun(
        posterior=by_chain(samples),
        log_likelihood=by_chain(loglik),
        posterior_predictive=by_chain({"log_y": ppc["log_y"]}),
        prior={k: np.asarray(v)[None] for k, v in prior.items()},
        sample_stats=stats,
        info=info,
    )
