"""Point-estimate baselines: power law, BNSL (grid + least squares), M4, and bootstrap draws.

Each ``fit_*`` takes x and y (finite, > 0, same length) and returns a :class:`PointFit`;
:func:`bootstrap_draws` turns any of them into predictive draws for the scores in
:mod:`bayes_unsl.evaluation`.
"""

from bayes_unsl.baselines._core import PointFit
from bayes_unsl.baselines.bnsl_point import bnsl_log_y, fit_bnsl_point
from bayes_unsl.baselines.bootstrap import bootstrap_draws
from bayes_unsl.baselines.m4_point import fit_m4
from bayes_unsl.baselines.power_law import fit_power_law

__all__ = [
    "PointFit",
    "bnsl_log_y",
    "bootstrap_draws",
    "fit_bnsl_point",
    "fit_m4",
    "fit_power_law",
]
