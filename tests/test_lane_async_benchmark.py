"""The lane-asynchronous NUTS prototype samples what NumPyro's NUTS samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.hmc import hmc

from tests.conftest import load_benchmark

COV = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 2.0]])
PRECISION = np.linalg.inv(COV)
STEP = 0.4
DRAWS = 600
LANES = 8
DEPTH = 6


@pytest.fixture(scope="module")
def lane_async():
    return load_benchmark("lane_async")


def _potential_of(precision):
    return lambda z: 0.5 * z @ (precision @ z)


def _async_draws(la):
    dim = len(COV)
    eye = jnp.eye(dim)
    z0 = jnp.zeros((LANES, dim))
    lanes = la.Lane(
        z=z0, pe=jnp.zeros(LANES), g=z0, w=z0,
        key=jax.random.split(jax.random.PRNGKey(1), LANES), tree=None, sub=None,
        r_ckpts=jnp.zeros((LANES, DEPTH, dim)), v_ckpts=jnp.zeros((LANES, DEPTH, dim)),
        r_sum_ckpts=jnp.zeros((LANES, DEPTH, dim)), right=jnp.zeros(LANES, bool),
        energy0=jnp.zeros(LANES), it=jnp.zeros(LANES, jnp.int32),
        step_size=jnp.full(LANES, STEP), inv_mass=jnp.broadcast_to(eye, (LANES, dim, dim)),
        momentum_maps=jnp.broadcast_to(la.momentum_maps(eye, eye), (LANES, 2 * dim, dim)),
    )  # fmt: skip
    precision = jnp.broadcast_to(jnp.asarray(PRECISION), (LANES, dim, dim))

    def program(lanes):
        def first(lane):
            key, k = jax.random.split(lane.key)
            return la._start(lane._replace(key=key), jax.random.uniform(k, (1 + dim,)))

        return la.run_async(_potential_of, jax.vmap(first)(lanes), DRAWS, DEPTH, (precision,))

    out, loops = jax.jit(program)(lanes)
    out = np.asarray(out)
    return out[..., :dim], out[..., dim], int(loops)


def _numpyro_steps():
    init_kernel, sample_kernel = hmc(potential_fn=_potential_of(jnp.asarray(PRECISION)))
    state = init_kernel(
        jnp.zeros(len(COV)), num_warmup=0, step_size=STEP, adapt_step_size=False,
        adapt_mass_matrix=False, max_tree_depth=DEPTH, rng_key=jax.random.PRNGKey(2),
    )  # fmt: skip

    def one(s, _):
        s = sample_kernel(s)
        return s, s.num_steps

    _, steps = jax.lax.scan(one, state, None, length=LANES * DRAWS)
    return np.asarray(steps)


def test_async_nuts_draws_the_target_distribution(lane_async):
    z, steps, loops = _async_draws(lane_async)
    flat = z.reshape(-1, len(COV))
    assert np.all(steps > 0)  # every lane recorded every draw
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=0.15)
    np.testing.assert_allclose(np.cov(flat.T), COV, atol=0.15 * np.sqrt(np.diag(COV)).max())
    # The loop ran each lane's own steps, not lockstep's longest per iteration.
    assert loops <= steps.sum(axis=1).max() + 1


def test_async_trajectories_are_numpyros(lane_async):
    _, steps, _ = _async_draws(lane_async)
    reference = _numpyro_steps()
    assert steps.mean() == pytest.approx(reference.mean(), rel=0.08)


def test_benchmark_runs_end_to_end(lane_async):
    """One curve, a few iterations: both kernels run from the package's warmed-up chains."""
    from types import SimpleNamespace

    row = lane_async.measure(
        SimpleNamespace(curves=1, warmup=20, draws=10, max_tree_depth=4, seed=0)
    )
    assert row["lanes"] == 4
    assert row["lockstep_lane_steps"] > 0 and row["async_lane_steps"] > 0
    assert row["async_loop_steps"] <= row["async_lane_steps"]
    assert np.isfinite(row["mean_gap_sd"]) and row["projected_speedup"] > 0
