"""Model specifications: which form, how many breaks, which likelihood, which priors.

A spec is plain data: it is stored as JSON in every saved result so that a fit can be
rebuilt and reproduced exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bayes_unsl.priors import BNSLPriors, priors_from_dict

__all__ = ["FORMS", "LIKELIHOODS", "ModelSpec"]

FORMS = ("bnsl",)
LIKELIHOODS = ("normal", "student_t")


@dataclass(frozen=True)
class ModelSpec:
    form: str = "bnsl"
    breaks: int = 1
    likelihood: str = "normal"
    priors: BNSLPriors = field(default_factory=BNSLPriors)

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"unknown form {self.form!r}; available: {list(FORMS)}")
        if not isinstance(self.breaks, int) or isinstance(self.breaks, bool) or self.breaks < 0:
            raise ValueError(f"breaks must be a non-negative integer, got {self.breaks!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"unknown likelihood {self.likelihood!r}; available: {list(LIKELIHOODS)}"
            )

    @property
    def n_params(self) -> int:
        """Free parameters: limit, scale, slope, noise and three per break."""
        return 4 + 3 * self.breaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "breaks": self.breaks,
            "likelihood": self.likelihood,
            "priors": self.priors.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            form=d["form"],
            breaks=int(d["breaks"]),
            likelihood=d["likelihood"],
            priors=priors_from_dict(d.get("priors")),
        )
