"""The versions a saved result records, so that it can be reproduced with the same software."""

from __future__ import annotations

import platform


def installed_versions() -> dict[str, str]:
    """Python's and the packages' that change what a fit draws or how it is stored."""
    import arviz
    import jax
    import jaxlib
    import numpy
    import numpyro

    from bayes_unsl import __version__

    modules = {"jax": jax, "jaxlib": jaxlib, "numpyro": numpyro, "arviz": arviz, "numpy": numpy}
    found = {name: module.__version__ for name, module in modules.items()}
    return {"python": platform.python_version(), "bayes_unsl": __version__, **found}
