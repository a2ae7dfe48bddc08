"""``fit_many``: one scaling law per group of a table, sampled as one batched program.

Curves are padded to a common length (padding is masked out of the likelihood), stacked,
and NUTS runs vmapped over curves x chains, with the curve axis sharded across the local
devices. Each curve's result is an ordinary :class:`~bayes_unsl.fit.Fit`; a group that
cannot be fitted is reported, never dropped in silence, and the others go on.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayes_unsl._cache import enable_compilation_cache
from bayes_unsl._precision import platform_precision, precision_scope
from bayes_unsl.break_choice import (
    AUTO,
    DEFAULT_BREAK_RULE,
    DEFAULT_MAX_BREAKS,
    break_counts,
    check_break_rule,
    choose,
    forecast_input,
    forecast_record,
    forecast_split,
)
from bayes_unsl.data import as_columns, validate
from bayes_unsl.devices import choose_platform
from bayes_unsl.fit import (
    DEFAULT_LEVELS,
    Fit,
    _attrs,
    _inference_data,
    _model_for,
    load,
    parse_options,
    remedy,
    sampled_sites,
    with_run_info,
)
from bayes_unsl.inference.diagnostics import (
    ConvergenceWarning,
    convergence_problems,
    summarise_draws,
)
from bayes_unsl.inference.nuts import run_nuts_batch
from bayes_unsl.inference.transport import identity_map
from bayes_unsl.io import write_atomic
from bayes_unsl.models import form_model
from bayes_unsl.models.likelihood import masked
from bayes_unsl.priors import FURTHER_BREAK
from bayes_unsl.workers import run_tasks, usable_cores

__all__ = ["FitCollection", "fit_many", "load_many"]

INDEX = "collection.json"
SCHEMA = "bayes_unsl.collection/1"
# Below this many curves on a CPU, starting worker processes (imports, and loading the
# compiled programs) costs more than running the curves side by side saves.
WORKERS_MIN_CURVES = 8
# Each worker is a Python process with JAX loaded (about 0.6 GB): the default stops here.
WORKERS_MAX_DEFAULT = 16
# Curves per compiled batch on a CPU when the caller does not say.
CPU_BATCH_SIZE = 4


class FitCollection(Mapping):
    """Fits by group, the groups that failed and why, and tidy tables over all of them."""

    def __init__(self, fits: dict[Any, Fit], errors: dict[Any, str], group: str):
        self.fits = fits
        self.errors = errors
        self.group = group

    def __getitem__(self, key: Any) -> Fit:
        if key in self.errors:
            raise KeyError(f"group {key!r} was not fitted: {self.errors[key]}")
        return self.fits[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fits)

    def __len__(self) -> int:
        return len(self.fits)

    def predict(
        self, new_x: Any | Mapping[Any, Any], levels: Sequence[float] = DEFAULT_LEVELS
    ) -> pd.DataFrame:
        """Intervals for every group: one table with the group as its first column.

        ``new_x``: inputs for every group, or a mapping from group to that group's inputs.
        """
        per_group = isinstance(new_x, Mapping) and set(new_x) <= set(self.fits) and new_x
        tables = []
        for key, fit_ in self.fits.items():
            if per_group and key not in new_x:
                continue
            table = fit_.predict(new_x[key] if per_group else new_x, levels)
            table.insert(0, self.group, key)
            tables.append(table)
        return pd.concat(tables, ignore_index=True)

    def diagnostics(self) -> pd.DataFrame:
        """One row per group: breaks, convergence, sampler statistics, time; failures with
        error."""
        columns = (
            "converged",
            "r_hat_max",
            "ess_bulk_min",
            "ess_tail_min",
            "divergences",
            "tree_depth_mean",
            "gradient_evals_per_ess",
            "seconds",
        )
        rows = []
        for key, fit_ in self.fits.items():
            d = fit_.diagnostics()
            row = {self.group: key, "breaks": fit_.spec.breaks, **{c: d.get(c) for c in columns}}
            row["remedies"] = len(d.get("remedies", []))
            row["error"] = None
            rows.append(row)
        for key, message in self.errors.items():
            rows.append({self.group: key, "breaks": None, "converged": False, "error": message})
        table = pd.DataFrame(rows)
        table["breaks"] = table["breaks"].astype("Int64")
        return table

    @property
    def all_converged(self) -> bool:
        return not self.errors and all(f.converged for f in self.fits.values())

    def save(self, directory: str | os.PathLike) -> Path:
        """One netCDF file per group plus an index, each written atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for key, fit_ in self.fits.items():
            fit_.save(directory / _file_name(key))
        _write_index(directory, self.group, list(self.fits), self.errors)
        return directory

    def __repr__(self) -> str:
        converged = sum(f.converged for f in self.fits.values())
        return (
            f"<FitCollection by {self.group!r}: {len(self.fits)} fitted "
            f"({converged} converged), {len(self.errors)} failed>"
        )


