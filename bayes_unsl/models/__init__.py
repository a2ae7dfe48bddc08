"""Model specs and NumPyro model builders."""

from bayes_unsl.models.bnsl import CURVE_SITES, BNSLContext, bnsl_context, bnsl_model
from bayes_unsl.models.spec import FORMS, LIKELIHOODS, ModelSpec

__all__ = [
    "CURVE_SITES",
    "FORMS",
    "LIKELIHOODS",
    "BNSLContext",
    "ModelSpec",
    "bnsl_context",
    "bnsl_model",
]
