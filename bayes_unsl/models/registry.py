"""The forms the user surface can fit: each one a model builder plus what prediction needs.

A :class:`FormModel` ties together a form's priors, the data-derived constants its priors use
(the *context*, a pytree passed to the model as an argument), the NumPyro model, and the
pure curve function that prediction evaluates on posterior draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FormModel", "available_forms", "form_model", "register"]


@dataclass(frozen=True)
class FormModel:
    """One fittable form.

    - ``model(z, context, log_y=None, *, spec)``: z is the standardised log input, (n, m).
    - ``curve(params, u)``: log y of one posterior draw at ``u = log x - center``, (n, m).
    - ``curve_sites``: the posterior sites that ``curve`` reads.
    - ``sampled_sites``: the sites the sampler moves (where R-hat and ESS are judged).
    - ``default_likelihood``: the noise model when a spec names none ("normal" or
      "student_t"), chosen per form on the evidence of its benchmarks.
    """

    name: str
    n_inputs: int | None
    priors_type: type
    context: Callable[[Any, Any], Any]
    model: Callable[..., None]
    curve: Callable[[Mapping[str, Any], Any], Any]
    curve_sites: tuple[str, ...]
    sampled_sites: tuple[str, ...]
    n_params: Callable[[Any], int]
    dims: Mapping[str, list[str]] = field(default_factory=dict)
    default_likelihood: str = "normal"


_FORMS: dict[str, FormModel] = {}


def register(form: FormModel) -> FormModel:
    _FORMS[form.name] = form
    return form


def _load_builtin() -> None:
    # Importing the model modules registers their forms.
    import bayes_unsl.models.bnsl  # noqa: F401
    import bayes_unsl.models.chinchilla  # noqa: F401
    import bayes_unsl.models.m4  # noqa: F401
    import bayes_unsl.models.unsl  # noqa: F401


def available_forms() -> list[str]:
    _load_builtin()
    return sorted(_FORMS)


def form_model(name: str) -> FormModel:
    _load_builtin()
    if name not in _FORMS:
        raise ValueError(f"unknown form {name!r}; available: {sorted(_FORMS)}")
    return _FORMS[name]