def _file_name(key: Any) -> str:
    """A file name for a group: readable, and unique (a hash of the exact key)."""
    text = str(key)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60] or "group"
    digest = f"{_stable_hash(repr(key)):08x}"
    return f"{readable}-{digest}.nc"


def _stable_hash(text: str) -> int:
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def _write_index(directory: Path, group: str, keys: list, errors: dict) -> None:
    index = {
        "schema": SCHEMA,
        "group": group,
        "fits": [{"group": _jsonable(k), "file": _file_name(k)} for k in keys],
        "errors": [{"group": _jsonable(k), "error": v} for k, v in errors.items()],
    }
    text = json.dumps(index, indent=1)
    write_atomic(directory / INDEX, lambda tmp: Path(tmp).write_text(text))


def _jsonable(key: Any) -> Any:
    return key.item() if isinstance(key, np.generic) else key


def load_many(directory: str | os.PathLike) -> FitCollection:
    """Read a collection written by :meth:`FitCollection.save` or ``fit_many(out=...)``."""
    directory = Path(directory)
    path = directory / INDEX
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a saved fit collection")
    index = json.loads(path.read_text())
    if index.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {index.get('schema')!r}, expected {SCHEMA!r}")
    fits = {e["group"]: load(directory / e["file"]) for e in index["fits"]}
    errors = {e["group"]: e["error"] for e in index["errors"]}
    return FitCollection(fits, errors, index["group"])


