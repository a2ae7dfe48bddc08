"""The convergence benchmark judges the issue's targets from its own rows, not by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def convergence():
    return load_benchmark("convergence")  # with its sibling modules (provenance, direct_bnsl)


def _row(form, group, r_hat, ess, grad, coverage_90=1.0, n_heldout=3, depth=6):
    return dict(
        curve=f"{group}-{form}-{r_hat}-{ess}",
        group=group,
        form=form,
        max_tree_depth=depth,
        n_heldout=n_heldout,
        converged=r_hat <= 1.01 and ess >= 400,
        r_hat_max=r_hat,
        ess_bulk_min=ess,
        grad_evals_per_ess=grad,
        coverage_90=coverage_90,
        width_90=0.1,
    )


def test_targets_are_met_only_when_the_rows_meet_them(convergence):
    good = [_row("bnsl", "double descent", 1.002, 900, 20) for _ in range(99)]
    good += [_row("bnsl", "cut", 1.005, 800, 30, coverage_90=0.9, n_heldout=10)]
    direct = [_row("bnsl_direct", "double descent", 1.2, 50, 200) for _ in range(100)]
    lines = "\n".join(convergence.targets(pd.DataFrame(good + direct)))
    assert "100% of 100 curves" in lines and lines.count("**met**") == 3

    # Two slow curves in a hundred drop the share below 99%; the direct form only twice
    # as costly; the cut curve's intervals cover half its points.
    slow = [_row("bnsl", "double descent", 1.03, 100, 20) for _ in range(2)]
    bad_cut = [_row("bnsl", "cut", 1.005, 800, 30, coverage_90=0.5, n_heldout=10)]
    cheap_direct = [_row("bnsl_direct", "double descent", 1.2, 50, 40) for _ in range(100)]
    lines = "\n".join(convergence.targets(pd.DataFrame(good[:97] + slow + bad_cut + cheap_direct)))
    assert "98% of 100 curves" in lines and "cover 50% of 10" in lines
    assert lines.count("**NOT met**") == 3 and "**met**" not in lines


def test_a_depth_above_six_never_meets_the_convergence_target(convergence):
    rows = [_row("bnsl", "double descent", 1.001, 2000, 10, depth=10) for _ in range(10)]
    lines = convergence.targets(pd.DataFrame(rows))
    assert "max tree depth 10: 100%" in lines[0] and "**NOT met**" in lines[0]


def test_the_chosen_fits_of_auto_are_judged_and_the_counts_tried_are_not(convergence):
    chosen = [_row("bnsl-auto", "double descent", 1.002, 900, 20) for _ in range(100)]
    tried = [_row("bnsl-k2", "double descent", 1.3, 10, 900) for _ in range(100)]
    lines = convergence.targets(pd.DataFrame(chosen + tried))
    assert lines[0].startswith("- bnsl-auto, max tree depth 6: 100% of 100 curves' chosen fits")
    assert "**met**" in lines[0] and not any("bnsl-k2" in line for line in lines)


def test_rescore_rewrites_the_tables_and_keeps_the_header(convergence, tmp_path):
    stem = tmp_path / "run"
    rest = dict(divergences=0, chain_separation=0.1, tree_depth_mean=3.0, coverage_50=0.5)
    rows = [{**_row("bnsl", "double descent", 1.002, 900, 20), **rest} for _ in range(3)]
    pd.DataFrame(rows).to_csv(stem.with_suffix(".csv"), index=False)
    header = "# Title\n\nCommand: `python benchmarks/convergence.py ...`; 12 s in all."
    stem.with_suffix(".md").write_text(header + "\n\n## Targets\n\n- stale\n")
    convergence.rescore(stem)
    text = stem.with_suffix(".md").read_text()
    assert text.startswith(header) and "- stale" not in text
    assert "rewritten from the CSV" in text and "100% of 3 curves" in text
