"""On-disk caches, so that a second process neither compiles nor traces its programs again.

Both live under ``BAYES_UNSL_CACHE_DIR`` (default ~/.cache/bayes_unsl; ``0`` or an empty
string turns both off): JAX's persistent compilation cache in ``jax/`` and the package's
stored lowered programs (:mod:`bayes_unsl.inference.stored`) in ``programs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["cache_root", "enable_compilation_cache", "program_store_dir"]

_DONE = False


def cache_root() -> Path | None:
    """The cache folder, or None when ``BAYES_UNSL_CACHE_DIR`` turns caching off."""
    setting = os.environ.get("BAYES_UNSL_CACHE_DIR")
    if setting is not None and setting.strip() in ("", "0"):
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "bayes_unsl"


def _folder(name: str) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    try:
        (root / name).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / name


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at ``jax/`` under :func:`cache_root`.

    Does nothing when the user configured a cache already, or when caching is off. Returns
    the directory in use, if any.
    """
    global _DONE
    current = jax.config.jax_compilation_cache_dir
    if _DONE or current:
        return current
    _DONE = True
    path = _folder("jax")
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)


def program_store_dir() -> Path | None:
    """Folder of stored lowered programs (``programs/`` under :func:`cache_root`), or None."""
    return _folder("programs")
