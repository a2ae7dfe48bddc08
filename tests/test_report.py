"""The HTML report: every section present, numbers equal to the Fit's, written atomically."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import re

import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.cli import main
from bayes_unsl.evaluation import loo_compare
from tests.conftest import QUICK, X, Y

report_module = importlib.import_module("bayes_unsl.report")

SECTIONS = ("data", "model", "diagnostics", "charts", "intervals", "thresholds", "reproduce")
THRESHOLD = 0.5
PNG = "data:image/png;base64,"


@pytest.fixture(scope="session")
def flat_fit(addition):
    train, _ = addition
    return bu.fit(train, X, Y, breaks=0, seed=1, warn=False, **QUICK)


@pytest.fixture(scope="module")
def one_report(quick_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "one.html"
    bu.report(quick_fit, path, thresholds=[THRESHOLD], command="python make_fit.py --seed 1")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def comparison_report(quick_fit, flat_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "compare.html"
    bu.report({"bnsl zero": flat_fit, "bnsl one": quick_fit}, path)
    return path.read_text(encoding="utf-8")


def marked(fit: bu.Fit, converged: bool) -> bu.Fit:
    """A copy of ``fit`` whose stored diagnostics pass or fail every convergence check."""
    idata = copy.deepcopy(fit.idata)
    diag = json.loads(idata.attrs["diagnostics"])
    if converged:
        diag |= {"r_hat_max": 1.001, "ess_bulk_min": 1500.0, "divergences": 0, "converged": True}
    else:
        diag |= {"r_hat_max": 1.2, "ess_bulk_min": 30.0, "divergences": 17, "converged": False}
    idata.attrs["diagnostics"] = json.dumps(diag)
    return bu.Fit(idata)


def section(text: str, anchor: str) -> str:
    """The HTML of one section of a report."""
    match = re.search(rf'<section id="{anchor}">.*?</section>', text, flags=re.S)
    assert match, f"no section {anchor!r}"
    return match.group(0)


def row(values) -> str:
    """A table row as the report writes numbers: four significant digits."""
    return "<tr>" + "".join(f"<td>{v:.4g}</td>" for v in values) + "</tr>"


def x_max(fit: bu.Fit) -> float:
    return float(fit.idata.constant_data["x"].values.max())


def test_a_report_of_one_fit_has_every_section(one_report, quick_fit):
    for anchor in SECTIONS:
        section(one_report, anchor)
    assert '<section id="comparison">' not in one_report
    assert f"bayes_unsl {bu.__version__}" in one_report
    assert "seed 1" in one_report and "python make_fit.py --seed 1" in one_report
    data = section(one_report, "data")
    for x, y in zip(
        quick_fit.idata.constant_data["x"].values[:, 0],
        quick_fit.idata.constant_data["y"].values,
        strict=True,
    ):
        assert f"<td>{x:.4g}</td><td>{y:.4g}</td>" in data
    model = section(one_report, "model")
    for field in quick_fit.spec.priors.to_dict():
        assert f"prior: {field}" in model
    for field in ("warmup", "draws", "target_accept", "max_tree_depth"):
        assert f"sampler: {field}" in model


def test_the_report_is_self_contained(one_report):
    assert one_report.count(PNG) >= 1
    payload = one_report.split(PNG, 1)[1].split('"', 1)[0]
    assert base64.b64decode(payload)[:8] == b"\x89PNG\r\n\x1a\n"
    for outside in ("<script", "<link", 'src="http', "href=", "url("):
        assert outside not in one_report


def test_intervals_are_those_of_predict_at_10x_and_100x(one_report, quick_fit):
    top = x_max(quick_fit)
    table = quick_fit.predict([10 * top, 100 * top], levels=(0.5, 0.8, 0.9, 0.95))
    intervals = section(one_report, "intervals")
    for pct in ("50", "80", "90", "95"):
        assert f"<th>lower_{pct}</th>" in intervals and f"<th>upper_{pct}</th>" in intervals
    for values in table.itertuples(index=False):
        assert row(values) in intervals


def test_explicit_scales_and_thresholds(quick_fit, tmp_path):
    path = bu.report(quick_fit, tmp_path / "r.html", scales=[900, 3000], thresholds=[0.3, 1.0])
    text = path.read_text(encoding="utf-8")
    intervals = section(text, "intervals")
    for values in quick_fit.predict([900, 3000]).itertuples(index=False):
        assert row(values) in intervals
    thresholds = section(text, "thresholds")
    for t in (0.3, 1.0):
        assert row([t, *quick_fit.prob_below(t, [900, 3000])]) in thresholds
        never = np.isnan(quick_fit.crossing_scale(t, upper=3000)).mean()
        assert f"<td>{never:.4g}</td></tr>" in thresholds
    assert "P(no crossing by 3000)" in thresholds


def test_threshold_section_gives_crossing_quantiles(one_report, quick_fit):
    thresholds = section(one_report, "thresholds")
    upper = 100 * x_max(quick_fit)
    draws = quick_fit.crossing_scale(THRESHOLD, upper=upper)
    beyond = np.where(np.isnan(draws), np.inf, draws)
    median = np.quantile(beyond, 0.5, method="inverted_cdf")
    shown = f"{median:.4g}" if np.isfinite(median) else f"&gt; {upper:.4g}"
    assert f"<td>{THRESHOLD:.4g}</td><td>{shown}</td>" in thresholds


def test_a_converged_fit_has_no_banner_and_an_unconverged_one_has(quick_fit, tmp_path):
    good = bu.report(marked(quick_fit, True), tmp_path / "good.html").read_text()
    assert 'id="banner"' not in good and "NOT CONVERGED" not in good
    bad = bu.report(marked(quick_fit, False), tmp_path / "bad.html").read_text()
    banner = bad.index('id="banner"')
    assert banner < bad.index('<section id="data">')
    assert "NOT CONVERGED" in bad[banner:] and "17 divergent transitions" in bad
    assert "target_accept" in bad[banner : bad.index("</div>", banner)]


def test_a_comparison_has_the_loo_table(comparison_report, quick_fit, flat_fit):
    loo = section(comparison_report, "comparison")
    assert "bnsl zero" in loo and "bnsl one" in loo
    for header in ("elpd_loo", "se", "stacking weight", "Pareto k &gt; 0.7"):
        assert f"<th>{header}</th>" in loo
    table = loo_compare({"bnsl zero": flat_fit, "bnsl one": quick_fit})
    for name in table.index:
        rank, elpd = table.loc[name, "rank"], table.loc[name, "elpd_loo"]
        assert f"<td>{name}</td><td>{rank}</td><td>{elpd:.4g}</td>" in loo
    assert comparison_report.count(PNG) == 2  # one fan chart per fit
    assert "bnsl zero" in section(comparison_report, "intervals")


def test_fits_of_different_data_are_not_compared(quick_fit, tmp_path):
    idata = copy.deepcopy(quick_fit.idata)
    idata.observed_data["log_y"] = idata.observed_data["log_y"] + 0.1
    idata.constant_data["y"] = idata.constant_data["y"] * np.exp(0.1)
    path = tmp_path / "r.html"
    with pytest.raises(ValueError, match="different observations"):
        bu.report({"a": quick_fit, "b": bu.Fit(idata)}, path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": [0.0]}, "thresholds must be positive"),
        ({"scales": [100.0, -5.0]}, "positive finite"),
        ({"scales": [[1.0, 2.0]]}, "rows of 1 input"),
    ],
)
def test_bad_requests_are_refused(quick_fit, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bu.report(quick_fit, tmp_path / "r.html", **kwargs)
    assert not (tmp_path / "r.html").exists()


def test_an_empty_comparison_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no fits"):
        bu.report({}, tmp_path / "r.html")


def test_the_file_is_replaced_only_on_success(quick_fit, tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    path.write_text("the previous report")

    def broken(*args, **kwargs):
        raise RuntimeError("failed while building")

    with monkeypatch.context() as m:
        m.setattr(report_module, "_reproduce_section", broken)
        with pytest.raises(RuntimeError, match="failed while building"):
            bu.report(quick_fit, path)
    assert path.read_text() == "the previous report"
    assert bu.report(quick_fit, path) == path
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary files left


def test_a_failed_move_leaves_no_temporary_file(quick_fit, tmp_path, monkeypatch):
    io_module = importlib.import_module("bayes_unsl.io")
    path = tmp_path / "report.html"
    path.write_text("the previous report")

    def no_move(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io_module.os, "replace", no_move)
    with pytest.raises(OSError, match="disk full"):
        bu.report(quick_fit, path)
    assert path.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_text_is_escaped(quick_fit, tmp_path):
    title = "<script>alert('x')</script> & more"
    text = bu.report(
        {"<b>bold</b>": quick_fit}, tmp_path / "r.html", title=title, command="a < b"
    ).read_text()
    assert "<script>" not in text and "<b>bold</b>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "a &lt; b" in text


def test_long_data_shows_its_ends_and_its_count(quick_fit):
    idata = copy.deepcopy(quick_fit.idata)
    n = 45
    x = np.geomspace(10, 1e5, n)
    idata.constant_data = idata.constant_data.drop_dims("point").assign(
        x=(("point", "input"), x[:, None]), y=(("point",), 3 * x**-0.1)
    )
    html = report_module._data_section({"long": bu.Fit(idata)})
    assert f"{n} rows in all" in html and f"{n} points" in html
    assert f"<td>{x[0]:.4g}</td>" in html and f"<td>{x[-1]:.4g}</td>" in html
    assert f"<td>{x[n // 2]:.4g}</td>" not in html


# -- command line --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(quick_fit, flat_fit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    paths = {
        "one": quick_fit.save(folder / "one.nc"),
        "zero": flat_fit.save(folder / "zero.nc"),
        "good": marked(quick_fit, True).save(folder / "good.nc"),
        "bad": marked(quick_fit, False).save(folder / "bad.nc"),
    }
    return {k: str(v) for k, v in paths.items()}


def test_cli_report_round_trip(saved, quick_fit, flat_fit, tmp_path, capsys):
    out = tmp_path / "report.html"
    argv = ["report", saved["one"], saved["zero"], "--names", "one", "zero"]
    argv += ["--out", str(out), "--scales", "1e3", "1e4", "--threshold", "0.5", "--title", "T"]
    code = main(argv)
    assert code == (0 if quick_fit.converged and flat_fit.converged else 3)
    text = out.read_text(encoding="utf-8")
    assert "<h1>T</h1>" in text
    assert "<td>one</td>" in section(text, "comparison")
    assert "<td>zero</td>" in section(text, "comparison")
    assert "bayes-unsl report " in section(text, "reproduce")
    assert "--threshold 0.5" in section(text, "reproduce")
    for values in quick_fit.predict([1e3, 1e4]).itertuples(index=False):
        assert row(values) in section(text, "intervals")
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_exit_code_follows_convergence(saved, tmp_path, capsys):
    good, bad = tmp_path / "good.html", tmp_path / "bad.html"
    assert main(["report", saved["good"], "--out", str(good)]) == 0
    assert 'id="banner"' not in good.read_text()
    assert main(["report", saved["good"], saved["bad"], "--out", str(bad)]) == 3
    assert 'id="banner"' in bad.read_text()
    assert "NOT CONVERGED: bad" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["missing.nc"], "no such file"),
        (["--names", "a", "b"], "--names gives 2 name"),
    ],
)
def test_cli_refuses_bad_input(saved, tmp_path, extra, message):
    argv = ["report", saved["good"], "--out", str(tmp_path / "r.html")]
    if extra[0].endswith(".nc"):
        argv.insert(2, str(tmp_path / extra[0]))
    else:
        argv += extra
    with pytest.raises(SystemExit, match=message):
        main(argv)
    assert not (tmp_path / "r.html").exists()


def test_cli_refuses_a_file_that_is_not_a_fit(tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(SystemExit, match="cannot read"):
        main(["report", str(junk), "--out", str(tmp_path / "r.html")])


def test_a_comparison_of_multi_input_fits_with_different_inputs(tmp_path):
    """CF on (N, D) against DC on (N, D, U): the same observations, other inputs."""
    rng = np.random.default_rng(4)
    n, d = (v.ravel() for v in np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 4)))
    unique = np.minimum(d, 3e9)  # repeated data at the larger token counts
    loss = (1.7 + 400 * n**-0.34 + 1e3 * d**-0.28) * np.exp(0.01 * rng.standard_normal(n.size))
    table = pd.DataFrame({"N": n, "D": d, "U": unique, "loss": loss})
    tiny = {"chains": 2, "warmup": 100, "draws": 100, "map_starts": 4, "retries": 0}
    cf = bu.fit(table, ["N", "D"], "loss", form="chinchilla", warn=False, **tiny)
    dc = bu.fit(table, ["N", "D", "U"], "loss", form="data_constrained", warn=False, **tiny)
    scales = {"N": [1e10, 7e10], "D": [2e11, 1.4e12], "U": [3e9, 3e9]}
    text = bu.report({"cf": cf, "dc": dc}, tmp_path / "r.html", scales=scales, thresholds=[2.0])
    text = text.read_text(encoding="utf-8")
    data = section(text, "data")
    assert "<th>N</th><th>D</th><th>U</th><th>loss</th>" in data
    assert PNG not in section(text, "charts")  # no fan chart of several inputs
    intervals = section(text, "intervals")
    for name, fit in {"cf": cf, "dc": dc}.items():
        expected = fit.predict(pd.DataFrame(scales)[list(fit.x_names)])
        first = intervals.split(f"<h3>{name}</h3>", 1)[1]
        assert row(expected.iloc[0][["median", "mean"]]).removesuffix("</tr>")[4:] in first
    thresholds = section(text, "thresholds")
    assert thresholds.count("P(below) at") == 4  # two scales for each fit
    loo = section(text, "comparison")
    assert "<td>cf</td>" in loo and "<td>dc</td>" in loo
    with pytest.raises(ValueError, match="scales lack input column"):
        bu.report({"cf": cf, "dc": dc}, tmp_path / "s.html", scales={"N": [1e10], "D": [2e11]})
