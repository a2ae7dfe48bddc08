"""Rank-normalised split R-hat and bulk / tail ESS over many chains' draws at once.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021,
"Rank-normalization, folding, and localization"), as ArviZ computes them, but every
function takes an array of shape ``(..., chain, draw)`` and works on all leading entries in
one pass of numpy, so that the diagnostics of thousands of batched curves cost
milliseconds per curve rather than ArviZ's per-parameter Python loop. Results agree with
``arviz.rhat`` and ``arviz.ess`` to rounding (tests/test_rank_stats.py).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtri
from scipy.stats import rankdata

__all__ = ["ess_bulk", "ess_tail", "rank_summary", "rhat"]

MIN_DRAWS = 4


def split_chains(x: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as separate chains (a middle draw is dropped)."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=-2)


def z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks of each ``(chain, draw)`` block (Blom's offset)."""
    flat = x.reshape(x.shape[:-2] + (-1,))
    ranks = rankdata(flat, method="average", axis=-1)
    return ndtri((ranks - 0.375) / (flat.shape[-1] + 0.25)).reshape(x.shape)


def _invalid(x: np.ndarray) -> np.ndarray:
    """Entries whose draws hold NaN."""
    return np.isnan(x).any(axis=(-2, -1))


def _too_short(x: np.ndarray, min_chains: int) -> bool:
    return x.shape[-1] < MIN_DRAWS or x.shape[-2] < min_chains


def _nan(x: np.ndarray) -> np.ndarray:
    return np.full(x.shape[:-2], np.nan)


def _classic_rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    between = n * np.var(x.mean(axis=-1), axis=-1, ddof=1)
    within = np.var(x, axis=-1, ddof=1).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat: the larger of the bulk and the folded (tail) value."""
    return rank_summary(x)[0]


def _rhat_of_split(split: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Bulk R-hat of the normal scores ``z`` of ``split``, or the folded (tail) R-hat."""
    flat = split.reshape(split.shape[:-2] + (-1,))
    folded = np.abs(split - np.median(flat, axis=-1)[..., None, None])
    return np.maximum(_classic_rhat(z), _classic_rhat(z_scale(folded)))


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance of every chain at every lag (biased, divided by the length)."""
    n = x.shape[-1]
    centred = x - x.mean(axis=-1, keepdims=True)
    spectrum = rfft(centred, n=next_fast_len(2 * n), axis=-1)
    return irfft(spectrum * np.conj(spectrum), axis=-1)[..., :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of ``(..., chain, draw)`` draws: Geyer's initial positive and monotone sequences.

    The pairwise autocorrelation sums are truncated at the first non-positive pair and
    made monotone by a running minimum, which is what the sequential algorithm computes.
    """
    m, n = x.shape[-2:]
    size = m * n
    constant = (x.max(axis=(-2, -1)) - x.min(axis=(-2, -1))) < np.finfo(float).resolution
    acov = _autocovariance(x)
    mean_var = acov[..., 0].mean(axis=-1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=-1), axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[..., None] - acov.mean(axis=-2)) / var_plus[..., None]
    rho[..., 0] = 1.0
    # Pair k holds lags 2k and 2k + 1; the sequential loop looks at pairs 1, 2, ... while
    # 2k - 1 < n - 3 and the previous pair's sum is positive.
    k_max = max(0, (n - 2 + 1) // 2 - 1)
    pairs = rho[..., 0 : 2 * k_max + 1 : 2] + rho[..., 1 : 2 * k_max + 2 : 2]
    stop = pairs <= 0.0
    k_end = np.where(stop.any(axis=-1), np.argmax(stop, axis=-1), k_max)
    index = np.arange(pairs.shape[-1])
    kept = np.where(index < k_end[..., None], np.minimum.accumulate(pairs, axis=-1), 0.0)
    even_end = np.take_along_axis(rho, (2 * k_end)[..., None], axis=-1)[..., 0]
    pair_end = np.take_along_axis(pairs, k_end[..., None], axis=-1)[..., 0]
    stored = (k_end >= 1) & (pair_end >= 0.0)
    last = np.where((even_end > 0.0) | stored, even_end, 0.0)
    tau = -1.0 + 2.0 * kept.sum(axis=-1) + last
    tau = np.maximum(tau, 1.0 / np.log10(size))
    ess = size / tau
    ess = np.where(np.isnan(rho).any(axis=-1), np.nan, ess)
    return np.where(constant, float(size), ess)


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk ESS: the ESS of the rank-normalised split chains."""
    return rank_summary(x)[1]


def ess_tail(x: np.ndarray, probs: tuple[float, float] = (0.05, 0.95)) -> np.ndarray:
    """Tail ESS: the smaller ESS of the indicators of lying below the 5% and 95% quantiles."""
    return rank_summary(x, probs)[2]


def _tail_ess(x: np.ndarray, probs: tuple[float, float]) -> np.ndarray:
    flat = x.reshape(x.shape[:-2] + (-1,))
    out = []
    for prob in probs:
        q = np.quantile(flat, prob, axis=-1)
        out.append(_ess(split_chains((x <= q[..., None, None]).astype(float))))
    return np.minimum(*out)


def rank_summary(
    x: np.ndarray, tail_probs: tuple[float, float] = (0.05, 0.95)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every entry, sharing one rank normalisation.

    R-hat needs two chains and every value four draws; entries whose draws hold NaN give
    NaN, as in ArviZ.
    """
    x = np.asarray(x, dtype=float)
    if _too_short(x, min_chains=1):
        return _nan(x), _nan(x), _nan(x)
    bad = _invalid(x)
    x = np.where(bad[..., None, None], 0.0, x)
    split = split_chains(x)
    z = z_scale(split)
    r_hat = _rhat_of_split(split, z) if x.shape[-2] >= 2 else _nan(x)
    values = (r_hat, _ess(z), _tail_ess(x, tail_probs))
    return tuple(np.where(bad, np.nan, v) for v in values)
