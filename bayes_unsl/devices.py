"""CPU cores as JAX devices, so that a fit's chains run side by side.

JAX runs a program on one CPU device, one core. A fit's chains are independent, so on a
machine with several cores they can run on several CPU devices at once: on 2 cores, a
4-chain fit of the 4-digit addition curve samples in well under the time it takes on one
device (``benchmarks/results/throughput.md``, rows ``chain-devices``). JAX fixes its number
of CPU devices when it first runs anything, so :func:`use_cpu_cores` must come first; the
command line does it for you.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax

__all__ = ["chain_devices", "usable_cores", "use_cpu_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_cpu_cores(cores: int | None = None) -> int:
    """Give JAX ``cores`` CPU devices (default: every usable core, at most 8).

    Call it right after import, before any JAX computation: JAX fixes its devices when it
    first runs something. Later it cannot take effect, and a warning says so. Returns the
    number of CPU devices in effect. ``XLA_FLAGS=--xla_force_host_platform_device_count``,
    where set, is left to decide.
    """
    if cores is None:
        cores = min(usable_cores(), 8)
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise ValueError(f"cores must be a positive integer, got {cores!r}")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return len(jax.devices("cpu"))
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:
        in_effect = len(jax.devices("cpu"))
        if in_effect != cores:
            warnings.warn(
                f"JAX already runs on {in_effect} CPU device(s), so use_cpu_cores({cores}) "
                "has no effect: call it right after importing bayes_unsl, before anything "
                "else runs.",
                RuntimeWarning,
                stacklevel=2,
            )
        return in_effect
    return len(jax.devices("cpu"))


def chain_devices(chains: int, backend: str | None = None) -> list[Any]:
    """The local devices of ``backend`` (default: JAX's default) to split ``chains`` over.

    As many as divide the chains evenly, so that every device runs the same number of
    chains; a single device where there is only one.
    """
    devices: Sequence[Any] = jax.local_devices(backend=backend)
    count = max(n for n in range(1, len(devices) + 1) if chains % n == 0)
    return list(devices[:count])
