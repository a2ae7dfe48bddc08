"""Model specifications: which form, how many breaks, which likelihood, which priors.

``upper_bound`` states a hard limit of the metric (1 for an error rate or a normalised
loss that cannot exceed chance): observations above it are refused and predictive draws
are capped at it, so that a forecast never claims an impossible value.

A spec is plain data: it is stored as JSON in every saved result so that a fit can be
rebuilt and reproduced exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from bayes_unsl.priors import BNSLPriors, priors_from_dict

__all__ = ["LIKELIHOODS", "ModelSpec"]

LIKELIHOODS = ("normal", "student_t", "ou")

#: Prior settings added after results were first saved, with the value that reproduces a
#: result saved without them (the further break's slope was data-relative before
#: ``future_slope_sd`` existed). A string names the stored setting to copy: turns away from
#: the limit had the same sd as turns toward it before ``future_away_sd`` existed; fits with
#: several inputs predicted without further breaks before ``future_break_multi_input``.
STORED_BEFORE: dict[str, Any] = {
    "future_slope_sd": 0.0,
    "future_away_sd": "future_slope_sd",
    "future_break_multi_input": False,
}


@dataclass(frozen=True)
class ModelSpec:
    form: str = "bnsl"
    breaks: int = 1
    likelihood: str | None = None  # None: the form's default (FormModel.default_likelihood)
    priors: Any = field(default_factory=BNSLPriors)
    upper_bound: float | None = None

    def __post_init__(self) -> None:
        from bayes_unsl.models.registry import form_model

        form = form_model(self.form)
        if self.likelihood is None:
            object.__setattr__(self, "likelihood", form.default_likelihood)
        if not isinstance(self.priors, form.priors_type):
            raise TypeError(
                f"form {self.form!r} takes priors of type {form.priors_type.__name__}, "
                f"got {type(self.priors).__name__}"
            )
        form.n_params(self)  # raises for a number of breaks the form does not take
        if not isinstance(self.breaks, int) or isinstance(self.breaks, bool) or self.breaks < 0:
            raise ValueError(f"breaks must be a non-negative integer, got {self.breaks!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"unknown likelihood {self.likelihood!r}; available: {list(LIKELIHOODS)}"
            )
        if self.likelihood == "ou" and form.n_inputs != 1:
            raise ValueError(
                f"likelihood 'ou' correlates errors along one input; form {self.form!r} "
                "takes several: use 'normal' or 'student_t'"
            )
        if self.likelihood == "ou" and self.priors.noise_trend_sd > 0:
            raise ValueError(
                "likelihood 'ou' takes no noise trend: set noise_trend_sd=0 or use 'normal' "
                "or 'student_t'"
            )
        bound = self.upper_bound
        if bound is not None and (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not bound > 0
            or not math.isfinite(bound)
        ):
            raise ValueError(f"upper_bound must be a positive finite number, got {bound!r}")

    def check_bound(self, y: Any) -> None:
        """Refuse observations above ``upper_bound``: the metric was declared unable to."""
        if self.upper_bound is None:
            return
        above = np.flatnonzero(np.asarray(y, dtype=float) > self.upper_bound)
        if above.size:
            raise ValueError(
                f"{above.size} observation(s) exceed upper_bound={self.upper_bound:g} "
                f"(rows {above[:5].tolist()}{' ...' if above.size > 5 else ''}); "
                "check the metric or the bound"
            )

    def cap(self, draws: Any) -> Any:
        """Draws of the metric limited to ``upper_bound`` (unchanged without one)."""
        if self.upper_bound is None:
            return draws
        return np.minimum(draws, self.upper_bound)

    @property
    def n_params(self) -> int:
        """Number of free parameters of the model this spec describes."""
        from bayes_unsl.models.registry import form_model

        return form_model(self.form).n_params(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "breaks": self.breaks,
            "likelihood": self.likelihood,
            "priors": self.priors.to_dict(),
            "upper_bound": self.upper_bound,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        """The spec stored with a result; settings added since it was saved take the value
        that reproduces what it was saved with (:data:`STORED_BEFORE`), not today's default."""
        priors = d.get("priors")
        if priors is not None:
            from bayes_unsl.models.registry import form_model

            known = {f.name for f in fields(form_model(d["form"]).priors_type)}
            older = {k: v for k, v in STORED_BEFORE.items() if k in known and k not in priors}
            priors = {**priors, **older}
            for k, v in older.items():
                if isinstance(v, str):
                    priors[k] = priors[v]
        return cls.build(d["form"], int(d["breaks"]), d["likelihood"], priors, d.get("upper_bound"))

    @classmethod
    def build(
        cls,
        form: str,
        breaks: int = 1,
        likelihood: str | None = None,
        priors: Any = None,
        upper_bound: float | None = None,
    ) -> ModelSpec:
        """A spec whose priors may be given as a (partial) dict of the form's prior fields."""
        from bayes_unsl.models.registry import form_model

        priors_type = form_model(form).priors_type
        if priors is None or isinstance(priors, dict):
            priors = priors_from_dict(priors, priors_type)
        if upper_bound is not None and not isinstance(upper_bound, bool):
            try:
                upper_bound = float(upper_bound)
            except (TypeError, ValueError):
                pass  # refused with a clear message by __post_init__
        return cls(
            form=form, breaks=breaks, likelihood=likelihood, priors=priors, upper_bound=upper_bound
        )
