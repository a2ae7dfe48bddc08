"""Which devices run a fit: the platform for a job's size, and CPU cores as JAX devices.

A single curve runs faster on a CPU than on a GPU, whose launch latency dominates NUTS's
small steps; the GPU pays from a batch of many curves (:func:`choose_platform`).

JAX runs a program on one CPU device, one core. A fit's chains are independent, so on a
machine with several cores they can run on several CPU devices at once: on 2 cores the
4-chain demo sampled in 5.8 s split over two devices against 7.4 s on one
(``benchmarks/results/demo_time.md``).
JAX fixes its number of CPU devices when it first runs anything, so :func:`use_cpu_cores`
must come first; the ``bayes-unsl`` program does it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax

from bayes_unsl.workers import usable_cores

__all__ = ["GPU_MIN_CURVES", "chain_devices", "choose_platform", "use_cpu_cores"]

# Below this many curves a GPU's launch latency costs more than it gains. Measured on an
# H100 (benchmarks/results/throughput.md): 16 curves in one batch, 0.75 s per curve
# after compilation, against 3-7 s per curve one at a time on a CPU; a single curve is
# many times slower on the GPU than on a CPU.
GPU_MIN_CURVES = 16


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


def choose_platform(device: str | None, n_curves: int) -> str:
    """ "cpu" or "gpu" for a job of ``n_curves``: as asked (checked), else the GPU only for
    ``GPU_MIN_CURVES`` curves or more, when there is one."""
    if device is not None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        try:
            jax.devices(device)
        except RuntimeError as err:
            raise ValueError(f"no {device} device available: {err}") from err
        return device
    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    return "gpu" if has_gpu and n_curves >= GPU_MIN_CURVES else "cpu"
