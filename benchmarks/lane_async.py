"""Prototype: NUTS whose chains never wait for one another, measured against lockstep NUTS.

A batch of vmapped NUTS chains (``fit_many``'s curves x chains) runs every iteration as long
as the longest trajectory among them (``throughput.py``'s ``lane_efficiency``). Here each
chain ("lane") advances by one leapfrog step per step of one shared loop and, when its
trajectory ends, records its draw and starts its next iteration at once; a lane that has
all its draws waits. The tree building is NumPyro's (multinomial NUTS: uniform progressive
sampling inside a doubling, biased between doublings, the generalised U-turn criterion
checked on the doubling's sub-trees through checkpoints and on the whole trajectory), cut
into one leapfrog step per loop step.

Sampling phase only: the chains are first warmed up by the package's own programs, then
both kernels draw from the same adapted step sizes and mass matrices. What it measures:

- ``us_per_loop_step``: the cost of one step of each loop (every lane advances once);
  ``us_per_step_gradient_only``: a loop of the lanes' value and gradient alone;
- ``lane_steps``: leapfrog steps the chains asked for; ``loop_steps``: steps the loop ran;
- agreement of the two kernels' draws (means per parameter and chain group, in posterior
  sds), a check that the cut-up tree samples the same distribution.

With lanes refilled by new chains as they finish (not built here), a batch would run about
``lane_steps / lanes`` loop steps instead of lockstep's sum over iterations of the longest
trajectory; ``projected_speedup`` is lockstep's seconds over that many loop steps at the
measured cost.

    python benchmarks/lane_async.py [--curves 16] [--draws 1000] [--max-tree-depth 6]
        # writes benchmarks/results/lane_async.{md,csv}
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from provenance import git_commit, machine, write_report

import bayes_unsl as bu
from bayes_unsl.batch import _bucket, _masked_model, _stack
from bayes_unsl.data import validate
from bayes_unsl.evaluation.splits import double_descent_split
from bayes_unsl.fit import _settings_from_options, _spec_from_options
from bayes_unsl.inference.engine import advance_chains
from bayes_unsl.inference.nuts import (
    _flat_potential,
    _kernel_config,
    _Placement,
    _programs,
    _structure,
)
from bayes_unsl.models import form_model

RESULTS = Path(__file__).resolve().parent / "results"
MAX_DELTA_ENERGY = 1000.0


class Point(NamedTuple):
    """A point of a trajectory: position, momentum, gradient of the potential, and the
    inverse mass matrix times the momentum (velocity) and times the gradient, kept so that
    a leapfrog step or a U-turn check multiplies by the mass matrix once at most."""

    z: jax.Array
    r: jax.Array
    g: jax.Array
    v: jax.Array
    w: jax.Array


class Tree(NamedTuple):
    """A trajectory, or the doubling being built: its two ends, proposal and sums."""

    left: Point
    right: Point
    prop: Point  # (its momentum and velocity are not used)
    pe_prop: jax.Array
    weight: jax.Array  # log of the summed exp(-energy error)
    r_sum: jax.Array
    turning: jax.Array
    diverging: jax.Array
    sum_accept: jax.Array
    n_prop: jax.Array
    depth: jax.Array


class Lane(NamedTuple):
    """One chain's whole state between two loop steps."""

    z: jax.Array
    pe: jax.Array
    g: jax.Array
    w: jax.Array
    key: jax.Array
    tree: Tree
    sub: Tree
    r_ckpts: jax.Array  # (max depth, dim): momenta at the doubling's checkpoints
    v_ckpts: jax.Array  # their velocities
    r_sum_ckpts: jax.Array
    right: jax.Array
    energy0: jax.Array
    it: jax.Array
    step_size: jax.Array
    inv_mass: jax.Array
    momentum_maps: jax.Array  # (2 dim, dim): standard normal -> (momentum, velocity)


def _turning(v_left, v_right, r_left, r_right, r_sum):
    """NumPyro's generalised U-turn criterion (Betancourt, A.4.2); any leading axes."""
    r_sum = r_sum - (r_left + r_right) / 2
    return (jnp.sum(v_left * r_sum, -1) <= 0) | (jnp.sum(v_right * r_sum, -1) <= 0)


