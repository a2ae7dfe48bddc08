"""On-disk caches, so that a second process neither compiles nor traces its programs again.

Both live under ``BAYES_UNSL_CACHE_DIR`` (default ~/.cache/bayes_unsl; ``0`` or an empty
string turns both off): JAX's persistent compilation cache in ``jax/`` and the package's
stored lowered programs (:mod:`bayes_unsl.inference.stored`) in ``programs/``. Every
package version, curve length and sampler setting adds entries, so the folder is kept under
``BAYES_UNSL_CACHE_MAX_MB`` megabytes (default :data:`DEFAULT_MAX_MB`): once per process, the
entries used longest ago are removed until it fits. A removed entry only costs its next user
the time to build it again.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = [
    "DEFAULT_MAX_MB",
    "MANAGED",
    "cache_root",
    "cache_usage",
    "clear",
    "enable_compilation_cache",
    "max_cache_bytes",
    "program_store_dir",
    "prune",
]

DEFAULT_MAX_MB = 1024
MANAGED = ("jax", "programs")  # the folders under the root that this package fills
_DONE = False


def cache_root() -> Path | None:
    """The cache folder, or None when ``BAYES_UNSL_CACHE_DIR`` turns caching off."""
    setting = os.environ.get("BAYES_UNSL_CACHE_DIR")
    if setting is not None and setting.strip() in ("", "0"):
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "bayes_unsl"


def max_cache_bytes() -> int:
    """The most the cache folder may hold: ``BAYES_UNSL_CACHE_MAX_MB`` megabytes, if set."""
    setting = os.environ.get("BAYES_UNSL_CACHE_MAX_MB", "").strip()
    if not setting:
        return DEFAULT_MAX_MB * 2**20
    try:
        megabytes = float(setting)
    except ValueError:
        megabytes = float("nan")
    if not megabytes > 0:
        raise ValueError(
            f"BAYES_UNSL_CACHE_MAX_MB must be a positive number of megabytes, got {setting!r} "
            "(to turn caching off, set BAYES_UNSL_CACHE_DIR=0)"
        )
    return int(megabytes * 2**20)


def _last_use(stat: os.stat_result) -> float:
    # Reads update the access time where the file system records it (at least daily under
    # Linux's default relatime); stored programs are touched when loaded.
    return max(stat.st_atime, stat.st_mtime)


def _entries(folder: Path) -> list[tuple[float, int, Path]]:
    """``(last use, bytes, path)`` of each cache entry in ``folder`` (hidden files are not)."""
    entries = []
    try:
        paths = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return entries
    for path in paths:
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile
            continue
        entries.append((_last_use(stat), stat.st_size, path))
    return entries


def prune(folders: list[Path], max_bytes: int) -> int:
    """Remove the files of ``folders`` used longest ago until they hold at most ``max_bytes``.

    Returns the bytes removed. Files that vanish or cannot be removed meanwhile (another
    process pruning or reading them) are skipped.
    """
    entries = [entry for folder in folders for entry in _entries(folder)]
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total - removed <= max_bytes:
            break
        try:
            path.unlink()
        except OSError:
            continue
        removed += size
    return removed


def _managed() -> list[Path]:
    root = cache_root()
    return [] if root is None else [root / name for name in MANAGED]


def cache_usage() -> dict[Path, tuple[int, int]]:
    """Entries and bytes in each folder this package fills (none when caching is off)."""
    usage = {}
    for folder in _managed():
        sizes = [size for _, size, _ in _entries(folder)]
        usage[folder] = (len(sizes), sum(sizes))
    return usage


def clear() -> int:
    """Remove every entry of the folders this package fills; returns the bytes removed."""
    return prune(_managed(), max_bytes=0)


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

    Leaves JAX's setting alone where the user configured a cache already, and does nothing
    when caching is off. Returns the directory in use, if any. The first call in a process
    also keeps the folders this package fills within :func:`max_cache_bytes`.
    """
    global _DONE
    current = jax.config.jax_compilation_cache_dir
    if _DONE:
        return current
    limit = max_cache_bytes()  # a bad setting is an error before anything is cached
    _DONE = True
    ours = [n for n in MANAGED if not (n == "jax" and current)]
    folders = [path for path in map(_folder, ours) if path is not None]
    prune(folders, limit)
    if current:
        return current
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
