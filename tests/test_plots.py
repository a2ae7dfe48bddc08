"""Figures: the fan chart's axes read as a reader expects."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bayes_unsl.plots import tick_label  # noqa: E402
from tests.conftest import X, Y  # noqa: E402


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0.5, "0.5"),
        (200.0, "200"),
        (50000.0, "50000"),
        (1e5, "$10^{5}$"),
        (2e5, r"$2\times 10^{5}$"),
        (5e9, r"$5\times 10^{9}$"),
        (1e-4, "$10^{-4}$"),
        (0.0, ""),
        (np.inf, ""),
    ],
)
def test_tick_labels_stay_short(value, label):
    assert tick_label(value) == label


def test_fan_chart_labels_axes_on_log_scales(quick_fit, addition):
    _, held = addition
    fig, ax = plt.subplots()
    quick_fit.plot(ax=ax, extend=100, heldout=(held[X], held[Y]))
    fig.canvas.draw()
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == X and ax.get_ylabel() == Y
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(len(text) <= 20 for text in labels)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"posterior median", "fitted data", "held-out truth"} <= set(legend)
    plt.close(fig)
