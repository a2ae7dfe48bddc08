"""Compiled NUTS programs: reused across calls, and only so many kept in memory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayes_unsl.inference import nuts

SETTINGS = nuts.SamplerSettings(chains=2, warmup=10, draws=10, map_starts=2)


def normal_mean(z, log_y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("log_y", dist.Normal(mu + 0.0 * z, 1.0), obs=log_y)


def test_the_same_model_reuses_its_compiled_programs(monkeypatch):
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    for seed in range(2):
        nuts.run_nuts(jax.random.PRNGKey(seed), normal_mean, (jnp.zeros(3), jnp.zeros(3)), SETTINGS)
    assert len(nuts._PROGRAMS) == 1


def test_compiled_programs_kept_in_memory_are_bounded(monkeypatch):
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    monkeypatch.setattr(nuts, "MAX_PROGRAMS", 2)
    for n in (3, 4, 5):  # three data lengths: three programs
        args = (jnp.zeros(n), jnp.zeros(n))
        nuts.run_nuts(jax.random.PRNGKey(0), normal_mean, args, SETTINGS)
    assert len(nuts._PROGRAMS) == 2
