"""bayes_unsl: Bayesian neural scaling laws with calibrated extrapolations.

import bayes_unsl as bu
df = bu.datasets.load("four_digit_addition")
result = bu.fit(df[df.split == "train"], x="train_dataset_size", y="test_cross_entropy")
result.predict([800, 1600])
"""

__version__ = "0.1.0"

from bayes_unsl import datasets  # noqa: E402
from bayes_unsl.allocation import allocation_exponents, compute_optimal  # noqa: E402
from bayes_unsl.backtest import Backtest, backtest  # noqa: E402
from bayes_unsl.batch import FitCollection, fit_many, load_many  # noqa: E402
from bayes_unsl.devices import use_cpu_cores  # noqa: E402
from bayes_unsl.fit import Fit, fit, load, prior_predictive  # noqa: E402
from bayes_unsl.hyperparameters import optimal_input  # noqa: E402
from bayes_unsl.inference.diagnostics import ConvergenceWarning  # noqa: E402
from bayes_unsl.models.spec import ModelSpec  # noqa: E402
from bayes_unsl.models.unsl import FewValuesWarning  # noqa: E402
from bayes_unsl.priors import BNSLPriors, UNSLPriors  # noqa: E402
from bayes_unsl.report import report  # noqa: E402

__all__ = [
    "BNSLPriors",
    "Backtest",
    "ConvergenceWarning",
    "FewValuesWarning",
    "Fit",
    "FitCollection",
    "ModelSpec",
    "UNSLPriors",
    "__version__",
    "allocation_exponents",
    "backtest",
    "compute_optimal",
    "datasets",
    "fit",
    "fit_many",
    "load",
    "load_many",
    "optimal_input",
    "prior_predictive",
    "report",
    "use_cpu_cores",
]
