"""Functional forms: pure JAX functions of (params, log-inputs) returning log y."""

from bayes_unsl.forms.bnsl import bnsl, bnsl_log_m
from bayes_unsl.forms.chinchilla import (
    DEFAULT_LOG_TOKENS_PER_PARAM,
    chinchilla,
    data_constrained,
    effective_counts,
)
from bayes_unsl.forms.m4 import m4
from bayes_unsl.forms.mbnsl import mbnsl_log
from bayes_unsl.forms.unsl import UNSLStructure, ceiling_log, opposition_log, unsl

__all__ = [
    "DEFAULT_LOG_TOKENS_PER_PARAM",
    "UNSLStructure",
    "bnsl",
    "bnsl_log_m",
    "ceiling_log",
    "chinchilla",
    "data_constrained",
    "effective_counts",
    "m4",
    "mbnsl_log",
    "opposition_log",
    "unsl",
]
