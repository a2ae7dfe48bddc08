"""Where the demo curve's posterior is hard for NUTS, and what a gradient costs on a CPU.

On the first 14 points of the 4-digit addition curve (BNSL, 1 break, seed 0, no refit):

1. Trajectory length with one parameter pinned at a time by a very narrow prior: the noise,
   the limit, the break sharpness; and with a longer warm-up. The pinned variants are
   probes of the geometry, not candidate defaults (a pinned parameter changes the fit).
2. Local curvature of the default posterior: the Hessian of the potential at posterior
   draws, in coordinates whitened by the posterior covariance. Its largest eigenvalue is
   how many times narrower than the global spread the posterior is, squared, somewhere
   near that draw; NUTS's step size has to fit the narrowest place.
3. Cost of one gradient on this machine: kernels in the compiled value-and-gradient of the
   potential, microseconds per call, and the sampler's own cost per leapfrog step on a
   trivial 7-dimensional model.

    python benchmarks/geometry.py        # writes benchmarks/results/geometry.{md,csv}
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import bayes_unsl as bu

bu.use_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import pandas as pd  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from numpyro.infer.util import unconstrain_fn  # noqa: E402
from provenance import git_commit, machine  # noqa: E402

from bayes_unsl.data import validate  # noqa: E402
from bayes_unsl.fit import _model_for, _spec_from_options  # noqa: E402
from bayes_unsl.inference.nuts import SamplerSettings, _structure, run_nuts  # noqa: E402
from bayes_unsl.models import form_model  # noqa: E402
from bayes_unsl.tables import markdown_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
X, Y = "train_dataset_size", "test_cross_entropy"
VARIANTS = {
    "default priors": {},
    "noise pinned (noise_median 0.001, noise_sd 0.01)": {
        "priors": {"noise_median": 0.001, "noise_sd": 0.01}
    },
    "limit pinned (limit_fraction Beta(430, 570))": {"priors": {"limit_fraction": (430.0, 570.0)}},
    "sharpness pinned (sharpness_sd 0.01)": {"priors": {"sharpness_sd": 0.01}},
    "default priors, warm-up 3000": {"warmup": 3000},
}


def trajectory_rows(train: pd.DataFrame) -> tuple[list[dict], bu.Fit]:
    rows, default = [], None
    for name, options in VARIANTS.items():
        fit = bu.fit(train, X, Y, breaks=1, seed=0, retries=0, warn=False, **options)
        stats, diag = fit.idata.sample_stats, fit.diagnostics()
        steps = stats.step_size.values[:, 0]
        rows.append(
            {
                "variant": name,
                "leapfrog_steps_per_iteration": round(float(stats.n_steps.mean()), 1),
                "step_size_min": round(float(steps.min()), 3),
                "step_size_max": round(float(steps.max()), 3),
                "r_hat_max": round(diag["r_hat_max"], 4),
                "ess_bulk_min": round(diag["ess_bulk_min"]),
                "divergences": diag["divergences"],
                "seconds_sampling": round(diag["seconds_sampling"], 1),
                "chain_devices": diag["chain_devices"],
            }
        )
        if default is None:
            default = fit
    return rows, default


def curvature(fit: bu.Fit, train: pd.DataFrame, every: int = 10) -> dict:
    """Largest eigenvalue of the whitened Hessian at every ``every``-th posterior draw."""
    dataset = validate(train, X, Y)
    context = form_model(fit.spec.form).context(dataset, fit.spec)
    args = (jnp.asarray(dataset.z), context, jnp.asarray(dataset.log_y))
    model = _model_for(fit.spec)
    potential_gen, _, unravel, _ = _structure(model, args)
    potential = potential_gen(*args)
    sampled = form_model(fit.spec.form).sampled_sites
    post = fit.idata.posterior
    draws = {k: post[k].values.reshape((-1, *post[k].shape[2:])) for k in sampled if k in post}

    def flat(i: int) -> np.ndarray:
        values = {k: jnp.asarray(v[i]) for k, v in draws.items()}
        return np.asarray(ravel_pytree(unconstrain_fn(model, args, {}, values))[0])

    n = next(iter(draws.values())).shape[0]
    z = np.stack([flat(i) for i in range(0, n, every)])
    names = _flat_names(model, args, draws)
    cov = np.cov(z.T)
    chol = np.linalg.cholesky(cov)
    hessian = jax.jit(jax.hessian(lambda v: potential(unravel(v))))
    largest, directions = [], []
    for point in z:
        values, vectors = np.linalg.eigh(chol.T @ np.asarray(hessian(jnp.asarray(point))) @ chol)
        largest.append(values[-1])
        direction = (chol @ vectors[:, -1]) / np.sqrt(np.diag(cov))
        directions.append(np.abs(direction) / np.linalg.norm(direction))
    largest = np.asarray(largest)
    stiffest = np.asarray(directions)[np.argsort(largest)[-20:]].mean(axis=0)
    log_sigma = z[:, names.index("log_sigma")]
    return {
        "draws": len(z),
        "percentiles": dict(
            zip((5, 25, 50, 75, 95), np.percentile(largest, [5, 25, 50, 75, 95]), strict=True)
        ),
        "stiffest_direction": dict(zip(names, stiffest, strict=True)),
        "corr_with_log_sigma": float(np.corrcoef(largest, log_sigma)[0, 1]),
    }


def _flat_names(model, args, draws: dict) -> list[str]:
    """The name of every coordinate of the flat unconstrained vector."""
    one = unconstrain_fn(model, args, {}, {k: jnp.asarray(v[0]) for k, v in draws.items()})
    names = []
    for name in sorted(one):  # ravel_pytree flattens dicts in sorted key order
        size = int(np.size(one[name]))
        names += [name] if size == 1 else [f"{name}[{i}]" for i in range(size)]
    return names


def gradient_cost(train: pd.DataFrame, calls: int = 2000) -> dict:
    spec = _spec_from_options("bnsl", 1, {})
    dataset = validate(train, X, Y)
    context = form_model("bnsl").context(dataset, spec)
    args = (jnp.asarray(dataset.z), context, jnp.asarray(dataset.log_y))
    potential_gen, _, unravel, dim = _structure(_model_for(spec), args)
    value_and_grad = jax.jit(jax.value_and_grad(lambda v: potential_gen(*args)(unravel(v))))
    text = value_and_grad.lower(jnp.zeros(dim)).compile().as_text()
    entry = text[text.index("ENTRY") :]
    kernels = sum(" fusion(" in line or "wrapped_" in line for line in entry.splitlines()[1:])
    point = jnp.zeros(dim)
    jax.block_until_ready(value_and_grad(point))
    started = time.perf_counter()
    for _ in range(calls):
        out = value_and_grad(point)
    jax.block_until_ready(out)
    return {
        "dimension": dim,
        "kernels": kernels,
        "us_per_call": 1e6 * (time.perf_counter() - started) / calls,
        "trivial_us_per_leapfrog": _trivial_step_cost(),
    }


def _trivial_step_cost() -> float:
    """Microseconds per leapfrog step of the package's NUTS on a 7-dimensional toy model."""

    def model(z, context, log_y=None):
        w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([7]))
        numpyro.sample("log_y", dist.Normal(jnp.sum(w) * z[:, 0], 1.0), obs=log_y)

    z = jnp.linspace(-1.0, 1.0, 14)[:, None]
    settings = SamplerSettings(chains=2, warmup=500, draws=500, map_starts=4)
    args = (z, None, jnp.sin(z[:, 0]))
    run_nuts(jax.random.PRNGKey(0), model, args, settings)  # compiles
    run = run_nuts(jax.random.PRNGKey(0), model, args, settings)
    steps = float(run.sample_stats["n_steps"].mean())
    total = settings.warmup + settings.draws
    return 1e6 * run.info["seconds_sampling"] / (total * steps)


