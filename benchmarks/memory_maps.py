"""Memory maps held by compiled programs, and whether one process survives many fits.

Every compiled XLA:CPU program holds hundreds of memory maps, and Linux aborts the
compilation that takes a process past ``vm.max_map_count``. This fits the 4-digit addition
curve at every length from 5 to 17 points and three tree depths (39 distinct program sets)
in one worker process per mode, each with a fresh cache folder, and records the maps in use
after every fit:

- ``bounded``: the package as it is (programs dropped before the maps pass
  ``MAX_MAP_SHARE`` of the limit);
- ``count only``: ``MAX_MAP_SHARE`` set to 1, so only the count bound of 32 program sets
  applies, as before the maps were bounded. It aborts only where 32 sets hold more maps
  than the limit: in the recorded run (sets of about 1,200 maps: no prior program) it did
  not; sets with prior draws hold about 3,000, as in the test suite that aborted.

    python benchmarks/memory_maps.py [--out benchmarks/results]

Writes memory_maps.{md,csv}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from provenance import git_commit, machine, write_report

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = range(5, 18)
DEPTHS = (4, 5, 6)
MODES = {"bounded": None, "count only": 1.0}

WORKER = """
import json, sys, time
import bayes_unsl as bu
from bayes_unsl.inference import nuts
share = json.loads(sys.argv[1])
if share is not None:
    nuts.MAX_MAP_SHARE = share
curve = bu.datasets.load("four_digit_addition")
for depth in {depths}:
    for n in {lengths}:
        started = time.perf_counter()
        bu.fit(curve.iloc[:n], "train_dataset_size", "test_cross_entropy", breaks=0, seed=0,
               chains=2, warmup=50, draws=50, prior_draws=0, max_tree_depth=depth, warn=False)
        in_use, limit = nuts.memory_maps()
        print(json.dumps(dict(points=n, max_tree_depth=depth, maps=in_use, limit=limit,
                              programs_kept=len(nuts._PROGRAMS),
                              seconds=time.perf_counter() - started)), flush=True)
"""


def run_mode(name: str, share: float | None) -> tuple[list[dict], int, float]:
    """One worker process: its rows, its exit status and its seconds."""
    code = WORKER.format(depths=DEPTHS, lengths=tuple(LENGTHS))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "BAYES_UNSL_CACHE_DIR": cache}
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(share)],
            capture_output=True,
            text=True,
            env=env,
        )
    rows = [
        {"mode": name, "fit": i + 1, **json.loads(line)}
        for i, line in enumerate(done.stdout.splitlines())
        if line.startswith("{")
    ]
    return rows, done.returncode, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    started = time.perf_counter()
    rows, outcomes = [], []
    for name, share in MODES.items():
        got, status, seconds = run_mode(name, share)
        rows += got
        peak = max((r["maps"] for r in got), default=0)
        limit = got[0]["limit"] if got else "?"
        ended = "completed" if status == 0 else f"ended with status {status}"
        outcomes.append(
            f"| {name} | {len(got)} of {len(LENGTHS) * len(DEPTHS)} | {peak} | {limit} | "
            f"{ended} | {seconds:.0f} |"
        )
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "memory_maps.csv", index=False)
    lines = [
        "# Memory maps held by compiled programs in one process",
        "",
        "Command: `python benchmarks/memory_maps.py`. Machine: "
        f"{machine()}; commit {git_commit()}; {time.perf_counter() - started:.0f} s in all.",
        "",
        "Each mode: one worker process with a fresh cache folder fits the 4-digit addition "
        f"curve's first n points for n in {LENGTHS.start}..{LENGTHS.stop - 1} at max tree depths "
        f"{', '.join(map(str, DEPTHS))} ({len(LENGTHS) * len(DEPTHS)} distinct program sets; "
        "BNSL without breaks, 2 chains x (50 + 50), no prior draws), and reads "
        "/proc/self/maps after each fit. `bounded`: the package's default; `count only`: "
        "`MAX_MAP_SHARE = 1`, so that only the bound of 32 kept program sets applies. "
        "A status of -6 is SIGABRT: the compilation that crossed the limit aborted the process.",
        "",
        "| mode | fits done | peak maps | limit | worker | seconds |",
        "|---|---|---|---|---|---|",
        *outcomes,
    ]
    write_report(args.out / "memory_maps.md", lines, table)


if __name__ == "__main__":
    main()
