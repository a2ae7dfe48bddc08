"""Model specs and NumPyro model builders, one module per form, found through a registry."""

from bayes_unsl.models.bnsl import BNSL, BNSLContext, bnsl_context, bnsl_curve, bnsl_model
from bayes_unsl.models.chinchilla import (
    CF,
    DC,
    CFContext,
    chinchilla_context,
    chinchilla_curve,
    chinchilla_model,
    dc_context,
    dc_curve,
    dc_model,
)
from bayes_unsl.models.m4 import M4, M4Context, m4_context, m4_curve, m4_model
from bayes_unsl.models.registry import FormModel, available_forms, form_model, register
from bayes_unsl.models.spec import LIKELIHOODS, ModelSpec
from bayes_unsl.models.unsl import (
    UNSL,
    UNSLContext,
    default_structure,
    unsl_context,
    unsl_curve,
    unsl_model,
    unsl_param_count,
)

__all__ = [
    "BNSL",
    "CF",
    "DC",
    "LIKELIHOODS",
    "M4",
    "UNSL",
    "BNSLContext",
    "CFContext",
    "FormModel",
    "M4Context",
    "ModelSpec",
    "UNSLContext",
    "available_forms",
    "bnsl_context",
    "bnsl_curve",
    "bnsl_model",
    "chinchilla_context",
    "chinchilla_curve",
    "chinchilla_model",
    "dc_context",
    "dc_curve",
    "dc_model",
    "default_structure",
    "form_model",
    "m4_context",
    "m4_curve",
    "m4_model",
    "register",
    "unsl_context",
    "unsl_curve",
    "unsl_model",
    "unsl_param_count",
]
