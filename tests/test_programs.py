"""Compiled NUTS programs: reused across calls, and only so many kept in memory."""

from __future__ import annotations

import warnings
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import pytest

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


@pytest.fixture
def count_bound_only(monkeypatch):
    """Only the count bound: as where the system does not report its memory maps (in a long
    test session the maps in use may already be past the share that drops programs)."""
    monkeypatch.setattr(nuts, "memory_maps", lambda: None)


def test_compiled_programs_kept_in_memory_are_bounded(monkeypatch, count_bound_only):
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    monkeypatch.setattr(nuts, "MAX_PROGRAMS", 2)
    for n in (3, 4, 5):  # three data lengths: three programs
        args = (jnp.zeros(n), jnp.zeros(n))
        nuts.run_nuts(jax.random.PRNGKey(0), normal_mean, args, SETTINGS)
    assert len(nuts._PROGRAMS) == 2


def _run_lengths(*lengths):
    for n in lengths:
        nuts.run_nuts(jax.random.PRNGKey(0), normal_mean, (jnp.zeros(n), jnp.zeros(n)), SETTINGS)


def _lengths_kept() -> list[int]:
    return [key[2][1][0][0][0] for key in nuts._PROGRAMS]  # the data signature's shape


def test_the_least_recently_used_programs_are_dropped_first(monkeypatch, count_bound_only):
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    monkeypatch.setattr(nuts, "MAX_PROGRAMS", 2)
    _run_lengths(3, 4, 3, 5)  # 3 used again after 4: 4 goes
    assert _lengths_kept() == [3, 5]


def test_programs_are_dropped_before_memory_maps_run_short(monkeypatch):
    """A compiled CPU program holds hundreds of memory maps, and past the system's limit the
    next compilation aborts the process: programs go well before that."""
    maps = nuts.memory_maps()
    if maps is None:
        pytest.skip("this system does not report its memory maps")
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    _run_lengths(3)
    in_use, limit = nuts.memory_maps()
    assert 0 < in_use < limit
    # A budget the maps in use already exceed: each new program replaces the last.
    monkeypatch.setattr(nuts, "MAX_MAP_SHARE", (in_use - 1) / limit)
    _run_lengths(4, 5)
    assert _lengths_kept() == [5]
    # each program set of this model holds about 700 maps: the dropped ones came back
    assert nuts.memory_maps()[0] < in_use + 400


def test_a_process_short_of_memory_maps_elsewhere_is_warned(monkeypatch):
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    monkeypatch.setattr(nuts, "memory_maps", lambda: (90, 100))
    with pytest.warns(RuntimeWarning, match="90 of the 100 memory maps.*vm.max_map_count"):
        nuts._make_room()
    monkeypatch.setattr(nuts, "memory_maps", lambda: (60, 100))  # ours dropped: room again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nuts._make_room()


def badly_scaled(z, log_y=None):
    """Two coordinates on scales 100 apart: under the identity metric that NUTS starts
    warm-up with, a trajectory must run long to cross the wide one."""
    numpyro.sample("wide", dist.Normal(0.0, 1.0))
    numpyro.sample("narrow", dist.Normal(0.0, 1e-2))


def _first_chunk_steps(settings) -> tuple[int, int]:
    """Most leapfrog steps of an iteration in the first chunk, by its own program and by
    the program of the later chunks, from the same initial state."""
    args = (jnp.zeros(3),)
    programs = nuts._programs(badly_scaled, settings, args, nuts._Placement())
    state, _, _ = programs.init(jax.random.PRNGKey(0), *args)
    first = programs.first or programs.chunk
    _, early = first(state, *args)
    _, later = programs.chunk(state, *args)
    return int(early.num_steps.max()), int(later.num_steps.max())


def test_early_tree_depth_limits_only_the_first_chunk_of_warmup(monkeypatch):
    monkeypatch.setattr(nuts, "_PROGRAMS", {})
    settings = nuts.SamplerSettings(chains=2, warmup=100, draws=100, map_starts=2)
    early, later = _first_chunk_steps(replace(settings, early_tree_depth=2))
    assert early <= 2**2 - 1 < later
    # without the setting there is one program for every chunk
    assert nuts._programs(badly_scaled, settings, (jnp.zeros(3),), nuts._Placement()).first is None


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_early_tree_depth_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="early_tree_depth"):
        nuts.SamplerSettings(early_tree_depth=bad)
