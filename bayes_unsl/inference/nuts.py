"""NUTS for one curve or a batch: multi-start MAP, jittered chain starts, compiled programs.

The result holds, as numpy arrays, what the InferenceData of a fit is built from: posterior
(sampled and deterministic sites), posterior predictive, log likelihood (for PSIS-LOO),
sample statistics and, on request, prior draws.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer import Predictive
from numpyro.infer.util import constrain_fn, log_likelihood, potential_energy

from bayes_unsl._cache import program_store_dir
from bayes_unsl.inference.engine import (
    ChainOutput,
    advance_chains,
    chunk_length,
    init_chains,
    map_starts,
)
from bayes_unsl.inference.progress import ProgressBar
from bayes_unsl.inference.stored import StoredProgram, model_identity
from bayes_unsl.inference.transport import TubeMap, mapped_potential, to_unconstrained

__all__ = ["PosteriorRun", "SamplerSettings", "run_nuts", "run_nuts_batch"]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class SamplerSettings:
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    target_accept: float = 0.95
    max_tree_depth: int = 10
    # Max tree depth during warm-up's first chunk of iterations (1/20 of the run or less:
    # 100 of 1000 + 1000, the iterations before the first mass-matrix estimate), whose
    # trajectories, under the identity metric, otherwise run to the depth limit. None: no
    # separate limit.
    early_tree_depth: int | None = None
    dense_mass: bool = True
    map_starts: int = 16
    init_jitter: float = 0.1
    prior_draws: int = 0

    def __post_init__(self) -> None:
        for name in ("chains", "warmup", "draws", "max_tree_depth", "map_starts"):
            value = getattr(self, name)
            if not _positive_int(value):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        early = self.early_tree_depth
        if early is not None and not _positive_int(early):
            raise ValueError(f"early_tree_depth must be a positive integer or None, got {early!r}")
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
    unconstrained: np.ndarray | None = None  # (chain, draw, dim) flat unconstrained draws


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


def _early_limited(settings: SamplerSettings) -> bool:
    """Whether the first chunk of warm-up runs under a lower depth limit than the rest."""
    early = settings.early_tree_depth
    return early is not None and early < settings.max_tree_depth


def _kernel_config(settings: SamplerSettings, early: bool = False) -> dict:
    """The NUTS kernel's settings; ``early``: those of warm-up's first chunk (NumPyro's
    ``(warm-up, draws)`` depth pair; the chunk never reaches the draws)."""
    depth = settings.max_tree_depth
    if early and _early_limited(settings):
        depth = (settings.early_tree_depth, depth)
    return {
        "warmup": settings.warmup,
        "target_accept": settings.target_accept,
        "max_tree_depth": depth,
        "dense_mass": settings.dense_mass,
    }


def _flat_potential(potential_gen, unravel, mapped: bool):
    """``args -> (v -> potential)`` on flat vectors; with ``mapped``, the first argument is
    a :class:`TubeMap` and ``v`` lives in its coordinates."""

    def of(*args):
        tube, model_args = (args[0], args[1:]) if mapped else (None, args)
        potential_dict = potential_gen(*model_args)

        def potential(v):
            return potential_dict(unravel(v))

        return potential if tube is None else mapped_potential(tube, potential)

    return of


def _init_program(potential_of, dim: int, settings: SamplerSettings):
    """Multi-start MAP, then NUTS states for every chain near the best optimum."""

    def program(key, *args):
        potential = potential_of(*args)
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

    return program


def _chunk_program(potential_of, length: int, settings: SamplerSettings, early: bool = False):
    config = _kernel_config(settings, early)

    def program(state, *args):
        return advance_chains(potential_of(*args), state, length, **config)

    return program


def _posterior_program(model, postprocess_gen, unravel):
    def program(key, flat_z, *model_args):
        constrain = postprocess_gen(*model_args)
        samples = jax.vmap(lambda v: constrain(unravel(v)))(flat_z)
        loglik = log_likelihood(model, samples, *model_args)
        ppc = Predictive(model, posterior_samples=samples)(key, *model_args[:-1])
        return samples, loglik, ppc

    return program


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

    return program


class _Programs(NamedTuple):
    init: Callable
    chunk: Callable
    length: int
    posterior: Callable
    prior: Callable | None
    first: Callable | None = None  # the first chunk, under ``early_tree_depth``


_PROGRAMS: dict = {}
# Compiled programs kept in memory (least recently used dropped first; the disk caches keep
# the rest).
MAX_PROGRAMS = 32
# Share of the system's memory-map limit past which programs are dropped. A compiled CPU
# program holds hundreds of memory maps (one NUTS fit's programs, over 1,000); past the
# limit (Linux's vm.max_map_count, often 65,530) the next compilation aborts the process.
MAX_MAP_SHARE = 0.5
# Past this share with none of the package's programs left to drop, the maps are held
# elsewhere in the process, and a warning says what to do before a compilation aborts it.
WARN_MAP_SHARE = 0.8


def memory_maps() -> tuple[int, int] | None:
    """``(in use, limit)`` of this process's memory maps where the system says (Linux)."""
    try:
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
        with open("/proc/self/maps", "rb") as maps:
            in_use = sum(1 for _ in maps)
    except (OSError, ValueError):
        return None
    return in_use, limit


