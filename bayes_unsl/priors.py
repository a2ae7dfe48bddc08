"""Priors as plain, serialisable data.

All scales refer to standardised coordinates: ``z = (log x - center) / half_range`` maps the
observed inputs onto [-1, 1], and slopes are in units of log y per unit of z. The data enter
only through that standardisation and through the spread of log y (``y_spread``), never
through held-out points.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BNSLPriors", "priors_from_dict"]


@dataclass(frozen=True)
class BNSLPriors:
    """Weakly informative priors for a BNSL with n breaks.

    - ``limit_fraction``: Beta(a, b) prior on a / min(y), the irreducible limit as a fraction
      of the smallest observed value (a >= 0 and a below every observation).
    - ``scale_sd``: sd (in log y units) of the Normal prior on log M at the centre of the
      data, around the mean of log y.
    - ``slope_sd``: sd of the initial slope, in units of ``y_spread`` (log y per unit of z).
    - ``break_slope_sd``: sd of each change of slope at a break, likewise.
    - ``slope_coupling``: slopes are sampled in log-y units at the lowest observation and
      divided by ``1 - slope_coupling * a / min(y)`` to give slopes of log M (a
      reparameterisation that removes a banana-shaped posterior; < 1 keeps the implied prior
      on log-M slopes light-tailed).
    - ``break_margin_decades``: break locations are uniform (ordered) over the observed range
      extended by this many decades past its largest value. A break beyond the data is not
      identified; the margin lets the posterior predictive widen there instead of hiding it.
    - ``sharpness_median`` and ``sharpness_sd``: LogNormal prior on f - ``sharpness_floor``,
      in z units; the floor keeps the geometry bounded as breaks turn sharp.
    - ``noise_median`` and ``noise_sd``: LogNormal prior on the noise scale of log y (a
      relative error). Its Gaussian tail keeps the noise from collapsing to zero on smooth
      curves, which would make the posterior needle-thin and NUTS unstable.
    - ``student_df``: degrees of freedom when the likelihood is Student-t.
    - ``y_spread_floor``: the least spread of log y used to scale the slope priors.
    """

    limit_fraction: tuple[float, float] = (1.0, 1.0)
    scale_sd: float = 2.0
    slope_sd: float = 2.0
    break_slope_sd: float = 4.0
    slope_coupling: float = 0.9
    break_margin_decades: float = 1.0
    sharpness_median: float = 0.2
    sharpness_sd: float = 1.0
    sharpness_floor: float = 0.01
    noise_median: float = 0.01
    noise_sd: float = 1.0
    student_df: float = 4.0
    y_spread_floor: float = 0.1

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                raise ValueError(f"prior setting {field.name!r} must be finite, got {value!r}")
            if field.name not in ("break_margin_decades", "slope_coupling") and any(
                v <= 0 for v in values
            ):
                raise ValueError(f"prior setting {field.name!r} must be > 0, got {value!r}")
        if self.break_margin_decades < 0:
            raise ValueError("break_margin_decades must be >= 0")
        if not 0 <= self.slope_coupling < 1:
            raise ValueError("slope_coupling must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def priors_from_dict(d: Mapping[str, Any] | None) -> BNSLPriors:
    """Build priors from a (possibly partial) mapping; unknown keys are an error."""
    if d is None:
        return BNSLPriors()
    known = {f.name for f in dataclasses.fields(BNSLPriors)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown prior setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return BNSLPriors(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
