"""Markdown tables written into benchmark results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_unsl.tables import markdown_table


def test_a_pipe_in_a_cell_does_not_split_it():
    frame = pd.DataFrame({"curve": ["IC|c_5|ViT/B/16"], "r_hat": [1.0123456], "n": [np.nan]})
    head, rule, row = markdown_table(frame).splitlines()
    assert rule == "|---|---|---|"
    # Unescaped pipes delimit exactly as many cells as the header has.
    assert row.replace("\\|", "").count("|") == head.count("|") == 4
    assert row == "| IC\\|c_5\\|ViT/B/16 | 1.012 |  |"
