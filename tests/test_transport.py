"""Tube maps: an exact bijection with the right Jacobian, and NUTS in its coordinates
samples the same distribution."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bayes_unsl.inference.nuts import SamplerSettings, run_nuts
from bayes_unsl.inference.transport import (
    fit_tube_map,
    from_unconstrained,
    identity_map,
    mapped_potential,
    to_unconstrained,
)


def tube_draws(n: int, seed: int = 0) -> np.ndarray:
    """Exact draws of (x, y): x ~ N(0, 1), y ~ N(2x + x^2 / 2, 0.2 exp(x / 2)): a thin
    curved tube along one direction, widening along it, as the hard scaling-law posteriors
    are."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return np.c_[x, 2 * x + 0.5 * x**2 + 0.2 * np.exp(0.5 * x) * rng.normal(size=n)]


def test_map_inverts_and_reports_its_log_jacobian():
    draws = tube_draws(2000)
    draws = np.c_[draws, 3.0 * draws[:, :1] + np.random.default_rng(1).normal(size=(2000, 1))]
    tube = fit_tube_map(draws)

    def log_det(v):
        return jnp.linalg.slogdet(jax.jacfwd(lambda w: to_unconstrained(tube, w)[0])(v))[1]

    other = jnp.asarray([-1.1, 0.2, 2.0])
    # 9 sd out along the tube: past the draws, where the map is continued.
    for u in (jnp.asarray([0.7, -1.3, 0.4]), jnp.asarray([9.0, 0.5, -2.0])):
        z, log_jacobian = to_unconstrained(tube, u)
        np.testing.assert_allclose(from_unconstrained(tube, z), u, rtol=1e-5, atol=1e-5)
        # Up to a constant: the differences between two points match.
        expected = log_det(u) - log_det(other)
        difference = log_jacobian - to_unconstrained(tube, other)[1]
        np.testing.assert_allclose(difference, expected, rtol=1e-4, atol=1e-5)


def test_map_straightens_the_tube():
    draws = tube_draws(4000)
    tube = fit_tube_map(draws)
    u = np.asarray(from_unconstrained(tube, jnp.asarray(draws)))
    # In u the tube is straight and round: no curve left, unit spreads.
    assert abs(np.corrcoef(u[:, 0] ** 2, u[:, 1])[0, 1]) < 0.1
    np.testing.assert_allclose(u.std(0), 1.0, atol=0.3)
    standard = (draws - draws.mean(0)) / draws.std(0)
    q = standard @ np.linalg.svd(standard, full_matrices=False)[2].T
    assert abs(np.corrcoef(q[:, 0] ** 2, q[:, 1])[0, 1]) > 0.5  # it was curved


def test_identity_map_is_the_identity():
    u = jnp.asarray([0.3, -2.0, 5.0])
    z, log_jacobian = to_unconstrained(identity_map(3), u)
    np.testing.assert_allclose(z, u)
    assert float(log_jacobian) == 0.0


def test_fit_refuses_too_few_or_non_finite_draws():
    with pytest.raises(ValueError, match="shape"):
        fit_tube_map(np.zeros((3, 2)))
    bad = tube_draws(100)
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_tube_map(bad)


def curved_tube(scale, log_y=None):
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(2 * x + 0.5 * x**2, 0.2 * jnp.exp(0.5 * x)))
    numpyro.sample("log_y", dist.Normal(jnp.zeros(2), scale), obs=log_y)


def tube_potential(z: jax.Array) -> jax.Array:
    """-log density (up to a constant) of the ``curved_tube`` model's (x, y)."""
    x, y = z[0], z[1]
    scale = 0.2 * jnp.exp(0.5 * x)
    return 0.5 * x**2 + 0.5 * ((y - 2 * x - 0.5 * x**2) / scale) ** 2 + jnp.log(scale)


def test_mapped_potential_is_the_density_of_u():
    """Change of variables, by quadrature on a grid in u: the mapped potential's density,
    pushed through the map, has the target's moments (E x = 0, E y = 0.5); without the
    log-Jacobian (the tube widens along itself) E y would be near 0.2."""
    tube = fit_tube_map(tube_draws(400))
    grid = jnp.linspace(-9.0, 9.0, 721)
    u = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    z = jax.vmap(lambda v: to_unconstrained(tube, v)[0])(u)

    def moments(potential):
        energy = jax.vmap(potential)(u)
        weight = jnp.exp(-(energy - energy.min()))
        weight = weight / weight.sum()
        return float(weight @ z[:, 0]), float(weight @ z[:, 1])

    ex, ey = moments(mapped_potential(tube, tube_potential))
    assert abs(ex) < 0.01 and abs(ey - 0.5) < 0.01
    _, ey_without = moments(lambda v: tube_potential(to_unconstrained(tube, v)[0]))
    assert abs(ey_without - 0.5) > 0.1


def test_nuts_in_map_coordinates_samples_the_target():
    """End to end: the draws come back in the model's coordinates, near the target's
    moments (the sampler's error at this length is about 0.1 on E y), and the unconstrained
    draws returned are the model's own."""
    settings = SamplerSettings(chains=4, warmup=400, draws=1000, max_tree_depth=6)
    args = (jnp.asarray(1.0), jnp.zeros(2))
    tube = fit_tube_map(tube_draws(400))
    run = run_nuts(jax.random.PRNGKey(0), curved_tube, args, settings, tube=tube)
    x, y = run.posterior["x"].ravel(), run.posterior["y"].ravel()
    assert abs(x.mean()) < 0.3
    assert abs(x.var() - 1.0) < 0.3
    assert abs(y.mean() - 0.5) < 0.4
    np.testing.assert_allclose(run.unconstrained[..., 0], run.posterior["x"], rtol=1e-6)
