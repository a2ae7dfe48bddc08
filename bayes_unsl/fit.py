"""The user surface: ``fit`` a table, get a :class:`Fit`, ``predict`` with intervals.

A :class:`Fit` wraps one ArviZ ``InferenceData``; everything needed to rebuild it (inputs,
spec, priors, sampler settings, seed, versions) lives in that object's groups and attributes,
so ``Fit.save`` and :func:`load` round-trip exactly.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from numpyro.infer import Predictive

from bayes_unsl._cache import enable_compilation_cache
from bayes_unsl._precision import platform_precision, precision_scope
from bayes_unsl._versions import installed_versions
from bayes_unsl.break_choice import (
    AUTO,
    DEFAULT_BREAK_RULE,
    DEFAULT_MAX_BREAKS,
    break_counts,
    check_break_rule,
    choice_table,
    choose,
    forecast_input,
    forecast_record,
    forecast_split,
)
from bayes_unsl.data import (
    Dataset,
    LogScaling,
    TooFewPoints,
    as_columns,
    validate,
    validate_inputs,
)
from bayes_unsl.devices import chain_devices, choose_platform
from bayes_unsl.inference.diagnostics import (
    ConvergenceWarning,
    check_convergence,
    convergence_problems,
    summarise_convergence,
)
from bayes_unsl.inference.nuts import SamplerSettings, run_nuts
from bayes_unsl.inference.transport import TubeMap, fit_tube_map
from bayes_unsl.io import write_atomic
from bayes_unsl.models import ModelSpec, form_model
from bayes_unsl.models.likelihood import NOISE_TREND_SITE
from bayes_unsl.prediction import (
    FutureBreak,
    crossing_scales,
    draw_future_break,
    interval_table,
    log_curve_draws,
    predictive_draws,
)
from bayes_unsl.priors import FURTHER_BREAK

if TYPE_CHECKING:
    import arviz as az

__all__ = ["Fit", "fit", "load", "prior_predictive"]

SCHEMA = "bayes_unsl.fit/1"
DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95)


def _spec_from_options(form: str, breaks: int | None, options: dict[str, Any]) -> ModelSpec:
    if breaks is None:
        breaks = 1 if form in _FORMS_WITH_BREAKS else 0
    return ModelSpec.build(
        form,
        breaks,
        options.pop("likelihood", None),
        options.pop("priors", None),
        options.pop("upper_bound", None),
    )


def _settings_from_options(chains, warmup, draws, options: dict[str, Any]) -> SamplerSettings:
    names = {f.name for f in fields(SamplerSettings)}
    picked = {k: options.pop(k) for k in list(options) if k in names}
    return SamplerSettings(chains=chains, warmup=warmup, draws=draws, **picked)


@functools.lru_cache(maxsize=64)
def _model_for(spec: ModelSpec):
    return partial(form_model(spec.form).model, spec=spec)


_FORMS_WITH_BREAKS = ("bnsl", "unsl")
REMEDIES = ("map+longer", "map", "longer")
DEFAULT_REMEDY = "map+longer"
_DATA_DIMS = {
    "log_y": ["point"],
    "x": ["point", "input"],
    "y": ["point"],
    NOISE_TREND_SITE: ["input"],
}


def fit(
    data: Any,
    x: str | Sequence[str],
    y: str,
    *,
    form: str = "bnsl",
    breaks: int | str | None = None,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    **options: Any,
) -> Fit:
    """Fit a Bayesian scaling law to a table and return a :class:`Fit`.

    ``data``: a DataFrame or dict of arrays; ``x``: the input column (or list of columns);
    ``y``: the metric column. ``form``: one of :func:`bayes_unsl.models.available_forms`
    ("bnsl", "unsl", "chinchilla", "data_constrained", "m4"). ``breaks``: breaks per
    component (default 1 for the forms that have breaks, bnsl and unsl; 0 otherwise), or
    ``"auto"``: fit 0 to ``max_breaks`` (option, default 2) breaks and return the simplest
    fit that PSIS-LOO does not find clearly worse than the best, among all of them
    (``break_rule="parsimonious"``, the default) or among those that converged
    (``break_rule="converged-first"``), or the count that best forecast the largest-input
    30% of the points from the rest (``break_rule="forecast"``, one input, twice the fits);
    :mod:`bayes_unsl.break_choice` says what each rule measured, and
    :meth:`Fit.break_choice` shows the comparison. Counts the curve has too few points for
    are skipped.

    ``options``: ``likelihood`` ("normal", "student_t" or, for single-input forms, "ou":
    normal errors partly correlated along log x, for dense curves whose deviations from the
    form come in runs; default the form's: Student-t for "bnsl", which removed divergences
    on the benchmark curves, normal otherwise);
    ``priors`` (a dict of the form's prior fields, e.g. :class:`bayes_unsl.priors.BNSLPriors`);
    ``upper_bound`` (a value the metric cannot exceed, e.g. 1 for an error rate: observations
    above it are refused and predictive draws are capped at it); sampler settings
    (``target_accept``, ``max_tree_depth``, ``dense_mass``, ``map_starts``, ``init_jitter``,
    ``prior_draws``: > 0 adds prior and prior predictive groups); ``precision`` ("float64"
    or "float32"; default float64 on a CPU, float32 on a GPU); ``device`` ("cpu" or "gpu";
    default the CPU, where one curve samples many times faster than on a GPU: the chains
    are split over the CPU devices, see :func:`bayes_unsl.use_cpu_cores`); ``progress_bar``
    (default: shown when stderr is a terminal); ``retries`` (default 1: a fit that fails
    its convergence checks is run again) and ``remedy`` (how: ``"map+longer"``, the
    default, ``"map"`` or ``"longer"``; see :func:`remedy`; ``diagnostics()["remedies"]``
    records it); ``warn`` (False silences
    the convergence warning; the diagnostics are kept either way).
    """
    if breaks == AUTO:
        options = dict(options)
        warn_auto = options.pop("warn", True)
        sampler = {"chains": chains, "warmup": warmup, "draws": draws, "seed": seed}
        chosen = _fit_auto_breaks(data, x, y, form, sampler, options)
        check_convergence(chosen.diagnostics(), warn=warn_auto)
        return chosen
    run = parse_options(form, breaks, chains, warmup, draws, options)
    spec, settings, retries = run.spec, run.settings, run.retries
    warn, progress = run.warn, run.progress
    platform = choose_platform(run.device, 1)
    precision = run.precision or platform_precision(platform)
    form_ = form_model(spec.form)
    dataset = validate(data, x, y, min_points=spec.n_params)
    spec.check_bound(dataset.y)
    context = form_.context(dataset, spec)
    enable_compilation_cache()
    remedies = []
    seconds = 0.0
    tube = None
    while True:
        run_ = _sample(dataset, spec, context, settings, seed, precision, platform, progress, tube)
        idata, diag = _result(run_, dataset, spec, run_.info["seconds"])
        seconds += diag["seconds"]
        problems = convergence_problems(diag)
        if not problems or len(remedies) >= retries:
            break
        settings, tube, note = remedy(settings, run_.unconstrained, run.remedy)
        remedies.append({"problems": problems, "then": note})
    diag["remedies"] = remedies
    diag["seconds"] = seconds  # every attempt, the remedies' included
    idata.attrs.update(_attrs(spec, settings, dataset, context, seed, precision, diag, platform))
    result = Fit(idata)
    check_convergence(diag, warn=warn)
    return result


def _fit_auto_breaks(data, x, y, form: str, sampler: dict, options: dict[str, Any]) -> Fit:
    """``fit(..., breaks="auto")``: one fit per number of breaks, the rule's choice."""
    options = dict(options)
    counts = break_counts(form, options.pop("max_breaks", DEFAULT_MAX_BREAKS))
    rule = check_break_rule(options.pop("break_rule", DEFAULT_BREAK_RULE))
    if rule == "forecast":
        forecast_input(x)  # refused before any fit
    fits, skipped = _fit_counts(data, x, y, form, counts, sampler, options)
    forecast = None
    if rule == "forecast" and fits:
        forecast = _forecast(as_columns(data), x, y, form, counts, sampler, options)
    return choose(fits, skipped, rule, forecast)


def _fit_counts(data, x, y, form, counts, sampler, options) -> tuple[dict, dict]:
    """One fit per number of breaks; the counts the data are too few for, with why."""
    fits, skipped = {}, {}
    for k in counts:
        try:
            fits[k] = fit(data, x, y, form=form, breaks=k, warn=False, **sampler, **options)
        except TooFewPoints as err:
            skipped[k] = str(err)
    return fits, skipped


def _forecast(frame, x, y, form, counts, sampler, options) -> dict[str, Any]:
    """``break_rule="forecast"``: every count refitted to the smaller runs and scored on its
    forecast of the largest (:func:`bayes_unsl.break_choice.forecast_split`)."""
    try:
        before, after = forecast_split(frame, x)
    except ValueError as err:
        return {"note": f"not split: {err}"}
    fits, skipped = _fit_counts(before, x, y, form, counts, sampler, options)
    return forecast_record(fits, after, x, y, len(before), list(skipped.values()))


class RunOptions(NamedTuple):
    """What :func:`fit` and :func:`bayes_unsl.fit_many` take besides the data."""

    spec: ModelSpec
    settings: SamplerSettings
    precision: str | None
    retries: int
    warn: bool
    progress: bool
    device: str | None = None
    remedy: str = DEFAULT_REMEDY


def parse_options(form, breaks, chains, warmup, draws, options: dict[str, Any]) -> RunOptions:
    """Split keyword options into a model spec, sampler settings and run switches."""
    options = dict(options)
    for name in ("max_breaks", "break_rule"):
        if name in options:
            raise TypeError(f"{name} applies to breaks='auto' only")
    precision = options.pop("precision", None)
    warn = options.pop("warn", True)
    retries = options.pop("retries", 1)
    remedy_kind = options.pop("remedy", DEFAULT_REMEDY)
    if remedy_kind not in REMEDIES:
        raise ValueError(f"remedy must be one of {REMEDIES}, got {remedy_kind!r}")
    progress = options.pop("progress_bar", None)
    device = options.pop("device", None)
    if progress is None:
        progress = sys.stderr.isatty()
    spec = _spec_from_options(form, breaks, options)
    settings = _settings_from_options(chains, warmup, draws, options)
    if options:
        raise TypeError(f"unknown option(s) {sorted(options)}")
    return RunOptions(spec, settings, precision, retries, warn, progress, device, remedy_kind)


def remedy(
    settings: SamplerSettings, draws: np.ndarray | None = None, kind: str = DEFAULT_REMEDY
) -> tuple[SamplerSettings, TubeMap | None, str]:
    """The documented remedy for a hard posterior: new settings, a map to sample in, a note.

    ``"longer"``: smaller steps, a longer warm-up and twice the draws (an R-hat just above
    1.01 with a low ESS often only needs more draws). ``"map"``: the same settings, in the
    coordinates of a :class:`~bayes_unsl.inference.transport.TubeMap` fitted to the failed
    run's unconstrained ``draws`` (chain, draw, dim), which straightens the curved tube
    that short NUTS trajectories cannot follow. ``"map+longer"``: both.
    """
    new, tube, notes = settings, None, []
    if "longer" in kind:
        new = replace(
            settings,
            target_accept=max(settings.target_accept, 0.99),
            warmup=2 * settings.warmup,
            draws=2 * settings.draws,
        )
        notes.append(
            f"target_accept {new.target_accept}, warm-up {new.warmup} and {new.draws} draws"
        )
    if "map" in kind and draws is not None and np.all(np.isfinite(draws)):
        tube = fit_tube_map(np.reshape(draws, (-1, np.shape(draws)[-1])))
        notes.append("a map fitted to the failed run's draws, sampled in its coordinates")
    return new, tube, "refitted with " + "; ".join(notes) if notes else "refitted"


def _sample(dataset, spec, context, settings, seed, precision, platform, progress, tube=None):
    """One NUTS run of a curve (a :class:`PosteriorRun`; ``info["seconds"]``: its time)."""
    started = time.perf_counter()
    with jax.default_device(jax.devices(platform)[0]), precision_scope(precision):
        args = (jnp.asarray(dataset.z), context, jnp.asarray(dataset.log_y))
        run = run_nuts(
            jax.random.PRNGKey(seed),
            _model_for(spec),
            args,
            settings,
            devices=chain_devices(settings.chains, backend=platform),
            progress=progress,
            tube=tube,
        )
    run.info["seconds"] = time.perf_counter() - started
    return run


def _result(run, dataset: Dataset, spec: ModelSpec, seconds: float):
    """InferenceData and convergence diagnostics of one curve's NUTS run."""
    idata = _inference_data(run, dataset, form_model(spec.form).dims)
    diag = summarise_convergence(idata, sampled_sites(spec, run.posterior))
    return idata, with_run_info(diag, run, seconds)


def with_run_info(diag: dict, run, seconds: float) -> dict:
    """A convergence summary completed with the run's timing, MAP search and verdict."""
    diag["seconds"] = seconds
    diag.update(run.info)
    diag["converged"] = not convergence_problems(diag)
    return diag


def sampled_sites(spec: ModelSpec, posterior) -> list[str]:
    """The sampled parameters of a run, whose mixing the convergence checks judge."""
    return [v for v in form_model(spec.form).sampled_sites if v in posterior]


def _inference_data(run, dataset: Dataset, dims) -> az.InferenceData:
    """The run as an ``InferenceData``, laid out as ``az.from_dict`` would lay it out.

    Built from xarray directly: ``from_dict`` costs tens of milliseconds per curve, which
    dominated batched fits of thousands of curves.
    """
    import arviz as az  # imported on use: slow to import, and worker processes never need it

    dims = {**_DATA_DIMS, **dims}
    coords = {"point": np.arange(dataset.n_points), "input": list(dataset.x_names)}
    created = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "arviz_version": az.__version__,
    }

    def group(values: dict, leading: tuple[str, ...] = ("chain", "draw")) -> xr.Dataset:
        variables, used = {}, {}
        for name, array in values.items():
            array = np.asarray(array)
            extra = array.ndim - len(leading)
            names = list(dims.get(name, []))[:extra]
            names += [f"{name}_dim_{i}" for i in range(len(names), extra)]
            variables[name] = ((*leading, *names), array)
            for dim, size in zip((*leading, *names), array.shape, strict=True):
                used[dim] = coords.get(dim, np.arange(size))
        return xr.Dataset(variables, coords=used, attrs=dict(created))

    groups = {
        "posterior": group(run.posterior),
        "log_likelihood": group(run.log_likelihood),
        "posterior_predictive": group(run.posterior_predictive),
        "sample_stats": group(run.sample_stats),
        "observed_data": group({"log_y": dataset.log_y}, ()),
        "constant_data": group({"x": dataset.x, "y": dataset.y}, ()),
    }
    if run.prior:
        groups["prior"] = group({k: v for k, v in run.prior.items() if k != "log_y"})
        groups["prior_predictive"] = group({"log_y": run.prior["log_y"]})
    order = [
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "prior",
        "prior_predictive",
        "observed_data",
        "constant_data",
    ]
    return az.InferenceData(**{g: groups[g] for g in order if g in groups})


