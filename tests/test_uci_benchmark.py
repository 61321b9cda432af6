"""The UCI benchmark harness (benchmarks/uci.py) end to end on two splits of yacht, kept tiny."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "uci.py"


@pytest.fixture(scope="module")
def uci():
    # benchmarks/ is not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("uci_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uci_benchmark_on_two_yacht_splits(uci, tmp_path):
    tiny = {"n_estimators": 3, "max_epochs": 5}
    summary = uci.main([
        "--datasets", "yacht", "--splits", "2", "--gp-max-rows", "60",
        "--rpf-params", json.dumps(tiny), "--rpf-variant", 'nll={"loss": "gaussian_nll"}',
        "--out", str(tmp_path), "--no-progress",
    ])

    raw = pd.read_csv(tmp_path / "results_raw.csv", keep_default_na=False)
    assert (raw["error"] == "").all(), raw.loc[raw["error"] != "", "error"].tolist()
    methods = list(uci.METHODS) + ["rpf:nll"]
    assert sorted(zip(raw["method"], raw["split"], strict=True)) == sorted(
        (m, s) for m in methods for s in (0, 1)
    )
    # The GP trains on the capped subset, every other method on the whole training split.
    assert (raw.loc[raw["method"] == "gp", "n_train"] == 60).all()
    assert (raw.loc[raw["method"] != "gp", "n_train"] > 60).all()

    table = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == len(methods) and (table["n_splits"] == 2).all()
    for frame in (raw, table):
        numbers = frame.select_dtypes("number")
        assert set(uci.METRICS) <= set(raw.columns)
        assert np.isfinite(numbers.to_numpy()).all()
    assert ((raw["coverage_95"] >= 0) & (raw["coverage_95"] <= 1)).all()
    assert (raw[["rmse", "crps", "width_95", "fit_time", "predict_time"]] > 0).all().all()
    pd.testing.assert_frame_equal(summary.reset_index(drop=True), table, check_dtype=False)

    markdown = (tmp_path / "results.md").read_text()
    for label in (*uci.METHODS.values(), "RPF (nll)", "Deep Ensembles", "MC dropout"):
        assert label in markdown
    assert "1.18" in markdown and "1.55" in markdown  # published yacht NLL next to ours
    assert "at most 60 training rows" in markdown and '"n_estimators": 3' in markdown
    png = (tmp_path / "nll.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_rpf_params_reach_both_rpf_methods_but_not_the_baseline_prior(uci):
    params = {"n_estimators": 4, "prior_scale": 3.0}
    rpf = uci.make_estimator("rpf", 7, 6, params, {})[-1]
    bootstrap = uci.make_estimator("bootstrap", 7, 6, params, {})[-1]
    variant = uci.make_estimator("rpf:wide", 7, 6, params, {"wide": {"prior_scale": 5.0}})[-1]
    assert (rpf.n_estimators, rpf.prior_scale, rpf.random_state) == (4, 3.0, 7)
    assert (bootstrap.n_estimators, bootstrap.prior_scale) == (4, 0.0)
    assert (variant.n_estimators, variant.prior_scale) == (4, 5.0)


def test_bad_options_fail_early_with_a_clear_message(uci, capsys):
    with pytest.raises(SystemExit):
        uci.parse_args(["--datasets", "boston"])
    assert "unknown data sets ['boston']" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not valid JSON"):
        uci.parse_args(["--rpf-params", "{loss: nll}"])
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        uci.main(["--datasets", "yacht", "--data-dir", "/nonexistent", "--no-progress"])
