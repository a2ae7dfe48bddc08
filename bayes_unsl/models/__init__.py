"""Model specs and NumPyro model builders, one module per form, found through a registry."""

from bayes_unsl.models.bnsl import BNSL, BNSLContext, bnsl_context, bnsl_curve, bnsl_model
from bayes_unsl.models.registry import FormModel, available_forms, form_model, register
from bayes_unsl.models.spec import LIKELIHOODS, ModelSpec

__all__ = [
    "BNSL",
    "LIKELIHOODS",
    "BNSLContext",
    "FormModel",
    "ModelSpec",
    "available_forms",
    "bnsl_context",
    "bnsl_curve",
    "bnsl_model",
    "form_model",
    "register",
]
