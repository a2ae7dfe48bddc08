"""A fit's chains split over several CPU devices: same chains, reproducible, stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import bayes_unsl as bu
from bayes_unsl.devices import chain_devices
from tests.conftest import X, Y

SPLIT = textwrap.dedent(
    """
    import json, sys, warnings
    import jax, jax.numpy as jnp, numpy as np
    import bayes_unsl as bu
    from bayes_unsl.data import validate
    from bayes_unsl.devices import chain_devices
    from bayes_unsl.fit import _model_for
    from bayes_unsl.models import form_model
    from bayes_unsl.inference.nuts import SamplerSettings, run_nuts
    warnings.simplefilter("ignore")
    print("devices", bu.use_cpu_cores(2), file=sys.stderr)
    df = bu.datasets.load("four_digit_addition").iloc[:14]
    x, y = "train_dataset_size", "test_cross_entropy"
    fit = bu.fit(df, x, y, chains=4, warmup=150, draws=150, map_starts=4, retries=0,
                 seed=5, warn=False)
    # The sampler alone, a few iterations, chains split or not: the same chains (sharding
    # changes rounding, which NUTS runs amplify: identical for 3 + 3 iterations, 1e-5
    # apart after 5 + 5 with the Student-t likelihood, so the comparison is kept short).
    dataset = validate(df, x, y)
    context = form_model(fit.spec.form).context(dataset, fit.spec)
    model_args = (jnp.asarray(dataset.z), context, jnp.asarray(dataset.log_y))
    settings = SamplerSettings(chains=4, warmup=3, draws=3, map_starts=4)
    key, model = jax.random.PRNGKey(2), _model_for(fit.spec)
    split = run_nuts(key, model, model_args, settings, devices=jax.devices())
    whole = run_nuts(key, model, model_args, settings)
    same = all(
        np.allclose(split.posterior[k], whole.posterior[k], rtol=0, atol=1e-6)
        for k in whole.posterior
    )
    np.save(sys.argv[1], fit.idata.posterior["sigma"].values)
    print(json.dumps({
        "cpu_devices": len(jax.devices("cpu")),
        "fit_chain_devices": fit.diagnostics()["chain_devices"],
        "split_chain_devices": split.info["chain_devices"],
        "whole_chain_devices": whole.info["chain_devices"],
        "three_chains": len(chain_devices(3)),
        "same_chains": bool(same),
        "chains_differ": bool(np.ptp(whole.posterior["sigma"][:, -1]) > 0),
    }))
    """
)


def _run_split(tmp_path, name: str) -> tuple[dict, np.ndarray]:
    env = dict(os.environ, BAYES_UNSL_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("XLA_FLAGS", None)
    out = tmp_path / f"{name}.npy"
    done = subprocess.run(
        [sys.executable, "-c", SPLIT, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out)


@pytest.mark.slow
def test_chains_split_over_two_cpu_devices_match_and_repeat(tmp_path):
    first, draws = _run_split(tmp_path, "first")
    assert first == {
        "cpu_devices": 2,
        "fit_chain_devices": 2,
        "split_chain_devices": 2,
        "whole_chain_devices": 1,
        "three_chains": 1,  # 3 chains do not divide over 2 devices: one device
        "same_chains": True,
        "chains_differ": True,
    }
    # A second process loads the stored split programs and repeats the draws exactly.
    programs = list((tmp_path / "cache" / "programs").glob("*.program"))
    assert programs, "the split programs were not stored"
    second, again = _run_split(tmp_path, "second")
    assert second == first
    assert draws.shape == (4, 150)
    assert np.array_equal(draws, again)


def test_use_cpu_cores_after_jax_started_warns_and_reports_devices():
    jax.numpy.zeros(1).block_until_ready()  # JAX has started
    in_effect = len(jax.devices("cpu"))
    with pytest.warns(RuntimeWarning, match="call it right after importing"):
        assert bu.use_cpu_cores(in_effect + 1) == in_effect


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_use_cpu_cores_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="cores must be a positive integer"):
        bu.use_cpu_cores(bad)


def test_chain_devices_divide_the_chains():
    devices = chain_devices(4)
    assert 1 <= len(devices) <= len(jax.local_devices())
    assert 4 % len(devices) == 0
    assert len(chain_devices(1)) == 1


def test_fit_records_its_platform_and_precision(quick_fit):
    assert quick_fit.idata.attrs["backend"] == "cpu"
    assert quick_fit.idata.attrs["precision"] == "float64"
    assert quick_fit.diagnostics()["chain_devices"] == len(chain_devices(2, backend="cpu"))


def test_fit_refuses_an_unknown_or_missing_device(addition):
    train, _ = addition
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        bu.fit(train, X, Y, device="tpu")
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(ValueError, match="no gpu device available"):
            bu.fit(train, X, Y, device="gpu")
