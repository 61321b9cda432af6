"""The UCI benchmark harness (``python -m benchmarks.uci``) end to end on two splits of yacht, kept
tiny; its README block, its intervals, NGBoost through the peers' environment, and the tuning
script's splits and configurations."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks import _intervals, _readme, peers, tune_defaults, uci
from benchmarks._uci_data import default_data_dir, inner_split, load_split, split_indices

TINY = {"n_estimators": 3, "max_epochs": 5}
README = """# Project

Prose above, kept as it is.

<!-- uci:start -->
an old, hand-edited table
<!-- uci:end -->

Prose below, kept too.
"""


def test_uci_benchmark_on_two_yacht_splits(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    figure = tmp_path / "docs" / "images" / "uci_nll.png"
    argv = [
        "--datasets", "yacht", "--splits", "2", "--gp-max-rows", "60",
        "--methods", "rpf", "bootstrap", "gp", "bayesian_ridge", "mapie", "--mapie-resamplings", "2",
        "--rpf-params", json.dumps(TINY), "--rpf-variant", 'nll={"loss": "gaussian_nll"}',
        "--out", str(tmp_path / "out"), "--figure", str(figure), "--readme", str(readme),
        "--no-progress",
    ]
    summary = uci.main(argv)
    out = tmp_path / "out"

    raw = pd.read_csv(out / "results_raw.csv", keep_default_na=False)
    assert (raw["error"] == "").all(), raw.loc[raw["error"] != "", "error"].tolist()
    methods = ["rpf", "bootstrap", "gp", "bayesian_ridge", "rpf:nll"]
    assert sorted(zip(raw["method"], raw["split"], strict=True)) == sorted(
        (m, s) for m in methods for s in (0, 1)
    )
    # The GP trains on the capped subset, every other method on the whole training split.
    assert (raw.loc[raw["method"] == "gp", "n_train"] == 60).all()
    assert (raw.loc[raw["method"] != "gp", "n_train"] > 60).all()

    table = pd.read_csv(out / "results.csv")
    assert len(table) == len(methods) and (table["n_splits"] == 2).all()
    expected = {"raw": set(uci.METRICS),
                "table": {f"{m}_{stat}" for m in uci.METRICS for stat in ("mean", "se")}}
    for name, frame in (("raw", raw), ("table", table)):
        assert expected[name] <= set(frame.columns), name
        assert np.isfinite(frame.select_dtypes("number").to_numpy()).all(), name
    assert ((raw["coverage_95"] >= 0) & (raw["coverage_95"] <= 1)).all()
    assert (raw[["rmse", "crps", "width_95", "fit_time", "predict_time"]] > 0).all().all()
    pd.testing.assert_frame_equal(summary.reset_index(drop=True), table, check_dtype=False)

    # Intervals: Gaussian from the rpf fits, MAPIE's J+aB, the conformal one where it exists.
    intervals = pd.read_csv(out / "intervals_raw.csv")
    intervals["error"] = intervals["error"].astype(object).fillna("")
    done = intervals[intervals["error"] == ""]
    assert {"gaussian", "mapie_jab"} <= set(done["interval"])
    assert ((done["coverage"] >= 0) & (done["coverage"] <= 1)).all()
    assert (done[["width", "fit_time", "predict_time"]].astype(float) > 0).all().all()
    conformal = intervals[intervals["interval"] == "conformal"]
    assert len(conformal) == 2 and (conformal["error"] == "").all()

    markdown = (out / "results.md").read_text()
    for label in ("RPF (defaults)", "Bootstrap ensemble", "GP (ARD)", "BayesianRidge", "RPF (nll)",
                  "MAPIE J+aB around RPF", "Deep Ensembles", "MC dropout"):
        assert label in markdown
    assert "1.18" in markdown and "1.55" in markdown  # published yacht NLL next to ours
    assert "at most 60 training rows" in markdown and '"n_estimators": 3' in markdown
    assert "resampling=2" in markdown
    # What the prior costs in distribution: RPF minus the bootstrap ensemble, paired by split.
    rpf, boot = (raw[raw["method"] == m].set_index("split")["nll"] for m in ("rpf", "bootstrap"))
    paired = rpf - boot
    assert (f"yacht {paired.mean():+.3f} ± {paired.std(ddof=1) / np.sqrt(2):.3f} (RPF better on "
            f"{(paired < 0).sum()} of 2)") in markdown
    png = figure.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000

    # The README block: the run's own output, per-split NLL included, prose untouched.
    text = readme.read_text()
    assert text.startswith("# Project\n\nProse above, kept as it is.\n\n<!-- uci:start -->\n")
    assert text.endswith("<!-- uci:end -->\n\nProse below, kept too.\n")
    assert "hand-edited" not in text
    assert "python -m benchmarks.uci --datasets yacht" in text
    assert "](docs/images/uci_nll.png)" in text
    assert "<details><summary>Test NLL on each split</summary>" in text
    nll = raw[(raw["method"] == "rpf") & (raw["split"] == 1)]["nll"].item()
    assert f"| {nll:.2f} |" in text

    # Resuming an interrupted run reuses every finished result.
    again = uci.main([*argv, "--resume"])
    pd.testing.assert_frame_equal(again, summary)
    assert "12 of 12 results reused" in (out / "results.md").read_text()
    assert "; 12 of 12 results reused from an earlier run)." in readme.read_text()
    assert "results reused" not in text  # the first run's block: nothing was
    # A result fitted under other settings (an older default, say) for the same data set, split
    # and method is not this run's: a resumed run neither reuses nor reports it.
    runs = out / "runs.jsonl"
    stale = next(json.loads(line) for line in runs.read_text().splitlines()
                 if json.loads(line)["method"] == "rpf")
    key = stale["key"].replace('"n_estimators": 3', '"n_estimators": 4')
    assert key != stale["key"]
    stale = {**stale, "key": key, "scores": [{**stale["scores"][0], "nll": 99.0}]}
    runs.write_text(runs.read_text() + json.dumps(stale) + "\n")
    pd.testing.assert_frame_equal(uci.main([*argv, "--resume"]), summary)
    assert "12 of 12 results reused" in (out / "results.md").read_text()


def test_ngboost_rows_through_the_peers_environment(tmp_path):
    python = peers.find_python()
    if not python.is_file():
        pytest.skip(f"no peers environment at {python} (made by `make peers`): NGBoost not tested")
    uci.main(["--datasets", "yacht", "--splits", "2", "--methods", "ngboost",
              "--ngboost-params", '{"n_estimators": 20}', "--out", str(tmp_path), "--no-progress"])
    raw = pd.read_csv(tmp_path / "results_raw.csv", keep_default_na=False)
    assert list(raw["method"]) == ["ngboost", "ngboost"] and (raw["error"] == "").all()
    assert np.isfinite(raw[["nll", "rmse", "coverage_95"]].to_numpy()).all()
    assert "ngboost 0.6.0" in (tmp_path / "results.md").read_text()


def test_a_missing_peers_environment_is_said_and_its_rows_left_out(tmp_path, capsys):
    uci.main(["--datasets", "yacht", "--splits", "1", "--methods", "bayesian_ridge", "ngboost",
              "--peers-python", str(tmp_path / "nowhere" / "python"), "--out", str(tmp_path),
              "--no-progress"])
    assert "NGBoost skipped: no peers environment at" in capsys.readouterr().err
    raw = pd.read_csv(tmp_path / "results_raw.csv")
    assert list(raw["method"]) == ["bayesian_ridge"]
    assert "NGBoost: skipped (no peers environment" in (tmp_path / "results.md").read_text()


def test_rpf_params_reach_both_rpf_methods_but_not_the_baseline_prior():
    params = {"n_estimators": 4, "prior_scale": 3.0}
    rpf = uci.make_estimator("rpf", 7, 6, params, {})[-1]
    bootstrap = uci.make_estimator("bootstrap", 7, 6, params, {})[-1]
    variant = uci.make_estimator("rpf:wide", 7, 6, params, {"wide": {"prior_scale": 5.0}})[-1]
    assert (rpf.n_estimators, rpf.prior_scale, rpf.random_state) == (4, 3.0, 7)
    assert (bootstrap.n_estimators, bootstrap.prior_scale) == (4, 0.0)
    assert (variant.n_estimators, variant.prior_scale) == (4, 5.0)


def test_bad_options_fail_early_with_a_clear_message(capsys, tmp_path):
    with pytest.raises(SystemExit):
        uci.parse_args(["--datasets", "boston"])
    assert "unknown data sets ['boston']" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not valid JSON"):
        uci.parse_args(["--rpf-params", "{loss: nll}"])
    with pytest.raises(SystemExit):
        uci.parse_args(["--rpf-params", '{"n_estimator": 3}'])
    assert "--rpf-params: RandomizedPriorRegressor.__init__() got an unexpected keyword argument " \
        "'n_estimator'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        uci.main(["--datasets", "yacht", "--data-dir", "/nonexistent", "--no-progress"])
    # A README without the markers is refused before the run, not after it.
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(ValueError, match="<!-- uci:start -->"):
        uci.parse_args(["--readme", str(readme)])


# ---------------------------------------------------------------------------- README blocks
def test_readme_block_replaces_only_what_lies_between_its_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(README + "\n<!-- shift:start -->\nother block\n<!-- shift:end -->\n")
    _readme.write_block(path, "uci", "new table")
    first = path.read_text()
    assert first == README.replace("an old, hand-edited table", "new table") + (
        "\n<!-- shift:start -->\nother block\n<!-- shift:end -->\n")
    _readme.write_block(path, "uci", "new table\n")  # idempotent
    assert path.read_text() == first
    _readme.write_block(path, "shift", "shift table")
    assert "shift table" in path.read_text() and "new table" in path.read_text()

    path.write_text(README + "<!-- uci:start -->\n")  # two start markers
    with pytest.raises(ValueError, match="found 2 start and 1 end"):
        _readme.write_block(path, "uci", "x")
    path.write_text("<!-- uci:end -->\n<!-- uci:start -->\n")  # the wrong way round
    with pytest.raises(ValueError, match="followed later"):
        _readme.check_block(path, "uci")
    with pytest.raises(FileNotFoundError, match="no such file"):
        _readme.check_block(tmp_path / "missing.md", "uci")


# ---------------------------------------------------------------------------- intervals
class _ShiftedInterval(RegressorMixin, BaseEstimator):
    """A stand-in with ``predict_interval``: mean of y, interval mean ± 1."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X, return_std=False):
        mean = np.full(len(X), self.mean_)
        return (mean, np.ones(len(X))) if return_std else mean

    def predict_interval(self, X, confidence=0.95, method="conformal"):
        assert (confidence, method) == (0.95, "conformal")
        return self.predict(X) - 1.0, self.predict(X) + 1.0


