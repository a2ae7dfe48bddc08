"""Batches of curves spread over worker processes, one per CPU core.

On a CPU one NUTS program runs on one core. Running many curves side by side in one program
(vmapped or sharded over several CPU devices) makes every iteration last as long as the
longest trajectory among them (benchmarks/results/throughput.md); separate processes do not
wait for each other, so small batches run in one worker per core. Each worker is a fresh
interpreter started as ``python -m bayes_unsl._worker`` (never a re-import of the user's
script, so scripts without a ``__main__`` guard and notebooks both work); it claims batches
from a shared folder by renaming their task files (atomic on one file system), runs them,
and writes each result back as soon as it is done, which the parent yields in turn. The
compiled programs come from JAX's persistent compilation cache once one process has built
them.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_tasks", "serve", "usable_cores"]

_POLL_SECONDS = 0.05


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def run_tasks(
    function: Callable[..., Any], tasks: Sequence[tuple], n_workers: int
) -> Iterator[Any]:
    """Yield ``function(*task)`` for every task, as each finishes, from ``n_workers``
    worker processes.

    ``function`` must be importable by name (a module-level function) and the tasks and
    results picklable. Results come in the order they finish. A worker that fails raises
    here, with its traceback; stopping the iteration (or Ctrl-C) stops the workers.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}")
    name = (function.__module__, function.__qualname__)
    with tempfile.TemporaryDirectory(prefix="bayes_unsl_workers_") as folder:
        root = Path(folder)
        for i, task in enumerate(tasks):
            _write(root / f"{i:08d}.task", (name, task))
        n_workers = min(n_workers, len(tasks))
        procs = [_start(root, w) for w in range(n_workers)]
        try:
            yield from _collect(root, procs, len(tasks))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                proc.wait()


def _start(root: Path, worker: int) -> subprocess.Popen:
    log = open(root / f"worker{worker}.log", "wb")  # noqa: SIM115 - owned by the process
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "bayes_unsl._worker", str(root), str(worker)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        )
    finally:
        log.close()


def _collect(root: Path, procs: list[subprocess.Popen], n_tasks: int) -> Iterator[Any]:
    received = 0
    while received < n_tasks:
        done = sorted(root.glob("*.result"))
        for path in done:
            with open(path, "rb") as fh:
                result = pickle.load(fh)
            path.unlink()
            received += 1
            yield result
        if done:
            continue
        for w, proc in enumerate(procs):
            if proc.poll() not in (None, 0):
                log = (root / f"worker{w}.log").read_text(errors="replace")
                raise RuntimeError(f"worker process {w} failed:\n{log[-4000:]}")
        if all(proc.poll() is not None for proc in procs) and not any(root.glob("*.result")):
            raise RuntimeError(
                f"worker processes exited with {n_tasks - received} of {n_tasks} tasks undone"
            )
        time.sleep(_POLL_SECONDS)


def _write(path: Path, value: Any) -> None:
    """Pickle ``value`` to ``path`` atomically (write, then rename in one folder)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)


def _claim(root: Path, worker: int) -> Path | None:
    for path in sorted(root.glob("*.task")):
        claimed = path.with_suffix(f".claimed{worker}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:  # another worker took it first
            continue
        return claimed
    return None


def serve(root: Path, worker: int) -> None:
    """A worker's loop: claim a task, run it, write its result; return when none is left."""
    while (claimed := _claim(root, worker)) is not None:
        with open(claimed, "rb") as fh:
            (module, qualname), task = pickle.load(fh)
        function = importlib.import_module(module)
        for part in qualname.split("."):
            function = getattr(function, part)
        _write(claimed.with_suffix(".result"), function(*task))
        claimed.unlink()