_ATTR_VERSIONS = ("bayes_unsl", "jax", "numpyro", "arviz")  # stored as "<name>_version"


def _attrs(spec, settings, dataset, context, seed, precision, diag, platform) -> dict[str, Any]:
    versions = installed_versions()
    return {
        "schema": SCHEMA,
        **{f"{name}_version": versions[name] for name in _ATTR_VERSIONS},
        "backend": platform,
        "precision": precision,
        "spec": spec.to_json(),
        "settings": json.dumps(asdict(settings), sort_keys=True),
        "seed": int(seed),
        "x_names": json.dumps(list(dataset.x_names)),
        "y_name": dataset.y_name,
        "scaling": json.dumps(dataset.scaling.to_dict()),
        "context": json.dumps(context.to_dict()),
        "diagnostics": json.dumps(diag, sort_keys=True, default=float),
    }


class Fit:
    """A fitted scaling law: an ``InferenceData`` plus the methods users ask of it."""

    def __init__(self, idata: az.InferenceData):
        self._idata, self._build, self._pending = idata, None, {}
        posterior = {
            k: v.transpose("chain", "draw", ...).values for k, v in idata.posterior.items()
        }
        self._read(idata.attrs, posterior)

    @classmethod
    def deferred(
        cls,
        attrs: dict[str, Any],
        posterior: dict[str, np.ndarray],
        build: Callable[[], az.InferenceData],
    ) -> Fit:
        """A fit whose ``InferenceData`` is built by ``build()`` when first asked for.

        Batched fits of thousands of curves return at once: diagnostics, predictions of the
        curve and metadata need only ``attrs`` and the ``(chain, draw, ...)`` posterior
        arrays, and the full ``InferenceData`` costs host time only for fits one opens.
        """
        fit_ = cls.__new__(cls)
        fit_._idata, fit_._build, fit_._pending = None, build, dict(attrs)
        fit_._read(attrs, posterior)
        return fit_

    def _read(self, attrs, posterior: dict[str, np.ndarray]) -> None:
        if attrs.get("schema") != SCHEMA:
            raise ValueError(
                f"not a bayes_unsl fit (schema {attrs.get('schema')!r}, expected {SCHEMA!r})"
            )
        self.spec = ModelSpec.from_dict(json.loads(attrs["spec"]))
        self.settings = SamplerSettings(**json.loads(attrs["settings"]))
        self.seed = int(attrs["seed"])
        self.x_names: tuple[str, ...] = tuple(json.loads(attrs["x_names"]))
        self.y_name: str = attrs["y_name"]
        self.scaling = LogScaling.from_dict(json.loads(attrs["scaling"]))
        self.form = form_model(self.spec.form)
        self._posterior = {
            k: _flatten_draws(v) for k, v in posterior.items() if k in self.form.curve_sites
        }

    @property
    def idata(self) -> az.InferenceData:
        """The fit as ArviZ ``InferenceData``: inputs, draws, statistics and metadata."""
        if self._idata is None:
            idata = self._build()
            idata.attrs.update(self._pending)
            self._idata, self._build, self._pending = idata, None, {}
        return self._idata

    @property
    def attrs(self) -> dict[str, Any]:
        """The metadata (spec, settings, seed, versions, diagnostics) as stored in a file."""
        return self._idata.attrs if self._idata is not None else self._pending

    # -- inputs -----------------------------------------------------------------------
    def _x_matrix(self, new_x: Any) -> np.ndarray:
        if isinstance(new_x, pd.DataFrame | dict):
            frame = as_columns(new_x)
            missing = [n for n in self.x_names if n not in frame.columns]
            if missing:
                raise ValueError(
                    f"prediction input lacks column(s) {missing}; the fit uses {list(self.x_names)}"
                )
            return validate_inputs(frame, self.x_names)
        arr = np.asarray(new_x, dtype=float)
        if arr.ndim == 0:
            arr = arr.reshape(1, 1)
        elif arr.ndim == 1:
            arr = arr[:, None] if len(self.x_names) == 1 else arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != len(self.x_names):
            raise ValueError(
                f"prediction input has {arr.shape[-1]} column(s) but the fit uses "
                f"{len(self.x_names)}: {list(self.x_names)}"
            )
        return validate_inputs(dict(zip(self.x_names, arr.T, strict=True)), self.x_names)

    def _u(self, x: np.ndarray) -> np.ndarray:
        return np.log(x) - np.asarray(self.scaling.center)

    # -- predictions --------------------------------------------------------------------
    def parameter_draws(self) -> dict[str, np.ndarray]:
        """Posterior draws of the curve parameters, chains stacked: {name: (draws, ...)}.

        The natural-unit parameters that the form's curve function takes, so that
        ``jax.vmap(fit.form.curve, (0, None))(fit.parameter_draws(), u)`` evaluates every
        draw's log curve at ``u = log x - fit.scaling.center``. Copies: changing them does
        not change the fit.
        """
        return {k: v.copy() for k, v in self._posterior.items()}

    def samples(self, new_x: Any) -> np.ndarray:
        """Posterior predictive draws of the metric (noise included): (draws, points).

        The draws are reproducible: the same fit and inputs give the same array.
        """
        x = self._x_matrix(new_x)
        rng = np.random.default_rng([self.seed, 20221027])
        with precision_scope("float64"):
            draws = predictive_draws(
                self.form.curve,
                self._posterior,
                self._u(x),
                likelihood=self.spec.likelihood,
                student_df=self.spec.priors.student_df,
                rng=rng,
                half_range=np.asarray(self.scaling.half_range, dtype=float),
                noise_floor=self.spec.priors.noise_floor,
                future=self._future_break(),
            )
        return self.spec.cap(draws)

    def curve_samples(self, new_x: Any) -> np.ndarray:
        """Posterior draws of the mean curve (no observation noise): (draws, points).

        What an optimum or an allocation is judged on: the expected metric at the inputs,
        as opposed to :meth:`samples`, which adds the noise of one more measurement.
        """
        x = self._x_matrix(new_x)
        with precision_scope("float64"):
            log_y = log_curve_draws(
                self.form.curve, self._posterior, self._u(x), future=self._future_break()
            )
        return self.spec.cap(np.exp(log_y))

    def _future_break(self) -> tuple[FutureBreak, ...]:
        """The breaks past the data, one per input past its largest observation, drawn from
        their prior (the same draws on every call)."""
        if self.spec.form not in _FORMS_WITH_BREAKS:
            return ()
        multi = getattr(self.spec.priors, "future_break_multi_input", False)
        if len(self.x_names) > 1 and not multi:
            return ()
        context = json.loads(self.attrs["context"])
        x_max = self.idata.constant_data["x"].values.max(axis=0)
        u_max = self._u(x_max[None, :])[0]
        half_range = np.ravel(context["half_range"])
        n_draws = len(self._posterior["sigma"])
        # One generator for all inputs, the first input's draws first: a single-input fit
        # draws what it always drew.
        rng = np.random.default_rng([self.seed, 20221028])
        breaks = []
        for column in range(len(self.x_names)):
            bend = draw_future_break(
                self.spec.priors,
                n_draws,
                half_range=float(half_range[column]),
                y_spread=float(context["y_spread"]),
                u_max=float(u_max[column]),
                rng=rng,
                column=column,
            )
            if bend is None:
                return ()
            breaks.append(bend)
        return tuple(breaks)

    def with_future_break(
        self,
        rate: float | None = None,
        slope_sd: float | None = None,
        away_sd: float | None = None,
    ) -> Fit:
        """The same posterior, predicting past the data under another further-break prior.

        The data say nothing about a break past their last point, so that break is drawn
        from its prior at prediction time, not sampled: its prior can be changed without
        refitting. Use it to show how much a forecast far past the data rests on that
        assumption. ``rate``: breaks per decade past the data (0: none); ``slope_sd`` and
        ``away_sd``: sd of its slope change toward the curve's limit and away from it, in
        log y per log x (0: the data-relative scale). Settings not given are kept. The copy
        records its priors, so a saved copy predicts the same.
        """
        if self.spec.form not in _FORMS_WITH_BREAKS:
            raise ValueError(f"form {self.spec.form!r} has no further break past the data")
        changes = {
            k: float(v)
            for k, v in zip(FURTHER_BREAK, (rate, slope_sd, away_sd), strict=True)
            if v is not None
        }
        spec = replace(self.spec, priors=replace(self.spec.priors, **changes))
        idata = copy.copy(self.idata)  # shares the arrays; only the attributes differ
        idata.attrs = {**self.idata.attrs, "spec": spec.to_json()}
        return Fit(idata)

    def predict(self, new_x: Any, levels: Sequence[float] = DEFAULT_LEVELS) -> pd.DataFrame:
        """Table of the inputs with ``median``, ``mean`` and ``lower_<pct>``/``upper_<pct>``."""
        x = self._x_matrix(new_x)
        table = interval_table(self.samples(x), levels)
        inputs = pd.DataFrame(x, columns=list(self.x_names))
        return pd.concat([inputs, table], axis=1)

    def prob_below(self, threshold: float, new_x: Any) -> np.ndarray:
        """Posterior predictive probability that the metric is below ``threshold``."""
        if not np.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"threshold must be a positive finite number, got {threshold!r}")
        return (self.samples(new_x) < threshold).mean(axis=0)

    def crossing_scale(
        self,
        threshold: float,
        *,
        upper: float | None = None,
        below: bool = True,
        grid: int = 512,
    ) -> np.ndarray:
        """Posterior of the smallest scale at which the mean curve crosses ``threshold``.

        Searched from the smallest observed x up to ``upper`` (default: 100 times the largest
        observed x). One value per draw; NaN where the curve does not cross by ``upper``, so
        ``np.isnan(result).mean()`` is the probability that it does not.
        """
        if len(self.x_names) != 1:
            raise ValueError("crossing_scale needs a single-input fit")
        if not np.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"threshold must be a positive finite number, got {threshold!r}")
        x_obs = self.idata.constant_data["x"].values[:, 0]
        hi = np.log(upper) if upper is not None else np.log(x_obs.max()) + np.log(100.0)
        lo = np.log(x_obs.min())
        if hi <= lo:
            raise ValueError("upper must exceed the smallest observed input")
        with precision_scope("float64"):
            return crossing_scales(
                self.form.curve,
                self._posterior,
                threshold,
                np.linspace(lo, hi, grid),
                self.scaling.center[0],
                below=below,
                future=self._future_break(),
            )

    # -- diagnostics and views ----------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        """R-hat, ESS, divergences, tree depth, timing and whether the fit converged."""
        return json.loads(self.attrs["diagnostics"])

    @property
    def converged(self) -> bool:
        return bool(self.diagnostics()["converged"])

    def break_choice(self) -> pd.DataFrame | None:
        """How ``breaks="auto"`` chose this fit: PSIS-LOO and convergence of every number
        of breaks tried, indexed by breaks (None for a fit whose breaks were given)."""
        return choice_table(self.attrs)

    def summary(self) -> pd.DataFrame:
        """ArviZ summary of the natural-unit curve parameters and the noise scale."""
        import arviz as az

        names = [v for v in self.form.curve_sites if v in self.idata.posterior]
        return az.summary(self.idata, var_names=names)

    def plot(self, ax=None, **kwargs):
        """Fan chart of the data, posterior median and predictive bands."""
        from bayes_unsl.plots import fan_chart

        return fan_chart(self, ax=ax, **kwargs)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the InferenceData to netCDF atomically."""
        return write_atomic(path, lambda tmp: self.idata.to_netcdf(str(tmp), engine="h5netcdf"))

    def __repr__(self) -> str:
        d = self.diagnostics()
        status = "converged" if d["converged"] else "NOT CONVERGED"
        return (
            f"<Fit {self.spec.form} breaks={self.spec.breaks} on {self.y_name} ~ "
            f"{', '.join(self.x_names)}: {status}, max R-hat {d['r_hat_max']:.3f}, "
            f"{d['divergences']} divergences>"
        )


def _flatten_draws(values: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (chain * draw, ...); safe for empty trailing dimensions."""
    values = np.asarray(values)
    return values.reshape((values.shape[0] * values.shape[1],) + values.shape[2:])