def _map_share() -> float:
    """The share of the system's memory-map limit in use (0 where the system does not say)."""
    maps = memory_maps()
    return 0.0 if maps is None else maps[0] / maps[1]


def _make_room() -> None:
    """Drop the least recently used programs until a new one fits both bounds."""
    while _PROGRAMS and (len(_PROGRAMS) >= MAX_PROGRAMS or _map_share() > MAX_MAP_SHARE):
        del _PROGRAMS[next(iter(_PROGRAMS))]
    maps = memory_maps()
    if maps is not None and maps[0] > WARN_MAP_SHARE * maps[1]:
        warnings.warn(
            f"this process holds {maps[0]} of the {maps[1]} memory maps the system allows, "
            "outside this package's compiled programs (other compiled JAX functions hold "
            "hundreds each); past the limit the next compilation aborts the process. "
            "Restart it (a notebook: its kernel), call jax.clear_caches(), or raise the limit "
            "(Linux: sysctl vm.max_map_count).",
            RuntimeWarning,
            stacklevel=2,
        )


def _shard_map(program: Callable, mesh: Mesh, in_specs: tuple, out_specs) -> Callable:
    """``jax.shard_map`` without its replication checks (older JAX: the experimental one)."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(
            program, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False
        )
    from jax.experimental.shard_map import shard_map

    return shard_map(program, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((np.shape(v), jnp.asarray(v).dtype.name) for v in leaves)


def _programs(
    model: Callable,
    settings: SamplerSettings,
    model_args: tuple,
    placement: _Placement,
    tube: TubeMap | None = None,
) -> _Programs:
    """Compiled programs for a model, settings, argument shapes and placement, built once.

    The data are arguments of the programs, not constants, so every curve of the same length
    reuses them (and JAX's persistent cache can reuse them across processes). With a batch,
    every program is vmapped over a leading curve axis, which is sharded across devices.
    With a ``tube`` map, the sampling programs take it as their first argument after the
    key or state, and sample in its coordinates.
    """
    mapped = tube is not None
    key = (
        model,
        settings,
        _signature(model_args),
        placement.key,
        bool(jax.config.jax_enable_x64),
        mapped,
    )
    if key in _PROGRAMS:
        _PROGRAMS[key] = _PROGRAMS.pop(key)  # the most recently used, dropped last
        return _PROGRAMS[key]
    _make_room()  # before compiling: the new programs need the maps the old ones free
    one_curve = model_args
    if placement.batched:
        one_curve = jax.tree_util.tree_map(lambda v: v[0], model_args)
    structure = cache(partial(_structure, model, one_curve))
    over_curves = jax.vmap if placement.batched else (lambda program: program)
    length = chunk_length(settings.warmup, settings.draws)

    def init():
        potential_gen, _, unravel, dim = structure()
        potential_of = _flat_potential(potential_gen, unravel, mapped)
        return over_curves(_init_program(potential_of, dim, settings))

    def chunk(early: bool = False):
        potential_gen, _, unravel, _ = structure()
        potential_of = _flat_potential(potential_gen, unravel, mapped)
        program = _chunk_program(potential_of, length, settings, early)
        return placement.split_chains(over_curves(program))

    def posterior():
        _, postprocess_gen, unravel, _ = structure()
        return over_curves(_posterior_program(model, postprocess_gen, unravel))

    def prior():
        return over_curves(_prior_program(model, settings.prior_draws))

    builders = {"init": init, "chunk": chunk, "posterior": posterior}
    if _early_limited(settings):
        builders["first"] = partial(chunk, early=True)
    if settings.prior_draws:
        builders["prior"] = prior
    store = _store_for(model, settings, placement)
    if store is not None:
        programs = {
            name: store(f"{name}-mapped" if mapped and name in _SAMPLING else name, build)
            for name, build in builders.items()
        }
    else:
        sampler_args = model_args if tube is None else (tube, *model_args)
        programs = _compiled_programs(builders, sampler_args, placement)
    _PROGRAMS[key] = _Programs(
        init=programs["init"],
        chunk=programs["chunk"],
        length=length,
        posterior=programs["posterior"],
        prior=programs.get("prior"),
        first=programs.get("first"),
    )
    return _PROGRAMS[key]


def _store_for(model: Callable, settings: SamplerSettings, placement: _Placement):
    """``(name, build) -> StoredProgram`` where programs can be stored, else None.

    Stored: this package's models, for one curve (its chains on one device or split over
    several) or a batch on one device, while the cache is on. A sharded batch is compiled
    from its trace, with its shardings.
    """
    identity = model_identity(model)
    directory = program_store_dir()
    if identity is None or directory is None or placement.sharding is not None:
        return None
    platform = placement.devices[0].platform if placement.devices else jax.default_backend()
    x64 = bool(jax.config.jax_enable_x64)

    def store(name: str, build: Callable[[], Callable]) -> StoredProgram:
        key = (identity, repr(settings), name, placement.batch, placement.n_chain_devices, x64)
        shardings = placement.chunk_shardings if name in _CHUNKS else None
        return StoredProgram(build, key, directory, platform, shardings=shardings)

    return store


_CHUNKS = ("chunk", "first")  # programs that advance the chains' state
_SAMPLING = ("init", *_CHUNKS)  # the programs that take a tube map when sampling in one


def _compiled_programs(builders: dict, sampler_args: tuple, placement: _Placement) -> dict:
    """Programs compiled ahead of time from their trace, outputs split over the devices.

    ``sampler_args``: the sampling programs' arguments after the key or state (a tube map,
    if any, then ``model_args``)."""
    keys = placement.put(placement.keys(jax.random.PRNGKey(0)))
    init = builders["init"]()
    example_state = placement.abstract(jax.eval_shape(init, keys, *sampler_args)[0])
    # Every output has the curve axis in front: keep it split over the devices, so that
    # the state flows from one program to the next without moving.
    jit = partial(jax.jit, out_shardings=placement.sharding)
    chunk_jit = jit
    if placement.chunk_shardings is not None:  # one curve, its chains split
        first, rest, out = placement.chunk_shardings
        in_shardings = (first,) + (rest,) * len(sampler_args)
        chunk_jit = partial(jax.jit, in_shardings=in_shardings, out_shardings=out)
    programs = {
        "init": jit(init).lower(keys, *sampler_args).compile(),
        "posterior": jax.jit(builders["posterior"]()),
    }
    for name in _CHUNKS:
        if name in builders:
            program = chunk_jit(builders[name]())
            programs[name] = program.lower(example_state, *sampler_args).compile()
    if "prior" in builders:
        programs["prior"] = jax.jit(builders["prior"]())
    return programs


class _Placement:
    """Where a run goes: a batch of curves sharded over ``devices``, or one curve whose
    chains are split over ``devices`` (each device runs its share of the chains on its own,
    so a chain never waits for another device's longer trajectory)."""

    def __init__(
        self,
        batch: int | None = None,
        devices: Sequence[Any] | None = None,
        chains: int | None = None,
    ):
        self.batch = batch
        self.batched = batch is not None
        self.devices = tuple(devices) if devices else None
        self.sharding = None
        self.chain_mesh = None
        several = self.devices is not None and len(self.devices) > 1
        if self.batched and several:
            if batch % len(self.devices):
                raise ValueError(
                    f"a batch of {batch} curves does not divide over {len(self.devices)} devices"
                )
            mesh = Mesh(np.asarray(self.devices), ("curve",))
            self.sharding = NamedSharding(mesh, PartitionSpec("curve"))
        elif several:
            if chains is None or chains % len(self.devices):
                raise ValueError(f"{chains} chains do not divide over {len(self.devices)} devices")
            self.chain_mesh = Mesh(np.asarray(self.devices), ("chain",))

    @property
    def key(self) -> tuple:
        return (self.batch, tuple(str(d) for d in self.devices or ()))

    @property
    def n_chain_devices(self) -> int:
        return 1 if self.chain_mesh is None else self.chain_mesh.size

    @property
    def chunk_shardings(self) -> tuple | None:
        """(state, model arguments, outputs) shardings of a chain-split chunk program."""
        if self.chain_mesh is None:
            return None
        split = NamedSharding(self.chain_mesh, PartitionSpec("chain"))
        return split, NamedSharding(self.chain_mesh, PartitionSpec()), split

    def split_chains(self, program: Callable) -> Callable:
        """``program(state, *model_args)`` run by every device on its share of the chains.

        ``shard_map``, not a sharded ``jit``: under ``jit`` the devices would agree after
        every leapfrog step on whether any chain's tree is still growing.
        """
        if self.chain_mesh is None:
            return program
        mesh = self.chain_mesh

        def split(state, *model_args):
            in_specs = (PartitionSpec("chain"),) + (PartitionSpec(),) * len(model_args)
            return _shard_map(program, mesh, in_specs, PartitionSpec("chain"))(state, *model_args)

        return split

    def put_state(self, state):
        """Chain states split over the devices, as the chunk program takes them."""
        if self.chain_mesh is None:
            return state
        return jax.device_put(state, self.chunk_shardings[0])

    def keys(self, key: jax.Array) -> jax.Array:
        return jax.random.split(key, self.batch) if self.batched else key

    def put(self, tree):
        """Place (batched) arguments on the devices, split along the curve axis."""
        if self.sharding is not None:
            return jax.device_put(tree, self.sharding)
        if self.chain_mesh is not None:  # left uncommitted: each program places them
            return tree
        if self.devices:
            return jax.device_put(tree, self.devices[0])
        return tree

    def abstract(self, shapes):
        """Shapes for ahead-of-time lowering, with the sharding the arguments will have."""
        if self.sharding is None:
            return shapes
        return jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.sharding), shapes
        )


