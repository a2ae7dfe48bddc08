"""Floating-point precision for a fit: float64 on CPU, float32 on accelerators by default."""

from __future__ import annotations

import contextlib

import jax

__all__ = ["default_precision", "platform_precision", "precision_scope"]


def default_precision() -> str:
    return platform_precision(jax.default_backend())


def platform_precision(platform: str) -> str:
    """The default precision of computations on ``platform`` ("cpu", "gpu", ...)."""
    return "float64" if platform == "cpu" else "float32"


def precision_scope(precision: str | None):
    """Context in which JAX computes at the requested precision."""
    precision = precision or default_precision()
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older JAX
        from jax.experimental import enable_x64 as enable
    return enable(precision == "float64") if enable is not None else contextlib.nullcontext()
