"""A plain-text progress bar on stderr for sampling runs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``[#####.....]  50%  warm-up 1000/2000 iterations, 4 chains, 6 s``."""

    def __init__(self, total: int, warmup: int, chains: int, stream: TextIO | None = None):
        self.total, self.warmup, self.chains = total, warmup, chains
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()

    def update(self, done: int) -> None:
        width = 30
        filled = int(width * done / max(self.total, 1))
        phase = "warm-up" if done <= self.warmup else "sampling"
        elapsed = time.perf_counter() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * done / self.total:3.0f}%  "
            f"{phase} {done}/{self.total} iterations, {self.chains} chains, {elapsed:.0f} s"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