def fit_many(
    data: Any,
    group: str,
    x: str | Sequence[str],
    y: str,
    *,
    form: str = "bnsl",
    breaks: int | str | None = None,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | None = None,
    shard: bool = True,
    workers: int | None = None,
    out: str | os.PathLike | None = None,
    **options: Any,
) -> FitCollection:
    """Fit one scaling law per value of ``group``, all curves in one batched NUTS program.

    Options are those of :func:`bayes_unsl.fit`. ``batch_size``: curves per compiled batch
    (default: 4 on a CPU, where that ran fastest; up to 4,096 on a GPU; lower it if memory
    runs out).
    ``device``: "cpu" or "gpu" (default: the GPU for 16 curves or more when there is one);
    the curve axis is sharded over all local devices of that kind (``shard=False``: one
    device; batches are rounded up to a multiple of the devices). ``workers``: on a CPU,
    worker processes that run batches side by side, one per core (default: every usable
    core, at most 16, when there are at least 8 curves to fit; 1: in this process only).
    Results do not depend on it. ``out``: a directory
    where each group's fit is saved as soon as its batch finishes; groups already saved
    there with the same inputs and settings are loaded instead of refitted, so an
    interrupted run (Ctrl-C) resumes where it stopped.

    A group that fails validation is reported in ``errors`` and the others are fitted.
    Groups that fail their convergence checks get the documented remedy (``retries``), as
    in :func:`bayes_unsl.fit`, and a single warning lists those still unconverged.

    ``breaks="auto"`` (with ``max_breaks``, default 2, and ``break_rule``): every group
    fitted with 0 to ``max_breaks`` breaks, one batched run per count (saved under
    ``out/breaks<k>``), and per group the choice of ``break_rule``, as in
    :func:`bayes_unsl.fit` (``"forecast"``: the refits to each group's smaller runs are one
    batched run per count too, saved under ``out/forecast``).
    """
    if breaks == AUTO:
        options = dict(options)
        warn_auto = options.pop("warn", True)
        shared = {"chains": chains, "warmup": warmup, "draws": draws, "seed": seed}
        shared.update(batch_size=batch_size, device=device, shard=shard, workers=workers)
        result = _fit_many_auto_breaks(data, group, x, y, form, shared, out, options)
        _warn(result, warn_auto)
        return result
    run = parse_options(form, breaks, chains, warmup, draws, options)
    spec, settings, precision, retries = run.spec, run.settings, run.precision, run.retries
    warn, progress = run.warn, run.progress
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
    ):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    frame = as_columns(data)
    if group not in frame.columns:
        raise ValueError(
            f"group column {group!r} not found; available columns: {list(frame.columns)}"
        )
    if frame[group].isna().any():
        raise ValueError(f"group column {group!r} has missing values")
    if frame.empty:
        raise ValueError("the table has no rows")

    form_ = form_model(spec.form)
    curves, errors = {}, {}
    for index, (key, rows) in enumerate(frame.groupby(group, sort=False)):
        try:
            dataset = validate(rows, x, y, min_points=spec.n_params)
            spec.check_bound(dataset.y)
            curves[key] = (index, dataset, form_.context(dataset, spec))
        except ValueError as err:
            errors[key] = f"invalid data: {err}"

    out_dir = Path(out) if out is not None else None
    fits: dict[Any, Fit] = {}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        fits.update(_resume(out_dir, curves, spec, settings, seed))

    platform = choose_platform(device, len(curves))
    precision = precision or platform_precision(platform)
    devices = jax.devices(platform) if shard else jax.devices(platform)[:1]
    enable_compilation_cache()
    todo = [k for k in curves if k not in fits]
    n_workers = _n_workers(workers, platform, spec, len(todo))
    attempt_settings, tubes = settings, None
    remedies: dict[Any, list] = {k: [] for k in todo}
    seconds = dict.fromkeys(todo, 0.0)
    try:
        for attempt in range(retries + 1):
            if not todo:
                break
            failed, failed_draws = [], {}
            batches = _fit_batches(
                todo,
                curves,
                spec,
                attempt_settings,
                seed,
                precision,
                platform,
                devices,
                batch_size,
                progress,
                n_workers,
                tubes,
            )
            for done in batches:
                for key, (run_, diag) in done.items():
                    seconds[key] += diag["seconds"]
                    problems = convergence_problems(diag)
                    if problems and attempt < retries:
                        failed.append(key)
                        failed_draws[key] = run_.unconstrained
                        remedies[key].append({"problems": problems, "then": None})
                        continue
                    run_.unconstrained = None  # only a remedy needs them
                    diag["remedies"] = remedies[key]
                    diag["seconds"] = seconds[key]  # every attempt, the remedies' included
                    _, dataset, context = curves[key]
                    attrs = {
                        **_attrs(
                            spec,
                            attempt_settings,
                            dataset,
                            context,
                            seed,
                            precision,
                            diag,
                            platform,
                        ),
                        "group": json.dumps(_jsonable(key), default=str),
                        "requested_settings": _settings_json(settings),
                    }
                    build = partial(_inference_data, run_, dataset, form_.dims)
                    fits[key] = Fit.deferred(attrs, run_.posterior, build)
                    if out_dir is not None:
                        fits[key].save(out_dir / _file_name(key))
                if out_dir is not None:
                    _write_index(out_dir, group, _ordered(curves, fits), errors)
            attempt_settings, tubes = _remedied(
                attempt_settings, failed, failed_draws, run.remedy, remedies
            )
            todo = failed
    except KeyboardInterrupt:
        if out_dir is not None:
            _write_index(out_dir, group, _ordered(curves, fits), errors)
            sys.stderr.write(
                f"\ninterrupted: {len(fits)} finished fits are saved in {out_dir}; "
                "run the same call again to resume\n"
            )
        raise

    result = FitCollection({k: fits[k] for k in _ordered(curves, fits)}, errors, group)
    _warn(result, warn)
    return result


