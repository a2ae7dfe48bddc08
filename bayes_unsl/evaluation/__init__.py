"""Evaluation: held-out splits, scores of predictive draws, and choice among fits.

``scores``: any model's predictive draws of y against held-out observations (numpy only).
``splits``: the context / held-out rules of the published benchmarks. ``model_choice``:
PSIS-LOO selection and stacking over fits of one curve.
"""

from bayes_unsl.evaluation.model_choice import (
    check_same_data,
    loo_compare,
    parsimonious_choice,
    pointwise_loo,
    select_by_loo,
    stacked_samples,
    stacking_counts,
)
from bayes_unsl.evaluation.scores import (
    COVERAGE_LEVELS,
    MSCE_LEVELS,
    CoverageCounts,
    central_interval,
    coverage,
    coverage_counts,
    coverage_table,
    crps,
    interval_score,
    interval_width,
    log_predictive_density,
    msce,
    pit,
    pool_coverage,
    pooled_coverage_interval,
    pooled_msce,
    rmsle,
    score_all,
    score_names,
)
from bayes_unsl.evaluation.splits import (
    addition_cut_split,
    addition_split,
    benchmark_split,
    double_descent_context,
    double_descent_split,
    future_split,
    match_resolution,
    steepest_cut_split,
)

__all__ = [
    "COVERAGE_LEVELS",
    "MSCE_LEVELS",
    "CoverageCounts",
    "addition_cut_split",
    "addition_split",
    "benchmark_split",
    "central_interval",
    "coverage",
    "coverage_counts",
    "coverage_table",
    "crps",
    "double_descent_context",
    "double_descent_split",
    "future_split",
    "match_resolution",
    "steepest_cut_split",
    "interval_score",
    "interval_width",
    "log_predictive_density",
    "loo_compare",
    "msce",
    "pit",
    "pool_coverage",
    "pooled_coverage_interval",
    "pooled_msce",
    "rmsle",
    "score_all",
    "score_names",
    "check_same_data",
    "parsimonious_choice",
    "pointwise_loo",
    "select_by_loo",
    "stacked_samples",
    "stacking_counts",
]
