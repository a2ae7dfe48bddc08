"""bayes_unsl: Bayesian neural scaling laws with calibrated extrapolations."""

__version__ = "0.1.0"