def run_nuts(
    rng_key: jax.Array,
    model: Callable,
    model_args: tuple,
    settings: SamplerSettings,
    *,
    devices: Sequence[Any] | None = None,
    progress: bool = False,
    tube: TubeMap | None = None,
) -> PosteriorRun:
    """Multi-start MAP, then NUTS chains from the best optimum; all as compiled programs.

    ``model_args`` are the model's positional arguments, the observations last (the
    predictive programs call the model without them). ``devices``: devices to split the
    chains over, each running an equal share (default: JAX's default device). The draws
    follow the same distribution on any number of devices, and repeat exactly for the same
    seed and number of devices. ``progress``: draw a progress bar on stderr. ``tube``: a
    :class:`~bayes_unsl.inference.transport.TubeMap` (fitted to an earlier run's
    ``unconstrained`` draws) to sample in; the draws are mapped back.
    """
    placement = _Placement(devices=devices, chains=settings.chains)
    run = _run(rng_key, model, model_args, settings, placement, progress, tube)[0]
    run.info["chain_devices"] = placement.n_chain_devices
    return run


def run_nuts_batch(
    rng_keys: jax.Array,
    model: Callable,
    model_args: tuple,
    settings: SamplerSettings,
    *,
    devices: Sequence[Any] | None = None,
    progress: bool = False,
    tube: TubeMap | None = None,
) -> list[PosteriorRun]:
    """NUTS over a batch of curves at once: one :class:`PosteriorRun` per curve.

    Every leaf of ``model_args`` has a leading curve axis and ``rng_keys`` one key per
    curve. Each curve and chain adapts its own step size and mass matrix. ``devices``: the
    devices to shard the curve axis over (the batch must divide evenly); default: JAX's
    default device. ``tube``: maps to sample in, one per curve (leading curve axis).
    """
    batch = int(np.shape(rng_keys)[0])
    placement = _Placement(batch, devices)
    return _run(rng_keys, model, model_args, settings, placement, progress, tube)


