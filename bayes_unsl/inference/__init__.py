"""Inference: multi-start MAP, compiled NUTS programs, convergence diagnostics (one fit or
thousands at once)."""

from bayes_unsl.inference.diagnostics import (
    ConvergenceWarning,
    Thresholds,
    check_convergence,
    convergence_problems,
    summarise_convergence,
    summarise_draws,
)
from bayes_unsl.inference.nuts import PosteriorRun, SamplerSettings, run_nuts

__all__ = [
    "ConvergenceWarning",
    "PosteriorRun",
    "SamplerSettings",
    "Thresholds",
    "check_convergence",
    "convergence_problems",
    "run_nuts",
    "summarise_convergence",
    "summarise_draws",
]
