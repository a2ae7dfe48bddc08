"""Wall time of the 4-digit addition demo on this machine, compilation shown apart.

Runs ``bayes-unsl demo --json`` in fresh processes: first with an empty persistent
compilation cache and program store (tracing and compilation included), then again with
both warm (what a user pays from the second process on), and then warm on one CPU device
(``XLA_FLAGS=--xla_force_host_platform_device_count=1``), as the program runs and with its
first attempt only (``--retries 0``), to show what splitting the chains over the cores
(``bayes_unsl.use_cpu_cores``, which the program calls) gains at equal work.
Writes benchmarks/results/demo_time.{md,json}.

    python benchmarks/demo_time.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def run_demo(
    cache_dir: str, out_dir: str, cpu_devices: int | None = None, extra: tuple[str, ...] = ()
) -> dict:
    env = dict(os.environ, BAYES_UNSL_CACHE_DIR=cache_dir)
    if cpu_devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={cpu_devices}"
    cmd = [sys.executable, "-m", "bayes_unsl.cli", "demo", "--json", "--out", out_dir, *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise RuntimeError(proc.stderr)
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    payload["process_wall_seconds"] = wall
    return payload


def main() -> None:
    import jax
    import numpyro
    from provenance import git_commit, machine

    import bayes_unsl

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        cold = run_demo(cache, out)
        warm = run_demo(cache, out)
        run_demo(cache, out, cpu_devices=1)  # compiles and stores the one-device programs
        one_device = run_demo(cache, out, cpu_devices=1)
        # The first attempt alone, so that one and two devices compare at equal work.
        one_device_first = run_demo(cache, out, cpu_devices=1, extra=("--retries", "0"))
    host = machine()
    versions = f"jax {jax.__version__}, numpyro {numpyro.__version__}"
    rows = [
        ("cold cache (first process)", cold),
        ("warm cache (later processes)", warm),
        ("warm cache, chains on one CPU device", one_device),
        ("warm cache, one CPU device, first attempt only (`--retries 0`)", one_device_first),
    ]
    lines = [
        "# Demo wall time: 4-digit addition, BNSL with 1 break, 4 chains x (1000 + 1000)",
        "",
        "Command: `python benchmarks/demo_time.py` (runs `bayes-unsl demo --json` in fresh "
        "processes sharing one cache folder of compiled code and stored programs: cold, warm, "
        "then warm on one CPU device with and without the automatic refit).",
        f"Machine: {host}; backend {jax.default_backend()}; {versions}; "
        f"bayes_unsl {bayes_unsl.__version__}; commit {git_commit()}.",
        "",
        "| run | chain devices | refits | process wall s | fit s | compile s | sampling s "
        "| R-hat max | divergences | held-out RMSLE | 90% coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r.get('chain_devices', 1)} | {r.get('remedies', 0)} | "
            f"{r['process_wall_seconds']:.1f} | {r['seconds']:.1f} | "
            f"{r['seconds_compile']:.1f} | {r['seconds_sampling']:.1f} | {r['r_hat_max']:.4f} "
            f"| {r['divergences']} | {r['rmsle_heldout']:.4f} | {r['coverage_90_heldout']:.2f} |"
        )
    lines += [
        "",
        "fit s is the time inside `bayes_unsl.fit` (MAP search, compilation, sampling, "
        "posterior processing, and any refit); compile s and sampling s are those of the "
        "last run. Refits: runs repeated with the documented remedy (twice the warm-up and "
        "draws) because the first failed a convergence check. "
        "Process wall s adds Python start-up and imports. "
        "Chain devices: the CPU devices the 4 chains were split over (the same seed gives "
        "other, equally valid draws on another number of devices: rounding differs).",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "demo_time.md").write_text("\n".join(lines))
    (RESULTS / "demo_time.json").write_text(
        json.dumps(
            {
                "machine": host,
                "versions": versions,
                "commit": git_commit(),
                "cold": cold,
                "warm": warm,
                "warm_one_cpu_device": one_device,
                "warm_one_cpu_device_first_attempt": one_device_first,
            },
            indent=2,
        )
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
