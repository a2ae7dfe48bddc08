"""Worker processes: a CPU run spread over cores gives the draws of a run in one process."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import bayes_unsl as bu
import bayes_unsl.batch as batch
from bayes_unsl.models import ModelSpec
from bayes_unsl.workers import run_tasks, usable_cores
from tests.conftest import QUICK, X, Y


def test_tasks_run_in_workers_and_failures_surface():
    assert sorted(run_tasks(math.sqrt, [(4.0,), (9.0,), (16.0,)], 2)) == [2.0, 3.0, 4.0]
    with pytest.raises(RuntimeError, match="math domain error"):
        list(run_tasks(math.sqrt, [(-1.0,)], 1))
    with pytest.raises(ValueError, match="n_workers"):
        list(run_tasks(math.sqrt, [(1.0,)], 0))


def test_worker_processes_give_the_same_draws(addition, capsys):
    train, _ = addition
    table = __import__("pandas").concat(
        [train.assign(curve="full"), train.iloc[:11].assign(curve="short")]
    )
    kw = dict(seed=5, batch_size=1, warn=False, **QUICK)
    here = bu.fit_many(table, "curve", X, Y, workers=1, **kw)
    spread = bu.fit_many(table, "curve", X, Y, workers=2, progress_bar=True, **kw)
    assert "2/2 curves fitted by 2 worker processes" in capsys.readouterr().err
    assert list(spread) == list(here) == ["full", "short"]
    for name in here:
        a, b = here[name].idata.posterior, spread[name].idata.posterior
        for site in ("m_centre", "c0_y", "c_y", "log_sigma"):
            np.testing.assert_array_equal(a[site].values, b[site].values)
        assert spread[name].diagnostics()["r_hat_max"] == here[name].diagnostics()["r_hat_max"]


def test_how_many_workers():
    spec = ModelSpec.build("bnsl", 1)
    many = batch.WORKERS_MIN_CURVES
    assert batch._n_workers(None, "cpu", spec, many) == min(usable_cores(), 16)
    assert batch._n_workers(None, "cpu", spec, many - 1) == 1
    assert batch._n_workers(3, "cpu", spec, 2) == 3
    assert batch._n_workers(3, "gpu", spec, many) == 1  # a GPU runs the batch itself


def test_bad_worker_counts(addition):
    train, _ = addition
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            bu.fit_many(train.assign(curve="a"), "curve", X, Y, workers=bad)


ONE_SHARDED_BATCH = """
import warnings
import pandas as pd
import bayes_unsl as bu
warnings.simplefilter("ignore")
frame = bu.datasets.load("four_digit_addition").iloc[:14]
table = pd.concat([frame.assign(g=i) for i in range(3)])
fits = bu.fit_many(table, "g", "train_dataset_size", "test_cross_entropy", batch_size=8,
                   workers=2, chains=2, warmup=5, draws=5, map_starts=4, retries=0, warn=False)
print(len(fits))
"""


def test_workers_asked_for_one_batch_leave_it_sharded_over_the_devices():
    """One batch has nothing to spread over workers: it runs here, padded to the devices."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    done = subprocess.run(
        [sys.executable, "-c", ONE_SHARDED_BATCH],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "3"


def test_worker_processes_start_without_arviz():
    # A worker imports the batch code at start-up; ArviZ (and the matplotlib it pulls in)
    # is needed only to build and read InferenceData in the parent, and took about a
    # second of every worker's start.
    probe = "import sys, bayes_unsl.batch, bayes_unsl._worker; print('arviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
