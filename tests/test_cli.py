"""The command line, run in-process so it shares the compiled programs of the other tests."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest

import bayes_unsl as bu
from bayes_unsl.cli import _parser, main
from tests.conftest import QUICK

QUICK_ARGS = [
    "--chains",
    str(QUICK["chains"]),
    "--warmup",
    str(QUICK["warmup"]),
    "--draws",
    str(QUICK["draws"]),
    "--seed",
    "1",
    "--retries",
    "0",
]


def test_demo_json_reports_heldout_scores(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--json", *QUICK_ARGS])
    payload = json.loads(capsys.readouterr().out)
    for key in ("rmsle_heldout", "coverage_90_heldout", "r_hat_max", "divergences", "seconds"):
        assert key in payload
    assert 0 <= payload["coverage_90_heldout"] <= 1
    assert payload["rmsle_heldout"] < 0.2
    assert code == (0 if payload["converged"] else 3)
    for name in ("fit.nc", "fan_chart.png", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0
    assert (
        "held out" in (tmp_path / "summary.md").read_text()
        or "truth" in (tmp_path / "summary.md").read_text()
    )


def test_fit_command_writes_outputs(tmp_path, capsys, addition):
    train, _ = addition
    csv = tmp_path / "curve.csv"
    train.to_csv(csv, index=False)
    out = tmp_path / "out"
    main(
        [
            "fit",
            str(csv),
            "--x",
            "train_dataset_size",
            "--y",
            "test_cross_entropy",
            "--predict-at",
            "800",
            "1600",
            "--out",
            str(out),
            "--json",
            *QUICK_ARGS,
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert [row["train_dataset_size"] for row in payload["predictions"]] == [800.0, 1600.0]
    saved = bu.load(out / "fit.nc")
    assert np.isclose(saved.diagnostics()["r_hat_max"], payload["r_hat_max"])
    assert "| train_dataset_size |" in (out / "summary.md").read_text()
    assert "- priors: the defaults of BNSLPriors" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("a,b\n", "has a header but no rows"),
        ('a,b\n1,"2\n', "not a well-formed CSV"),
    ],
)
def test_fit_command_refuses_bad_files(tmp_path, content, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    with pytest.raises(SystemExit, match=message):
        main(["fit", str(csv), "--x", "a", "--y", "b", "--out", str(tmp_path / "o")])


def test_fit_command_names_bad_columns(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("n,loss\n" + "\n".join(f"{10**i},{3 - 0.1 * i}" for i in range(1, 10)))
    with pytest.raises(SystemExit, match="unknown input column 'params'"):
        main(["fit", str(csv), "--x", "params", "--y", "loss", "--out", str(tmp_path / "o")])


def test_fit_by_group_reports_the_bad_group_and_fits_the_rest(addition, tmp_path, capsys):
    train, _ = addition
    table = pd.concat(
        [
            train.assign(task="full"),
            train.iloc[:11].assign(task="short"),
            train.iloc[:2].assign(task="lonely"),
        ]
    )
    path = tmp_path / "curves.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    argv = ["fit", str(path), "--x", "train_dataset_size", "--y", "test_cross_entropy"]
    code = main(
        [*argv, "--group", "task", "--out", str(out), "--predict-at", "800", "--json", *QUICK_ARGS]
    )
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["fitted"] == ["full", "short"]
    assert "lonely" in payload["errors"] and "group 'lonely' not fitted" in captured.err
    assert code == (0 if not payload["not_converged"] and not payload["errors"] else 3)
    diagnostics = pd.read_csv(out / "diagnostics.csv")
    assert list(diagnostics["task"]) == ["full", "short", "lonely"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions["task"]) == ["full", "short"]
    assert list(bu.load_many(out)) == ["full", "short"]
    with pytest.raises(SystemExit, match="group column 'nope' not found"):
        main([*argv, "--group", "nope", "--out", str(out), *QUICK_ARGS])


def test_fit_by_group_takes_batch_size_workers_and_precision(addition, tmp_path, capsys):
    train, _ = addition
    table = pd.concat([train.assign(task="full"), train.iloc[:11].assign(task="short")])
    path = tmp_path / "curves.csv"
    table.to_csv(path, index=False)
    argv = ["fit", str(path), "--x", "train_dataset_size", "--y", "test_cross_entropy"]
    out = tmp_path / "out"
    # The default batch would hold both curves (batch_size 2) and run in float64.
    batched = ["--batch-size", "1", "--workers", "1", "--precision", "float32"]
    main([*argv, "--group", "task", "--out", str(out), "--json", *batched, *QUICK_ARGS])
    capsys.readouterr()
    fits = bu.load_many(out)
    assert [f.diagnostics()["batch_size"] for f in fits.values()] == [1, 1]
    assert {f.attrs["precision"] for f in fits.values()} == {"float32"}
    with pytest.raises(SystemExit, match="--batch-size, --workers apply to several curves"):
        main([*argv, "--out", str(tmp_path / "one"), "--batch-size", "2", "--workers", "1"])
    with pytest.raises(SystemExit):
        main([*argv, "--group", "task", "--out", str(out), "--batch-size", "0"])
    assert "expected a positive integer" in capsys.readouterr().err


def test_breaks_takes_a_count_or_auto(tmp_path, capsys):
    csv = tmp_path / "c.csv"
    csv.write_text("n,loss\n" + "\n".join(f"{10**i},{3 - 0.1 * i}" for i in range(1, 10)))
    with pytest.raises(SystemExit):
        main(["fit", str(csv), "--x", "n", "--y", "loss", "--breaks", "two"])
    assert "not a number of breaks or 'auto': 'two'" in capsys.readouterr().err
    for given, parsed in (("auto", "auto"), ("2", 2)):
        argv = ["fit", str(csv), "--x", "n", "--y", "loss", "--out", "o", "--breaks", given]
        assert _parser().parse_args(argv).breaks == parsed


def test_the_break_rule_reaches_the_fit_with_auto_only():
    from bayes_unsl.cli import _options

    base = ["fit", "c.csv", "--x", "n", "--y", "loss", "--out", "o"]
    auto = _parser().parse_args([*base, "--breaks", "auto", "--break-rule", "converged-first"])
    assert _options(auto)["break_rule"] == "converged-first"
    assert _options(_parser().parse_args([*base, "--breaks", "auto"]))["break_rule"] == (
        "parsimonious"
    )
    assert "break_rule" not in _options(_parser().parse_args([*base, "--breaks", "1"]))


def test_device_reaches_the_fit_and_a_missing_one_is_refused(tmp_path):
    from bayes_unsl.cli import _options

    base = ["fit", "c.csv", "--x", "n", "--y", "loss", "--out", "o"]
    assert _options(_parser().parse_args([*base, "--device", "cpu"]))["device"] == "cpu"
    assert "device" not in _options(_parser().parse_args(base))
    with pytest.raises(SystemExit):
        _parser().parse_args([*base, "--device", "tpu"])
    if any(d.platform == "gpu" for d in jax.devices()):
        return
    csv = tmp_path / "c.csv"
    csv.write_text("n,loss\n" + "\n".join(f"{10**i},{3 - 0.1 * i}" for i in range(1, 10)))
    out = str(tmp_path / "o")
    with pytest.raises(SystemExit, match="no gpu device available"):
        main(["fit", str(csv), "--x", "n", "--y", "loss", "--out", out, "--device", "gpu"])


def test_cli_remedies_match_the_package():
    from bayes_unsl import cli
    from bayes_unsl.fit import DEFAULT_REMEDY, REMEDIES

    assert cli.REMEDIES == REMEDIES and cli.REMEDIES[0] == DEFAULT_REMEDY


def test_priors_reach_the_fit_and_its_summary(tmp_path, capsys, addition):
    train, _ = addition
    csv = tmp_path / "curve.csv"
    train.to_csv(csv, index=False)
    out = tmp_path / "out"
    base = ["fit", str(csv), "--x", "train_dataset_size", "--y", "test_cross_entropy"]
    main([*base, "--out", str(out), "--priors", '{"noise_trend_sd": 0.5}', *QUICK_ARGS])
    saved = bu.load(out / "fit.nc")
    assert saved.spec.priors.noise_trend_sd == 0.5
    assert "noise_slope" in saved.idata.posterior
    assert "BNSLPriors with noise_trend_sd=0.5" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit):
        main([*base, "--out", str(out), "--priors", "noise_trend_sd=0.5"])
    assert "not JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown prior setting"):
        main([*base, "--out", str(out), "--priors", '{"noise_tend_sd": 0.5}', *QUICK_ARGS])
