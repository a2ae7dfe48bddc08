"""Saved results and reports record the versions that reproduce them, from one place."""

from __future__ import annotations

import platform

import arviz
import jax
import jaxlib
import numpy as np
import numpyro

import bayes_unsl as bu
from bayes_unsl._versions import installed_versions


def test_installed_versions_are_this_process_s():
    assert installed_versions() == {
        "python": platform.python_version(),
        "bayes_unsl": bu.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpyro": numpyro.__version__,
        "arviz": arviz.__version__,
        "numpy": np.__version__,
    }


def test_a_fit_records_the_versions_that_drew_it(quick_fit):
    attrs = quick_fit.idata.attrs
    for name in ("bayes_unsl", "jax", "numpyro", "arviz"):
        assert attrs[f"{name}_version"] == installed_versions()[name]