def _run(keys, model, model_args, settings, placement: _Placement, progress: bool, tube=None):
    started = time.perf_counter()
    model_args = placement.put(model_args)
    if tube is not None:  # in the run's precision, placed as the data are
        tube = placement.put(
            jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.result_type(float)), tube)
        )
    programs = _programs(model, settings, model_args, placement, tube)
    sampler_args = model_args if tube is None else (tube, *model_args)
    compiled = time.perf_counter()
    prepared = _seconds_prepared(programs)
    split = (
        jax.vmap(partial(jax.random.split, num=3))
        if placement.batched
        else partial(jax.random.split, num=3)
    )
    parts = split(keys)
    run_key, post_key, prior_key = (parts[..., i, :] for i in range(3))
    state, map_value, n_finite = programs.init(placement.put(run_key), *sampler_args)
    state = placement.put_state(state)
    total = settings.warmup + settings.draws
    bar = ProgressBar(total, settings.warmup, settings.chains) if progress else None
    chunks = []
    for done in range(programs.length, total + 1, programs.length):
        advance = programs.first if done == programs.length and programs.first else programs.chunk
        state, chunk = advance(state, *sampler_args)
        if done > settings.warmup:
            chunks.append(jax.tree_util.tree_map(np.asarray, chunk))
        if bar is not None:
            jax.block_until_ready(state)
            bar.update(done)
    if bar is not None:
        bar.close()
    out = ChainOutput(
        *(
            np.concatenate([getattr(c, f) for c in chunks], axis=-2 if f == "z" else -1)
            for f in ChainOutput._fields[:-1]
        ),
        step_size=np.asarray(chunks[-1].step_size),
    )
    if tube is not None:
        out = out._replace(z=np.asarray(_map_back(tube, out.z, placement.batched)))
    sampled = time.perf_counter()
    c, d, dim = settings.chains, settings.draws, out.z.shape[-1]
    flat_z = placement.put(jnp.asarray(out.z.reshape(out.z.shape[:-3] + (c * d, dim))))
    samples, loglik, ppc = programs.posterior(placement.put(post_key), flat_z, *model_args)
    prior = {}
    if programs.prior is not None:
        prior = programs.prior(placement.put(prior_key), *model_args[:-1])
    jax.block_until_ready((samples, loglik, ppc, prior))
    # Stored programs compile at their first call: count that as compilation.
    lazy = {k: v - prepared[k] for k, v in _seconds_prepared(programs).items()}
    timing = {
        "seconds_compile": compiled - started + lazy["sampling"] + lazy["predictive"],
        "seconds_sampling": sampled - compiled - lazy["sampling"],
        "seconds_predictive": time.perf_counter() - sampled - lazy["predictive"],
    }
    if not placement.batched:
        return [_posterior_run(out, samples, loglik, ppc, prior, map_value, n_finite, timing, c, d)]
    host = jax.tree_util.tree_map(np.asarray, (out, samples, loglik, ppc, prior))
    map_value, n_finite = np.asarray(map_value), np.asarray(n_finite)
    runs = []
    for i in range(placement.batch):
        pick = jax.tree_util.tree_map(lambda v, i=i: v[i], host)
        runs.append(_posterior_run(*pick, map_value[i], n_finite[i], timing, c, d))
    return runs


