"""Point-estimate baselines: power law, BNSL (grid + least squares), M4, the Chinchilla and
data-constrained forms (Chinchilla's approach 3), and bootstrap draws.

Each ``fit_*`` takes x and y (finite, > 0, same length) and returns a :class:`PointFit`.
x is 1-D for the laws of one input; for the laws of several it is an (n, m) array, one row
a run: (N, D) for :func:`fit_chinchilla_point`, (N, D, U_D) for
:func:`fit_data_constrained_point`. :func:`bootstrap_draws` turns any of them into
predictive draws for the scores in :mod:`bayes_unsl.evaluation`.
"""

from bayes_unsl.baselines._core import PointFit
from bayes_unsl.baselines.bnsl_point import bnsl_log_y, fit_bnsl_point
from bayes_unsl.baselines.bootstrap import bootstrap_draws
from bayes_unsl.baselines.chinchilla_point import (
    chinchilla_log_y,
    fit_chinchilla_point,
    fit_data_constrained_point,
)
from bayes_unsl.baselines.m4_point import fit_m4
from bayes_unsl.baselines.power_law import fit_power_law

__all__ = [
    "PointFit",
    "bnsl_log_y",
    "bootstrap_draws",
    "chinchilla_log_y",
    "fit_bnsl_point",
    "fit_chinchilla_point",
    "fit_data_constrained_point",
    "fit_m4",
    "fit_power_law",
]
