"""JAX's persistent compilation cache, so a second process does not compile again."""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["enable_compilation_cache"]

_DONE = False


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent cache at ``BAYES_UNSL_CACHE_DIR`` (default ~/.cache/bayes_unsl).

    Does nothing when the user configured a cache already, or when ``BAYES_UNSL_CACHE_DIR``
    is set to ``0`` or an empty string. Returns the directory in use, if any.
    """
    global _DONE
    current = jax.config.jax_compilation_cache_dir
    if _DONE or current:
        return current
    _DONE = True
    setting = os.environ.get("BAYES_UNSL_CACHE_DIR")
    if setting is not None and setting.strip() in ("", "0"):
        return None
    path = Path(setting) if setting else Path.home() / ".cache" / "bayes_unsl" / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)