def _seconds_prepared(programs: _Programs) -> dict[str, float]:
    """Seconds the stored programs spent so far loading and compiling, by stage."""

    def seconds(*stage):
        return sum(getattr(p, "seconds_prepared", 0.0) for p in stage)

    return {
        "sampling": seconds(programs.init, programs.chunk, programs.first),
        "predictive": seconds(programs.posterior, programs.prior),
    }


def _map_back_curve(tube: TubeMap, u: jax.Array) -> jax.Array:
    """Draws (chain, draw, dim) of a run in a tube map's coordinates, mapped back."""
    flat = u.reshape(-1, u.shape[-1])
    return jax.vmap(lambda v: to_unconstrained(tube, v)[0])(flat).reshape(u.shape)


_MAP_BACK = {False: jax.jit(_map_back_curve), True: jax.jit(jax.vmap(_map_back_curve))}


def _map_back(tube: TubeMap, u: np.ndarray, batched: bool) -> jax.Array:
    return _MAP_BACK[batched](tube, jnp.asarray(u))


def _posterior_run(out, samples, loglik, ppc, prior, map_value, n_finite, timing, c, d):
    def by_chain(tree):
        return {k: np.asarray(v).reshape((c, d) + np.shape(v)[1:]) for k, v in tree.items()}

    stats = {
        "diverging": np.asarray(out.diverging),
        "n_steps": np.asarray(out.num_steps),
        "tree_depth": np.floor(np.log2(np.asarray(out.num_steps) + 1.0)).astype(int),
        "acceptance_rate": np.asarray(out.accept_prob),
        "lp": -np.asarray(out.potential_energy),
        "energy": np.asarray(out.energy),
        "step_size": np.broadcast_to(np.asarray(out.step_size)[:, None], out.diverging.shape),
    }
    info = {
        "map_potential": float(map_value),
        "map_starts_finite": int(n_finite),
        **timing,
    }
    return PosteriorRun(
        posterior=by_chain(samples),
        log_likelihood=by_chain(loglik),
        posterior_predictive=by_chain({"log_y": ppc["log_y"]}),
        prior={k: np.asarray(v)[None] for k, v in prior.items()},
        sample_stats=stats,
        info=info,
        unconstrained=np.asarray(out.z),
    )