def load(path: str | os.PathLike) -> Fit:
    """Read a fit saved by :meth:`Fit.save`; refuses files of another schema."""
    import arviz as az

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        idata = az.from_netcdf(str(path), engine="h5netcdf")
    except Exception as err:  # noqa: BLE001 - any reader failure means the same thing
        raise ValueError(f"{path} is not a readable netCDF file: {err}") from err
    idata.attrs.update({k: v for k, v in idata.posterior.attrs.items() if k not in idata.attrs})
    fit_ = Fit(idata)
    if not fit_.converged:
        warnings.warn(
            f"{path} holds a fit that did not converge: {fit_.diagnostics()}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return fit_


def prior_predictive(
    data: Any,
    x: str,
    y: str,
    *,
    form: str = "bnsl",
    breaks: int | None = None,
    draws: int = 1000,
    seed: int = 0,
    new_x: Any = None,
    **options: Any,
) -> np.ndarray:
    """Draws of y from the prior predictive, at the observed inputs or at ``new_x``.

    The priors are scaled by the training table exactly as in :func:`fit`, so this is the
    check to run before fitting: do curves drawn from the prior look like plausible curves?
    """
    options = dict(options)
    spec = _spec_from_options(form, breaks, options)
    if options:
        raise TypeError(f"unknown option(s) {sorted(options)}")
    dataset = validate(data, x, y, min_points=spec.n_params)
    spec.check_bound(dataset.y)
    context = form_model(spec.form).context(dataset, spec)
    if new_x is None:
        z = dataset.z
    else:
        xs = validate_inputs(
            as_columns(new_x)
            if isinstance(new_x, dict | pd.DataFrame)
            else {dataset.x_names[0]: np.atleast_1d(new_x)},
            dataset.x_names,
        )
        z = dataset.scaling.standardise(np.log(xs))
    with precision_scope("float64"):
        out = Predictive(_model_for(spec), num_samples=draws)(
            jax.random.PRNGKey(seed), jnp.asarray(z), context
        )
    return spec.cap(np.exp(np.asarray(out["log_y"])))