def main() -> None:
    warnings.simplefilter("ignore")
    jax.config.update("jax_enable_x64", True)  # float64 throughout, as a CPU fit runs
    train = bu.datasets.load("four_digit_addition").iloc[:14]
    started = time.perf_counter()
    rows, default = trajectory_rows(train)
    curve = curvature(default, train)
    cost = gradient_cost(train)
    frame = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    frame.to_csv(RESULTS / "geometry.csv", index=False)
    pct = curve["percentiles"]
    weights = ", ".join(f"{k} {v:.2f}" for k, v in curve["stiffest_direction"].items())
    lines = [
        "# Posterior geometry of the demo curve, and the cost of a gradient",
        "",
        "Command: `python benchmarks/geometry.py`. "
        f"Machine: {machine()}; jax {jax.__version__}, numpyro {numpyro.__version__}; "
        f"commit {git_commit()}; {time.perf_counter() - started:.0f} s in all.",
        "",
        "Data: the first 14 points of the 4-digit addition curve; BNSL with 1 break, "
        "4 chains x (1000 + 1000) unless stated, seed 0, no refit, chains split over the "
        "CPU devices. Pinned variants narrow one prior to probe the geometry; they are not "
        "proposed defaults.",
        "",
        "## Trajectory length",
        "",
        markdown_table(frame),
        "",
        "## Local curvature of the default posterior",
        "",
        f"Largest eigenvalue of the whitened Hessian of the potential at {curve['draws']} "
        "posterior draws (1 for a Gaussian): percentiles "
        + ", ".join(f"{p}%: {v:.0f}" for p, v in pct.items())
        + ". The posterior is locally about "
        f"{np.sqrt(pct[50]):.0f} times narrower than its global spread in that direction "
        f"(median), which is what sets the step size. Correlation of that eigenvalue with "
        f"log_sigma: {curve['corr_with_log_sigma']:.2f}.",
        "",
        f"Stiffest direction (mean absolute weight per unconstrained coordinate, in marginal "
        f"sd units, at the 20 stiffest draws): {weights}.",
        "",
        "## Cost of a gradient on this machine",
        "",
        f"The compiled value and gradient of the potential (dimension {cost['dimension']}) "
        f"runs {cost['kernels']} kernels and takes {cost['us_per_call']:.0f} µs per call "
        "from Python (float64). The sampler's own cost, on a trivial 7-dimensional model "
        f"(2 chains on one device): {cost['trivial_us_per_leapfrog']:.0f} µs per leapfrog "
        "step.",
        "",
    ]
    (RESULTS / "geometry.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
