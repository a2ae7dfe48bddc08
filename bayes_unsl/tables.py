"""Plain-text tables for summaries, reports and benchmark results."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["markdown_table"]


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-style Markdown table of a DataFrame (floats to ``digits`` significant).

    A ``|`` inside a cell (curve names such as ``IC|c_5|ViT/B/16``) is escaped, so that it
    does not split the cell.
    """

    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.{digits}g}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * frame.shape[1]
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([head, rule, *rows])