def _fit_many_auto_breaks(
    data, group: str, x, y, form: str, shared: dict, out, options: dict[str, Any]
) -> FitCollection:
    """``fit_many(..., breaks="auto")``: a batched run per number of breaks, then the
    parsimonious PSIS-LOO choice per group."""
    options = dict(options)
    counts = break_counts(form, options.pop("max_breaks", DEFAULT_MAX_BREAKS))
    rule = check_break_rule(options.pop("break_rule", DEFAULT_BREAK_RULE))
    if rule == "forecast":
        forecast_input(x)  # refused before any fit

    def fit_counts(table, folder):
        return {
            k: fit_many(
                table,
                group,
                x,
                y,
                form=form,
                breaks=k,
                out=None if folder is None else Path(folder) / f"breaks{k}",
                warn=False,
                **shared,
                **options,
            )
            for k in counts
        }

    runs = fit_counts(data, out)
    forecasts = {}
    if rule == "forecast":
        forecasts = _forecasts(as_columns(data), group, x, y, counts, out, fit_counts)
    fits, errors = {}, {}
    for key in pd.unique(as_columns(data)[group]):
        found = {k: r.fits[key] for k, r in runs.items() if key in r.fits}
        skipped = {k: r.errors[key] for k, r in runs.items() if key in r.errors}
        if not found:
            errors[key] = skipped[counts[0]]
            continue
        try:
            fits[key] = choose(found, skipped, rule, forecasts.get(key))
        except (ValueError, FloatingPointError) as err:  # one group's LOO, not the batch
            errors[key] = f"choice of breaks failed: {err}"
    result = FitCollection(fits, errors, group)
    if out is not None:
        result.save(out)
    return result


def _forecasts(frame, group, x, y, counts, out, fit_counts) -> dict[Any, dict[str, Any]]:
    """``break_rule="forecast"`` per group: every count refitted to the group's smaller runs
    in one batched run per count (saved under ``out/forecast``), scored on its forecast of
    the group's largest runs."""
    before, after, notes = [], {}, {}
    for key, rows in frame.groupby(group, sort=False):
        try:
            part, held = forecast_split(rows.reset_index(drop=True), x)
        except ValueError as err:
            notes[key] = {"note": f"not split: {err}"}
            continue
        before.append(part)
        after[key] = held
    if not before:
        return notes
    runs = fit_counts(
        pd.concat(before, ignore_index=True), None if out is None else Path(out) / "forecast"
    )
    for key, held in after.items():
        found = {k: r.fits[key] for k, r in runs.items() if key in r.fits}
        why = [r.errors[key] for r in runs.values() if key in r.errors]
        fitted = int(sum(frame[group] == key)) - len(held)
        # A batched fit's seconds are its share of its run.
        notes[key] = forecast_record(found, held, x, y, fitted, why)
    return notes


def _remedied(settings, failed: list, draws: dict, kind: str, remedies: dict):
    """Settings for the next attempt and a tube map per failed group (None: no maps)."""
    tubes = {}
    new = settings
    for key in failed:
        new, tubes[key], note = remedy(settings, draws[key], kind)
        remedies[key][-1]["then"] = note
    fitted = [t for t in tubes.values() if t is not None]
    if not fitted:
        return new, None
    # Every group of a batch takes a map; one whose draws could not be fitted, the identity.
    identity = identity_map(int(np.shape(fitted[0].mean)[0]), fitted[0].mean.dtype)
    return new, {k: identity if t is None else t for k, t in tubes.items()}


def _ordered(curves: dict, fits: dict) -> list:
    return [k for k in curves if k in fits]


