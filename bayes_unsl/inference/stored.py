"""Lowered programs kept on disk, so that a new process does not trace them again.

Tracing and lowering NUTS's programs (the model, the MAP search, the tree building) costs
seconds in every new process, even when JAX's persistent cache then finds the compiled code
(measured: about 4 s of a 15 s demo fit). A :class:`StoredProgram` is exported once with
:mod:`jax.export`, its serialised form written to the program store, and later processes
deserialise it and compile it, which the persistent compilation cache answers.

The key covers everything the lowering depends on: this package's source files, the versions
of jax, jaxlib and numpyro, the platform, the model and its spec, the sampler settings and
the shapes and dtypes of the arguments. Where a program cannot be exported or stored (an
optional dependency missing, a read-only folder) it is compiled as usual, from its trace.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["StoredProgram", "model_identity"]

_log = logging.getLogger(__name__)
# Bumped when the layout of a stored file changes.
STORE_FORMAT = 1


@functools.cache
def _environment() -> str:
    """Versions and source digest: a stored program is valid only for exactly this code."""
    import importlib.metadata as metadata

    import bayes_unsl

    versions = []
    for name in ("jax", "jaxlib", "numpyro"):
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=?")
    root = Path(bayes_unsl.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"{STORE_FORMAT}|{bayes_unsl.__version__}|{'|'.join(versions)}|{digest.hexdigest()}"


def model_identity(model: Callable) -> str | None:
    """A stable name for a model of this package (a function, or a partial of one).

    Functions among a partial's arguments (a wrapped model) are named the same way, so the
    name covers every setting the program depends on. None for models defined elsewhere:
    their source is not part of the key, so their programs are never stored.
    """
    fn, args, keywords = model, (), {}
    if isinstance(model, functools.partial):
        fn, args, keywords = model.func, model.args, model.keywords
    module = getattr(fn, "__module__", None) or ""
    if not module.startswith("bayes_unsl.") or "<locals>" in fn.__qualname__:
        return None
    named_args = [_argument_identity(a) for a in args]
    named_keywords = {k: _argument_identity(v) for k, v in sorted(keywords.items())}
    if None in named_args or None in named_keywords.values():
        return None
    keywords_text = ", ".join(f"{k}={v}" for k, v in named_keywords.items())
    return f"{module}.{fn.__qualname__}|{', '.join(named_args)}|{keywords_text}"


def _argument_identity(value: Any) -> str | None:
    return model_identity(value) if callable(value) else repr(value)


class StoredProgram:
    """A program compiled at its first call: loaded from ``directory``, or traced and stored.

    ``build``: returns the function to run (called only when nothing is stored);
    ``key``: what, besides the argument shapes, the program depends on; ``platform``:
    the platform it runs on ("cpu", "cuda", ...); ``shardings``: for a program over several
    devices, the shardings of its first argument, of its other arguments and of every
    output. Calls take and return pytrees, as the built function does.
    """

    def __init__(
        self,
        build: Callable[[], Callable],
        key: Hashable,
        directory: Path,
        platform: str,
        shardings: tuple | None = None,
    ):
        self._build = build
        self._key = key
        self._directory = Path(directory)
        self._platform = platform
        self._shardings = shardings
        self._compiled: Callable | None = None
        self._out_tree = None
        self.source: str | None = None  # "store", "export" or "trace", once compiled
        self.seconds_prepared = 0.0  # loading or tracing, and compiling, at the first call

    def __call__(self, *args: Any) -> Any:
        leaves, in_tree = jax.tree_util.tree_flatten(args)
        if self._compiled is None:
            started = time.perf_counter()
            self._prepare(leaves, in_tree, self._jit_options(args))
            self.seconds_prepared = time.perf_counter() - started
        return jax.tree_util.tree_unflatten(self._out_tree, self._compiled(*leaves))

    def _jit_options(self, args: tuple) -> dict:
        """``jax.jit`` shardings of the flat program, one per argument leaf."""
        if self._shardings is None:
            return {}
        first, rest, out = self._shardings
        per_leaf = [first] * len(jax.tree_util.tree_leaves(args[0]))
        per_leaf += [rest] * len(jax.tree_util.tree_leaves(args[1:]))
        return {"in_shardings": tuple(per_leaf), "out_shardings": out}

    def path_for(self, leaves: list, in_tree) -> Path:
        shapes = tuple((np.shape(v), jnp.result_type(v).name) for v in leaves)
        text = repr((_environment(), self._platform, self._key, str(in_tree), shapes))
        return self._directory / f"{hashlib.sha256(text.encode()).hexdigest()}.program"

    def _prepare(self, leaves: list, in_tree, jit_options: dict) -> None:
        path = self.path_for(leaves, in_tree)
        exported = self._load(path)
        if exported is not None:
            self.source = "store"
        else:
            exported = self._export(leaves, in_tree, path, jit_options)
        if exported is None:  # could not export: compile from the trace
            return
        self._compiled = jax.jit(exported.call, **jit_options).lower(*leaves).compile()

    def _load(self, path: Path):
        """The stored program, or None (absent, unreadable, or written by other code)."""
        try:
            with open(path, "rb") as handle:
                stored = pickle.load(handle)
            if stored.get("format") != STORE_FORMAT:
                return None
            exported = jax.export.deserialize(bytearray(stored["exported"]))
        except FileNotFoundError:
            return None
        except Exception as error:  # a damaged file is rebuilt, not fatal
            _log.debug("stored program %s unreadable (%s): rebuilding it", path.name, error)
            return None
        self._out_tree = stored["out_tree"]
        try:
            os.utime(path)  # used now: the cache's pruning removes the least recently used
        except OSError:
            pass
        return exported

    def _export(self, leaves: list, in_tree, path: Path, jit_options: dict):
        """Trace, export and store the program; None (and a plain compile) where that fails."""
        fn = self._build()
        trees = []

        def flat(*flat_args):
            out = fn(*jax.tree_util.tree_unflatten(in_tree, flat_args))
            out_leaves, out_tree = jax.tree_util.tree_flatten(out)
            trees.append(out_tree)
            return out_leaves

        shapes = [jax.ShapeDtypeStruct(np.shape(v), jnp.result_type(v)) for v in leaves]
        try:
            jitted = jax.jit(flat, **jit_options)
            exported = jax.export.export(jitted, platforms=(self._platform,))(*shapes)
            data = exported.serialize()
        except Exception as error:  # e.g. flatbuffers missing: no store, same results
            _log.debug("program not exported (%s): compiling it from its trace", error)
            trees.clear()
            self._compiled = jax.jit(flat, **jit_options).lower(*leaves).compile()
            self._out_tree = trees[-1]
            self.source = "trace"
            return None
        self._out_tree = trees[-1]
        self.source = "export"
        _write_atomically(
            path, {"format": STORE_FORMAT, "exported": bytes(data), "out_tree": self._out_tree}
        )
        return exported


def _write_atomically(path: Path, stored: dict) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            pickle.dump(stored, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except OSError as error:  # a read-only or full disk costs only the next process's time
        _log.debug("program not stored (%s)", error)
        try:
            os.unlink(temporary)
        except (OSError, UnboundLocalError):
            pass