def _ckpt_range(n):
    """Checkpoints to test after leaf ``n`` of a doubling (NumPyro's iterative scheme)."""
    idx_max = jax.lax.population_count(n >> 1).astype(jnp.int32)
    num = jax.lax.population_count((~n & (n + 1)) - 1).astype(jnp.int32)
    return idx_max - num + 1, idx_max


def momentum_maps(inv_mass, mass_sqrt):
    """``[mass_sqrt; inv_mass @ mass_sqrt]``: a momentum and its velocity in one product."""
    return jnp.concatenate([mass_sqrt, inv_mass @ mass_sqrt], axis=-2)


def _select(flag, new, old):
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def _start(lane: Lane, uniforms) -> Lane:
    """A new iteration: fresh momentum, a trajectory of one point, a direction.

    ``uniforms``: 1 + dim uniform numbers in (0, 1), the direction's and the momentum's.
    """
    dim = lane.z.shape[-1]
    normal = jnp.sqrt(2.0) * jax.scipy.special.erfinv(2.0 * uniforms[1:] - 1.0)
    rv = lane.momentum_maps @ normal
    r, v = rv[:dim], rv[dim:]
    zero = jnp.zeros((), lane.z.dtype)
    point = Point(lane.z, r, lane.g, v, lane.w)
    tree = Tree(
        point, point, point, lane.pe, zero, r, jnp.array(False), jnp.array(False), zero,
        jnp.array(0), jnp.array(0),
    )  # fmt: skip
    return lane._replace(
        tree=tree, sub=tree, right=uniforms[0] < 0.5, energy0=lane.pe + 0.5 * r @ v
    )