def test_conformal_interval_is_scored_where_the_estimator_has_one_and_skipped_where_not():
    X = np.arange(8.0)[:, None]
    y = np.array([0.0, 0.5, 2.0, -2.0, 0.2, 0.9, 3.0, 0.0])
    with_interval = make_pipeline(StandardScaler(), _ShiftedInterval()).fit(X, y)  # mean 0.45
    record = _intervals.conformal_interval(with_interval, X, y, fit_time=1.5)
    assert record["error"] == "" and record["fit_time"] == 1.5 and record["predict_time"] > 0
    assert record["coverage"] == pytest.approx(5 / 8) and record["width"] == pytest.approx(2.0)

    from sklearn.linear_model import LinearRegression

    without = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    record = _intervals.conformal_interval(without, X, y, fit_time=1.0)
    assert record["error"].startswith("skipped: LinearRegression has no predict_interval")
    assert np.isnan(record["coverage"])

    gaussian_time, conformal_time = _intervals.warm_predict_times(with_interval, X, rounds=3)
    assert gaussian_time > 0 and conformal_time > 0
    record = _intervals.conformal_interval(with_interval, X, y, 1.5, predict_time=conformal_time)
    assert record["predict_time"] == conformal_time
    from sklearn.linear_model import BayesianRidge

    no_interval = make_pipeline(StandardScaler(), BayesianRidge()).fit(X, y)
    assert np.isnan(_intervals.warm_predict_times(no_interval, X, rounds=2)[1])

    gaussian = _intervals.gaussian_interval(y, np.zeros(8), np.full(8, 1.0), 1.0, 0.1)
    assert gaussian["width"] == pytest.approx(2 * 1.959964, rel=1e-6)
    assert gaussian["coverage"] == pytest.approx(5 / 8)  # all but 2.0, -2.0 and 3.0


