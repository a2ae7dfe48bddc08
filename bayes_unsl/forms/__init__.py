"""Functional forms: pure JAX functions of (params, log-inputs) returning log y."""