def _micro_step(lane: Lane, potential_and_grad, max_depth: int):
    """One leapfrog step of one lane: (lane, whether it finished a draw, the draw's stats)."""
    tree, sub, right = lane.tree, lane.sub, lane.right
    # One draw of every uniform number this step may need: a doubling's leaf, a
    # trajectory's doubling, the next doubling's direction, then a new iteration's.
    key, k_step = jax.random.split(lane.key)
    tiny = jnp.finfo(lane.z.dtype).tiny
    u = jax.random.uniform(k_step, (4 + lane.z.shape[0],), lane.z.dtype, minval=tiny)
    fresh = sub.n_prop == 0

    # Leapfrog from the trajectory's end in this direction (the doubling's, once it has
    # leaves).
    end = _select(right, tree.right, tree.left)
    end = _select(fresh, end, _select(right, sub.right, sub.left))
    eps = jnp.where(right, lane.step_size, -lane.step_size)
    v_half = end.v - 0.5 * eps * end.w
    z = end.z + eps * v_half
    pe, g = potential_and_grad(z)
    w = lane.inv_mass @ g
    r = end.r - 0.5 * eps * (end.g + g)
    v = v_half - 0.5 * eps * w
    leaf = Point(z, r, g, v, w)
    delta = pe + 0.5 * r @ v - lane.energy0
    delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
    leaf_weight = -delta
    diverging = delta > MAX_DELTA_ENERGY
    accept = jnp.minimum(1.0, jnp.exp(-delta))

    # The leaf joins the doubling (uniform progressive sampling).
    take = fresh | (u[0] < jax.nn.sigmoid(leaf_weight - sub.weight))
    merged = Tree(
        _select(right & ~fresh, sub.left, leaf),
        _select(~right & ~fresh, sub.right, leaf),
        _select(take, leaf, sub.prop),
        jnp.where(take, pe, sub.pe_prop),
        jnp.where(fresh, leaf_weight, jnp.logaddexp(sub.weight, leaf_weight)),
        jnp.where(fresh, r, sub.r_sum + r),
        sub.turning,
        diverging,
        jnp.where(fresh, accept, sub.sum_accept + accept),
        sub.n_prop + 1,
        sub.depth,
    )

    # U-turns inside the doubling, through the checkpoints of its sub-trees.
    leaf_idx = sub.n_prop
    idx_min, idx_max = _ckpt_range(leaf_idx)
    idx = jnp.arange(max_depth)
    write = ((idx == idx_max) & (leaf_idx % 2 == 0))[:, None]
    r_ckpts = jnp.where(write, r, lane.r_ckpts)
    v_ckpts = jnp.where(write, v, lane.v_ckpts)
    r_sum_ckpts = jnp.where(write, merged.r_sum, lane.r_sum_ckpts)
    sub_sums = merged.r_sum - r_sum_ckpts + r_ckpts
    turns = _turning(v_ckpts, v, r_ckpts, r, sub_sums)
    merged = merged._replace(turning=jnp.any(turns & (idx >= idx_min) & (idx <= idx_max)))

    size = jnp.left_shift(1, tree.depth)
    sub_done = (merged.n_prop == size) | merged.turning | merged.diverging

    # A finished doubling joins the trajectory (biased progressive sampling).
    p = jnp.minimum(1.0, jnp.exp(merged.weight - tree.weight))
    take_sub = (u[1] < p) & ~merged.turning & ~merged.diverging
    left = _select(right, tree.left, merged.left)
    right_end = _select(right, merged.right, tree.right)
    r_sum = tree.r_sum + merged.r_sum
    whole = Tree(
        left,
        right_end,
        _select(take_sub, merged.prop, tree.prop),
        jnp.where(take_sub, merged.pe_prop, tree.pe_prop),
        jnp.logaddexp(tree.weight, merged.weight),
        r_sum,
        merged.turning | _turning(left.v, right_end.v, left.r, right_end.r, r_sum),
        merged.diverging,
        tree.sum_accept + merged.sum_accept,
        tree.n_prop + merged.n_prop,
        tree.depth + 1,
    )
    tree_done = sub_done & (whole.turning | whole.diverging | (whole.depth >= max_depth))

    next_tree = _select(sub_done, whole, tree)
    # A new doubling starts empty (its first leaf replaces everything but the depth).
    empty = merged._replace(n_prop=jnp.array(0), turning=jnp.array(False))
    lane = lane._replace(
        key=key,
        tree=next_tree,
        sub=_select(sub_done, empty, merged),
        right=jnp.where(sub_done, u[2] < 0.5, right),
        r_ckpts=r_ckpts,
        v_ckpts=v_ckpts,
        r_sum_ckpts=r_sum_ckpts,
    )
    stats = jnp.stack([whole.n_prop, whole.sum_accept / whole.n_prop, whole.diverging]).astype(
        lane.z.dtype
    )
    moved = lane._replace(
        z=whole.prop.z, pe=whole.pe_prop, g=whole.prop.g, w=whole.prop.w, it=lane.it + 1
    )
    lane = _select(tree_done, _start(moved, u[3:]), lane)
    return lane, tree_done, stats


def run_async(potential_of, lanes: Lane, draws: int, max_depth: int, lane_args):
    """Draw ``draws`` iterations on every lane; ``potential_of(*args)`` is a lane's
    potential for its curve's model arguments (``lane_args``: one row per lane).

    Returns (draws and statistics, (lanes, draws, dim + 3): the position, then the number of
    leapfrog steps, the mean acceptance probability and divergence of its trajectory; the
    number of loop steps run)."""

    def step(carry):
        lanes, out, loops = carry
        active = lanes.it < draws

        def one(lane, args):
            return _micro_step(lane, jax.value_and_grad(potential_of(*args)), max_depth)

        new, done, stats = jax.vmap(one)(lanes, lane_args)
        done = done & active
        lanes = jax.vmap(_select)(active, new, lanes)
        row = jnp.minimum(new.it - 1, draws - 1)
        idx = jnp.arange(out.shape[0])
        record = jnp.concatenate([new.z, stats], axis=-1)
        out = out.at[idx, row].set(jnp.where(done[:, None], record, out[idx, row]))
        return lanes, out, loops + 1

    n_lanes, dim = lanes.z.shape
    out = jnp.zeros((n_lanes, draws, dim + 3), lanes.z.dtype)
    _, out, loops = jax.lax.while_loop(
        lambda c: jnp.any(c[0].it < draws), step, (lanes, out, jnp.array(0))
    )
    return out, loops