# ---------------------------------------------------------------------------- tuning script
def test_tuning_reads_training_rows_only_and_names_fixed_configurations():
    data_dir = default_data_dir()
    X_fit, y_fit, X_val, y_val = inner_split(data_dir, "yacht", 3)
    X, y = load_split(data_dir, "yacht", 3)[:2]
    assert len(y_fit) + len(y_val) == len(split_indices(data_dir, "yacht", 3, "train")) == len(y)
    train_rows = {tuple(row) for row in np.column_stack([X, y])}
    for part_X, part_y in ((X_fit, y_fit), (X_val, y_val)):
        assert {tuple(row) for row in np.column_stack([part_X, part_y])} <= train_rows
    np.testing.assert_array_equal(inner_split(data_dir, "yacht", 3)[3], y_val)  # seeded

    # A name means the same parameters whatever the package's defaults are today.
    assert tune_defaults.CONFIGS["search_base"] == {"prior_scale": 1.0, "lr": 1e-3, "max_epochs": 200,
                                                    "n_estimators": 10}
    assert tune_defaults.CONFIGS["shipped_base"]["n_estimators"] == 10  # the default of its day
    assert tune_defaults.CONFIGS["lr3e-3"]["max_epochs"] == 200
    assert tune_defaults.CONFIGS["k20"] == {"prior_scale": 0.3, "lr": 3e-3, "max_epochs": 300,
                                            "n_estimators": 20}
    assert tune_defaults.CONFIGS["base"] == {}
    # 221 rows in batches of 200: 2 steps per epoch, so 2000 steps are 1000 epochs.
    params = tune_defaults.regressor_params("steps2k_lr3e-3", 221)
    assert params["max_epochs"] == 1000 and "steps" not in params


