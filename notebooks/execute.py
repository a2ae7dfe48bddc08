"""Execute the worked notebooks top to bottom with nbclient.

    python notebooks/execute.py                   # every notebook, full settings, in place
    python notebooks/execute.py --quick           # small sampler settings (BAYES_UNSL_QUICK=1)
    python notebooks/execute.py --out DIR 01_forecast_with_uncertainty.ipynb

The kernel is the Python interpreter running this script (a kernel spec pointing at it is
written to a temporary folder), so the notebooks run in the same virtual environment
whatever kernels are installed elsewhere. Each notebook runs with its own folder as the
working directory, as Jupyter would run it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNEL = "bayes-unsl-notebooks"

__all__ = ["HERE", "execute", "notebooks"]


def notebooks() -> list[Path]:
    """The worked notebooks, in reading order."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def _kernel_manager(kernels: Path) -> AsyncKernelManager:
    """A kernel manager whose only kernel is this interpreter with ipykernel."""
    spec = kernels / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (bayes_unsl)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def execute(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    timeout: int = 3600,
    env: dict[str, str] | None = None,
) -> float:
    """Run the notebook at ``path`` and write it, outputs included, to ``out``.

    ``out`` defaults to ``path`` (in place). The kernel starts in the folder of ``path``.
    ``quick`` sets ``BAYES_UNSL_QUICK=1`` for the kernel (unset otherwise); ``env``:
    further environment variables for it. ``timeout``: seconds allowed per cell. A cell
    that raises stops the run with ``nbclient.exceptions.CellExecutionError`` and nothing
    is written. Returns the seconds the run took.
    """
    path = Path(path).resolve()
    out = path if out is None else Path(out)
    nb = nbformat.read(path, as_version=4)
    kernel_env = dict(os.environ)
    kernel_env.pop("BAYES_UNSL_QUICK", None)
    if quick:
        kernel_env["BAYES_UNSL_QUICK"] = "1"
    kernel_env.update(env or {})
    # Figures are drawn by the inline backend of the kernel, never in a window.
    kernel_env.pop("MPLBACKEND", None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        client = NotebookClient(
            nb,
            km=_kernel_manager(Path(tmp)),
            timeout=timeout,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute(env=kernel_env)
    seconds = time.perf_counter() - started
    # The stored notebook names the usual kernel, not the temporary one.
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(nb, out)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sampler settings")
    parser.add_argument("--out", type=Path, help="write here instead of in place")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [HERE / n for n in args.names] if args.names else notebooks()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        out = None if args.out is None else args.out / path.name
        seconds = execute(path, out, quick=args.quick, timeout=args.timeout)
        settings = "quick" if args.quick else "full"
        print(f"{path.name}: {seconds:.0f} s ({settings} settings)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
