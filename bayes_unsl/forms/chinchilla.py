"""Chinchilla form (CF) and data-constrained form (DC), in log space.

CF (Hoffmann et al. 2022, fitted as in Epoch AI's replication, arXiv 2404.10102):
``y = E + A / N^alpha + B / D^beta``, computed as the log-sum-exp of the three log terms.

DC (Muennighoff et al. 2023, arXiv 2305.16264) replaces N and D with effective counts
that discount repeated tokens and excess parameters:

    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),  R_D = D / U_D - 1,
    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  R_N = N / U_N - 1,

with U_N = min(N, U_D / tokens_per_param): following the paper, the parameter count
that is compute-optimal for U_D unique tokens, through a fixed tokens-per-parameter
ratio (Chinchilla's is about 20, ``log_tokens_per_param = log 20``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from bayes_unsl.forms._ops import logsumexp_terms

Params = dict[str, ArrayLike]

DEFAULT_LOG_TOKENS_PER_PARAM = math.log(20.0)
"""Chinchilla's compute-optimal ratio of about 20 tokens per parameter, as a log."""


def chinchilla(params: Params, log_n: ArrayLike, log_d: ArrayLike) -> jax.Array:
    """Log y of CF, ``log(E + A N^-alpha + B D^-beta)``, at broadcastable log N and log D.

    params: ``log_e``, ``log_a``, ``log_b`` (logs of E, A, B) and the exponents ``alpha``,
    ``beta``. N and D may be raw counts or relative to reference scales; A and B absorb
    the scales.
    """
    return logsumexp_terms(
        params["log_e"],
        params["log_a"] - params["alpha"] * jnp.asarray(log_n),
        params["log_b"] - params["beta"] * jnp.asarray(log_d),
    )


def _log_effective(log_count: jax.Array, log_unique: jax.Array, log_r_star: ArrayLike):
    """Log of ``U + U R* (1 - exp(-R / R*))`` with ``R = count / U - 1``, given U <= count.

    Uses ``-expm1`` for ``1 - exp(.)`` and ``log1p``; with count = U it returns log U
    exactly.
    """
    repeats = jnp.expm1(log_count - log_unique)
    r_star = jnp.exp(log_r_star)
    return log_unique + jnp.log1p(r_star * -jnp.expm1(-repeats / r_star))


def effective_counts(
    params: Params, log_n: ArrayLike, log_d: ArrayLike, log_unique_d: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """Log N' and log D' of the DC form; see :func:`data_constrained`."""
    log_n = jnp.asarray(log_n)
    log_d = jnp.asarray(log_d)
    # Unique tokens seen cannot exceed tokens seen: with D <= U_D there is no repetition.
    # Capping with a plain min keeps gradients finite, and D' (and N') is continuously
    # differentiable across the cap, since dD'/dD = 1 and dD'/dU_D = 0 at R_D = 0.
    log_ud = jnp.minimum(jnp.asarray(log_unique_d), log_d)
    log_un = jnp.minimum(log_n, log_ud - params["log_tokens_per_param"])
    log_d_eff = _log_effective(log_d, log_ud, params["log_r_d_star"])
    log_n_eff = _log_effective(log_n, log_un, params["log_r_n_star"])
    return log_n_eff, log_d_eff


def data_constrained(
    params: Params, log_n: ArrayLike, log_d: ArrayLike, log_unique_d: ArrayLike
) -> jax.Array:
    """Log y of DC: CF evaluated at the effective counts N' and D'.

    Inputs are logs of raw counts: N parameters, D training tokens, U_D unique tokens
    available (broadcastable). params: those of :func:`chinchilla` plus
    ``log_r_d_star``, ``log_r_n_star`` (logs of the decay constants R_D*, R_N*; the
    paper fits roughly 15 and 5) and ``log_tokens_per_param`` (see
    ``DEFAULT_LOG_TOKENS_PER_PARAM``). U_D is capped at D, since tokens never seen are not
    repeated; so with D <= U_D and N <= U_D / tokens_per_param, DC equals CF exactly.
    """
    log_n_eff, log_d_eff = effective_counts(params, log_n, log_d, log_unique_d)
    return chinchilla(params, log_n_eff, log_d_eff)