def test_a_resumed_run_does_not_reuse_results_of_other_regressor_defaults(monkeypatch):
    # The cache key of an RPF result holds the regressor's defaults as installed, not only the
    # --rpf-params overrides: after a default changes, --resume must refit.
    from sklearn_rpf import RandomizedPriorRegressor

    settings = {"rpf_params": {"n_estimators": 3}, "rpf_variants": {}, "gp_max_rows": 60,
                "ngboost_params": {}, "mapie_resamplings": 5}
    methods = ("rpf", "bootstrap", "mapie", "gp", "ngboost", "bayesian_ridge")
    before = {m: uci.unit_key("yacht", 0, m, settings) for m in methods}
    defaults = RandomizedPriorRegressor.__init__.__kwdefaults__
    monkeypatch.setitem(defaults, "weight_decay", defaults["weight_decay"] * 2)
    after = {m: uci.unit_key("yacht", 0, m, settings) for m in methods}
    assert [m for m in methods if before[m] != after[m]] == ["rpf", "bootstrap", "mapie"]
    # An override of the changed parameter makes the default irrelevant again.
    pinned = {**settings, "rpf_params": {"n_estimators": 3, "weight_decay": 1e-4}}
    monkeypatch.setitem(defaults, "weight_decay", 1e-4)
    first = uci.unit_key("yacht", 0, "rpf", pinned)
    monkeypatch.setitem(defaults, "weight_decay", 5e-4)
    assert uci.unit_key("yacht", 0, "rpf", pinned) == first


def test_tuning_records_the_conformal_interval(tmp_path, monkeypatch, capsys):
    # Round 6 chose the member count with the conformal interval in view: each record carries
    # its coverage and width beside the Gaussian width, and the search prints them as a table.
    monkeypatch.setitem(tune_defaults.CONFIGS, "tiny", {"n_estimators": 3, "max_epochs": 5})
    out = tmp_path / "records.jsonl"
    shown = tune_defaults.main(["--configs", "tiny", "--datasets", "yacht", "--splits", "0",
                                "--out", str(out), "--n-jobs", "1"])
    (record,) = shown
    assert 0 <= record["conformal_coverage"] <= 1
    assert record["conformal_width"] > 0 and record["gaussian_width"] > 0
    assert record["conformal_width"] != record["gaussian_width"]
    printed = capsys.readouterr().out
    assert (f"| tiny | — | — | — | — | {record['conformal_coverage']:.3f} / "
            f"{record['conformal_width']:.3g} / {record['gaussian_width']:.3g} (n=1) |") in printed
