"""Figures built on a :class:`~bayes_unsl.fit.Fit` and its InferenceData."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bayes_unsl.fit import Fit

__all__ = ["fan_chart", "tick_label"]


def tick_label(value: float, _position: Any = None) -> str:
    """A log-axis label: plain digits from 0.001 to 99,999, powers of ten beyond.

    Long digit strings (200000, 5e+09) crowd a log axis with labels at 1, 2 and 5 per decade;
    ``5×10⁹`` stays short and reads as a scale.
    """
    if value <= 0 or not np.isfinite(value):
        return ""
    if 1e-3 <= value < 1e5:
        return f"{value:g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    power = rf"10^{{{int(exponent)}}}"
    return rf"${power}$" if mantissa == "1" else rf"${mantissa}\times {power}$"


def fan_chart(
    fit: Fit,
    ax: Any = None,
    *,
    extend: float = 10.0,
    levels: Sequence[float] = (0.5, 0.8, 0.95),
    heldout: Any = None,
    n_grid: int = 200,
    title: str | None = None,
):
    """Data, posterior median and predictive bands on log-log axes.

    ``extend``: how far past the largest observed input to draw (a factor). ``heldout``: an
    optional (x, y) pair of arrays drawn as held-out truth.
    """
    import matplotlib.pyplot as plt

    if len(fit.x_names) != 1:
        raise ValueError("fan_chart draws single-input fits")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    x_obs = fit.idata.constant_data["x"].values[:, 0]
    y_obs = fit.idata.constant_data["y"].values
    hi = x_obs.max() * extend
    if heldout is not None:
        hi = max(hi, float(np.max(heldout[0])) * 1.05)
    grid = np.geomspace(x_obs.min(), hi, n_grid)
    table = fit.predict(grid, levels=levels)
    for i, level in enumerate(sorted(levels, reverse=True)):
        pct = f"{100 * level:g}".replace(".", "_")
        ax.fill_between(
            grid,
            table[f"lower_{pct}"],
            table[f"upper_{pct}"],
            color="C0",
            alpha=0.15 + 0.12 * i,
            lw=0,
            label=f"{100 * level:g}% interval",
        )
    ax.plot(grid, table["median"], color="C0", lw=1.8, label="posterior median")
    ax.scatter(x_obs, y_obs, s=18, color="k", zorder=3, label="fitted data")
    if heldout is not None:
        ax.scatter(*heldout, s=28, marker="x", color="C3", zorder=4, label="held-out truth")
    ax.axvline(x_obs.max(), color="0.5", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        # Plain numbers at 1, 2 and 5 per decade read better than powers of ten when a
        # scaling curve spans a few decades; wider spans keep one label per decade.
        lo, hi = axis.get_view_interval()
        subs = (1.0, 2.0, 5.0) if hi / lo < 1e4 else (1.0,)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_major_formatter(FuncFormatter(tick_label))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(fit.x_names[0])
    ax.set_ylabel(fit.y_name)
    d = fit.diagnostics()
    status = "" if d["converged"] else "  [NOT CONVERGED]"
    ax.set_title(title or f"{fit.spec.form.upper()}, {fit.spec.breaks} break(s){status}")
    ax.legend(fontsize=8, frameon=False)
    return ax