def _curves(n: int) -> pd.DataFrame:
    dd = bu.datasets.load("double_descent")
    frames = [double_descent_split(f)[0] for _, f in dd.groupby("task", sort=True)]
    return pd.concat(frames[:n], ignore_index=True)


def measure(args: argparse.Namespace) -> dict:
    spec = _spec_from_options("bnsl", 1, {})
    settings = _settings_from_options(
        4, args.warmup, args.draws, {"max_tree_depth": args.max_tree_depth}
    )
    form = form_model("bnsl")
    frame = _curves(args.curves)
    entries = []
    for index, (_, rows) in enumerate(frame.groupby("task", sort=True)):
        data = validate(rows, "x_value", "metric_value", min_points=spec.n_params)
        entries.append((index, data, form.context(data, spec)))
    model_args, keys = _stack(entries, _bucket(max(e[1].n_points for e in entries)), args.seed)
    model = _masked_model(spec)
    placement = _Placement(len(entries), jax.devices("cpu")[:1])
    programs = _programs(model, settings, model_args, placement)
    state, _, _ = programs.init(keys, *model_args)
    for _ in range(0, settings.warmup, programs.length):  # the package's warm-up
        state, _ = programs.chunk(state, *model_args)
    jax.block_until_ready(state)

    one_curve = jax.tree_util.tree_map(lambda v: v[0], model_args)
    potential_gen, _, unravel, dim = _structure(model, one_curve)
    potential_of = _flat_potential(potential_gen, unravel, False)
    n_curves, chains = len(entries), settings.chains

    # Lockstep: the package's kernel, adaptation over, for the same draws.
    lockstep = jax.jit(
        jax.vmap(
            lambda s, *a: advance_chains(
                potential_of(*a), s, args.draws, **_kernel_config(settings)
            )
        )
    )
    compiled = lockstep.lower(state, *model_args).compile()
    t = time.perf_counter()
    _, lock_out = compiled(state, *model_args)
    jax.block_until_ready(lock_out)
    lock_s = time.perf_counter() - t
    lock_steps = np.asarray(lock_out.num_steps)  # (curve, chain, draw)
    lock_loop = int(lock_steps.reshape(-1, args.draws).max(axis=0).sum())

    # Asynchronous: the same warmed-up chains as lanes.
    n_lanes = n_curves * chains
    flat = lambda v: v.reshape((n_lanes,) + v.shape[2:])  # noqa: E731
    adapt = state.adapt_state
    inv_mass = flat(adapt.inverse_mass_matrix)
    g = flat(state.z_grad)
    lanes = Lane(
        z=flat(state.z), pe=flat(state.potential_energy), g=g,
        w=jnp.einsum("lij,lj->li", inv_mass, g),
        key=flat(jax.vmap(jax.vmap(lambda k: jax.random.fold_in(k, 1)))(state.rng_key)),
        tree=None, sub=None,
        r_ckpts=jnp.zeros((n_lanes, settings.max_tree_depth, dim)),
        v_ckpts=jnp.zeros((n_lanes, settings.max_tree_depth, dim)),
        r_sum_ckpts=jnp.zeros((n_lanes, settings.max_tree_depth, dim)),
        right=jnp.zeros(n_lanes, bool), energy0=jnp.zeros(n_lanes),
        it=jnp.zeros(n_lanes, jnp.int32), step_size=flat(adapt.step_size),
        inv_mass=inv_mass, momentum_maps=momentum_maps(inv_mass, flat(adapt.mass_matrix_sqrt)),
    )  # fmt: skip
    lane_args = jax.tree_util.tree_map(
        lambda v: v[jnp.repeat(jnp.arange(n_curves), chains)], model_args
    )

    def program(lanes):
        def first(lane):
            key, k = jax.random.split(lane.key)
            tiny = jnp.finfo(lane.z.dtype).tiny
            return _start(lane._replace(key=key), jax.random.uniform(k, (1 + dim,), minval=tiny))

        lanes = jax.vmap(first)(lanes)
        return run_async(potential_of, lanes, args.draws, settings.max_tree_depth, lane_args)

    async_compiled = jax.jit(program).lower(lanes).compile()
    t = time.perf_counter()
    out, loops = async_compiled(lanes)
    jax.block_until_ready(out)
    async_s = time.perf_counter() - t
    out = np.asarray(out)
    a_z, a_steps, a_div = out[..., :dim], out[..., dim], out[..., dim + 2]
    loops = int(loops)

    # The value and gradient alone, for every lane, as many times as the async loop ran.
    def gradients(z):
        def body(_, z):
            vg = jax.vmap(lambda v, a: jax.value_and_grad(potential_of(*a))(v))
            pe, g = vg(z, lane_args)
            return z + 1e-12 * g * pe[:, None]

        return jax.lax.fori_loop(0, loops, body, z)

    grad_compiled = jax.jit(gradients).lower(lanes.z).compile()
    t = time.perf_counter()
    jax.block_until_ready(grad_compiled(lanes.z))
    grad_s = time.perf_counter() - t

    # Agreement: per curve and parameter, the gap between the kernels' means in posterior
    # sds (each mean over 4 chains x draws).
    lz = np.asarray(lock_out.z).reshape(n_curves, chains * args.draws, dim)
    az = np.asarray(a_z).reshape(n_curves, chains, args.draws, dim).reshape(n_curves, -1, dim)
    sd = np.sqrt(0.5 * (lz.var(axis=1) + az.var(axis=1)))
    gap = np.abs(lz.mean(axis=1) - az.mean(axis=1)) / sd
    lane_steps = int(a_steps.sum())
    us_lock = 1e6 * lock_s / lock_loop
    us_async = 1e6 * async_s / loops
    refilled_loops = lane_steps / n_lanes
    return {
        "curves": n_curves,
        "lanes": n_lanes,
        "max_tree_depth": settings.max_tree_depth,
        "draws": args.draws,
        "lockstep_s": round(lock_s, 2),
        "lockstep_loop_steps": lock_loop,
        "lockstep_lane_steps": int(lock_steps.sum()),
        "async_s": round(async_s, 2),
        "async_loop_steps": loops,
        "async_lane_steps": lane_steps,
        "us_per_loop_step_lockstep": round(us_lock, 1),
        "us_per_loop_step_async": round(us_async, 1),
        "us_per_step_gradient_only": round(1e6 * grad_s / loops, 1),
        "mean_steps_lockstep": round(float(lock_steps.mean()), 2),
        "mean_steps_async": round(float(a_steps.mean()), 2),
        "divergences_lockstep": int(np.asarray(lock_out.diverging).sum()),
        "divergences_async": int(np.asarray(a_div).sum()),
        "mean_gap_sd": round(float(gap.mean()), 3),
        "max_gap_sd": round(float(gap.max()), 3),
        "projected_speedup": round(lock_s / (refilled_loops * us_async * 1e-6), 2),
        "commit": git_commit(),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--curves", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--max-tree-depth", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="lane_async")
    p.add_argument("--note", default="", help="conditions of the run, kept with its row")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = measure(args)
    row["command"] = "python benchmarks/lane_async.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    row["note"] = args.note
    print(row)
    csv = RESULTS / f"{args.name}.csv"
    rows = pd.read_csv(csv).to_dict("records") if csv.exists() else []
    rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(csv, index=False)
    lines = [
        "# Chains that do not wait: a lane-asynchronous NUTS prototype against lockstep",
        "",
        "Each row's command and conditions are in its `command` and `note` columns. "
        f"Machine: {machine()}; commit {git_commit()} (last row, "
        f"{time.perf_counter() - started:.0f} s).",
        "",
        __doc__.split("\n\n", 1)[1].split("\n    python")[0].strip(),
    ]
    write_report(RESULTS / f"{args.name}.md", lines, table)


if __name__ == "__main__":
    main()