def _warn(result: FitCollection, warn: bool) -> None:
    bad = [k for k, f in result.fits.items() if not f.converged]
    if warn and bad:
        shown = ", ".join(map(repr, bad[:10])) + (" ..." if len(bad) > 10 else "")
        warnings.warn(
            f"{len(bad)} of {len(result.fits)} fits did not converge ({shown}); their "
            "intervals are not reliable. See .diagnostics(); try more warm-up, a higher "
            "target_accept, fewer breaks or a Student-t likelihood.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if warn and result.errors:
        warnings.warn(
            f"{len(result.errors)} group(s) could not be fitted: "
            + "; ".join(f"{k!r}: {v}" for k, v in list(result.errors.items())[:5]),
            UserWarning,
            stacklevel=3,
        )


def _n_workers(workers: int | None, platform: str, spec, n_curves: int) -> int:
    """Worker processes for a CPU run: as asked, else every usable core for a large job.

    Workers import only this package, so forms registered elsewhere run in this process.
    """
    built_in = form_model(spec.form).model.__module__.startswith("bayes_unsl.")
    if platform != "cpu" or not built_in:
        return 1
    if workers is not None:
        return workers
    if n_curves < WORKERS_MIN_CURVES:
        return 1
    return min(usable_cores(), WORKERS_MAX_DEFAULT)


def _resume(out_dir: Path, curves: dict, spec, settings, seed) -> dict:
    """Fits already saved in ``out_dir`` for these exact inputs, spec, settings and seed."""
    found = {}
    for key, (_, dataset, _) in curves.items():
        path = out_dir / _file_name(key)
        if not path.exists():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                saved = load(path)
            except ValueError:
                continue
        if saved.spec != spec and _differs_in_further_break_only(saved.spec, spec):
            # That prior acts at prediction time only: the posterior is the one asked for.
            saved = saved.with_future_break(*(getattr(spec.priors, k) for k in FURTHER_BREAK))
        same = (
            saved.spec == spec
            and saved.idata.attrs.get("requested_settings") == _settings_json(settings)
            and saved.seed == seed
            and np.array_equal(saved.idata.constant_data["x"].values, dataset.x)
            and np.array_equal(saved.idata.constant_data["y"].values, dataset.y)
        )
        if same:
            found[key] = saved
    return found


def _differs_in_further_break_only(saved, wanted) -> bool:
    """Whether two specs differ in the further-break prior alone (drawn when predicting)."""
    if type(saved.priors) is not type(wanted.priors) or not hasattr(
        wanted.priors, FURTHER_BREAK[0]
    ):
        return False
    moved = replace(saved.priors, **{k: getattr(wanted.priors, k) for k in FURTHER_BREAK})
    return replace(saved, priors=moved) == wanted


def _settings_json(settings) -> str:
    return json.dumps(asdict(settings), sort_keys=True)


def _fit_batches(
    keys,
    curves,
    spec,
    settings,
    seed,
    precision,
    platform,
    devices,
    batch_size,
    progress,
    workers: int = 1,
    tubes: dict | None = None,
) -> Iterator[dict]:
    """NUTS over ``keys`` in batches; yields {key: (InferenceData, diagnostics)} per batch.

    ``workers`` > 1 (CPU only): batches run in that many worker processes, side by side,
    and are yielded as they finish. ``tubes``: a tube map per key to sample in (a remedy).
    """
    # On a CPU a batch runs every iteration as long as its longest trajectory; batches of
    # 4 balance that waiting against the per-step cost of the loop and ran fastest, in
    # float64 and float32, ahead of 1, 8 and 16 (benchmarks/results/throughput.md).
    limit = batch_size or (4096 if platform == "gpu" else CPU_BATCH_SIZE)
    n_batches = math.ceil(len(keys) / limit)
    per_batch = math.ceil(len(keys) / n_batches)
    in_workers = workers > 1 and n_batches > 1
    if not in_workers:  # a sharded batch divides evenly over the devices
        per_batch = math.ceil(per_batch / len(devices)) * len(devices)
    # One padded length for every batch, so that a curve's draws do not depend on which
    # batch (or worker) it ran in.
    length = _bucket(max(curves[k][1].n_points for k in keys))
    chunks = [keys[start : start + per_batch] for start in range(0, len(keys), per_batch)]
    if in_workers:
        tasks = [
            (
                {k: curves[k] for k in chunk},
                chunk,
                spec,
                settings,
                seed,
                precision,
                length,
                None if tubes is None else {k: tubes[k] for k in chunk},
            )
            for chunk in chunks
        ]
        started, done = time.perf_counter(), 0
        for results in run_tasks(_fit_chunk_in_worker, tasks, workers):
            done += len(results)
            if progress:
                sys.stderr.write(
                    f"\r{done}/{len(keys)} curves fitted by {min(workers, len(tasks))} worker "
                    f"processes, {time.perf_counter() - started:.0f} s"
                    + ("\n" if done == len(keys) else "")
                )
                sys.stderr.flush()
            yield results
        return
    for chunk in chunks:
        yield _fit_chunk(
            chunk,
            curves,
            spec,
            settings,
            seed,
            precision,
            devices,
            per_batch,
            length,
            progress,
            tubes,
        )


def _fit_chunk_in_worker(curves, chunk, spec, settings, seed, precision, length, tubes) -> dict:
    """One batch in a worker process, on its one CPU device (see bayes_unsl.workers)."""
    enable_compilation_cache()
    devices = jax.devices("cpu")[:1]
    return _fit_chunk(
        chunk, curves, spec, settings, seed, precision, devices, len(chunk), length, False, tubes
    )


def _fit_chunk(
    chunk, curves, spec, settings, seed, precision, devices, per_batch, length, progress, tubes
) -> dict:
    model = _masked_model(spec)
    padded = chunk + [chunk[0]] * (per_batch - len(chunk))
    started = time.perf_counter()
    with jax.default_device(devices[0]), precision_scope(precision):
        args, rng_keys = _stack([curves[k] for k in padded], length, seed)
        tube = None
        if tubes is not None:
            tube = jax.tree_util.tree_map(lambda *v: np.stack(v), *[tubes[k] for k in padded])
        runs = run_nuts_batch(
            rng_keys, model, args, settings, devices=devices, progress=progress, tube=tube
        )
    sampled = time.perf_counter()
    runs = runs[: len(chunk)]
    diags = summarise_draws(
        {
            k: np.stack([r.posterior[k] for r in runs])
            for k in sampled_sites(spec, runs[0].posterior)
        },
        {k: np.stack([r.sample_stats[k] for r in runs]) for k in _CHECKED_STATS},
    )
    results = {}
    for key, run, diag in zip(chunk, runs, diags, strict=True):
        dataset = curves[key][1]
        results[key] = (_trim(run, dataset.n_points), with_run_info(diag, run, 0.0))
    finished = time.perf_counter()
    for _, diag in results.values():
        diag["batch_size"] = len(chunk)
        diag["seconds"] = (finished - started) / len(chunk)
        diag["seconds_postprocess"] = (finished - sampled) / len(chunk)
    return results


_CHECKED_STATS = ("diverging", "tree_depth", "n_steps")


def _bucket(n: int) -> int:
    """Pad lengths to a multiple of 4, so nearby lengths share a compiled program."""
    return 4 * math.ceil(n / 4)


@lru_cache(maxsize=32)
def _masked_model(spec):
    return masked(_model_for(spec))


def _stack(entries, length: int, seed: int):
    """Padded, stacked model arguments ``(z, context, mask, log_y)`` and one key per curve."""
    zs, masks, log_ys, contexts, indices = [], [], [], [], []
    for index, dataset, context in entries:
        n = dataset.n_points
        pad = length - n
        zs.append(np.concatenate([dataset.z, np.repeat(dataset.z[-1:], pad, axis=0)]))
        log_ys.append(np.concatenate([dataset.log_y, np.repeat(dataset.log_y[-1:], pad)]))
        masks.append(np.arange(length) < n)
        contexts.append(context)
        indices.append(index)
    context = jax.tree_util.tree_map(lambda *v: jnp.asarray(np.stack(v)), *contexts)
    args = (jnp.asarray(np.stack(zs)), context, jnp.asarray(np.stack(masks)))
    # One vmapped call: stacking thousands of separately made keys compiles a
    # concatenation of thousands of operands (seconds per batch size).
    fold = jax.vmap(jax.random.fold_in, in_axes=(None, 0))
    keys = fold(jax.random.PRNGKey(seed), jnp.asarray(indices, dtype=jnp.uint32))
    return (*args, jnp.asarray(np.stack(log_ys))), keys


def _trim(run, n: int):
    """Drop padded points from the per-point groups of a run."""
    run.log_likelihood = {k: v[..., :n] for k, v in run.log_likelihood.items()}
    run.posterior_predictive = {k: v[..., :n] for k, v in run.posterior_predictive.items()}
    if "log_y" in run.prior:
        run.prior = {**run.prior, "log_y": run.prior["log_y"][..., :n]}
    return run
