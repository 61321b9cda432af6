"""The out-of-distribution benchmark (``python -m benchmarks.shift``): its splits, its scores, the
GP's latent std, and a tiny end-to-end run on two features of yacht."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import _common, _shift_splits, peers, shift
from benchmarks._uci_data import default_data_dir, load_dataset

TINY = {"n_estimators": 3, "max_epochs": 20}
README = "# Title\n\nProse.\n\n<!-- shift:start -->\nold\n<!-- shift:end -->\n\nMore prose.\n"


def test_shift_benchmark_on_two_features_of_yacht(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    figure = tmp_path / "docs" / "images" / "shift.png"
    raw = shift.main([
        "--datasets", "yacht", "--features", "2", "--methods", "rpf", "bootstrap", "gp",
        "--gp-max-rows", "60", "--rpf-params", json.dumps(TINY), "--out", str(tmp_path / "out"),
        "--figure", str(figure), "--readme", str(readme), "--no-progress",
    ])
    out = tmp_path / "out"

    csv = pd.read_csv(out / "shift_raw.csv", keep_default_na=False)
    assert (csv["error"] == "").all(), csv.loc[csv["error"] != "", "error"].tolist()
    assert len(csv) == len(raw) == 2 * 2 * 3  # features x kinds x methods
    assert sorted(set(zip(csv["kind"], csv["feature"], strict=True))) == [
        ("extrapolation", 0), ("extrapolation", 1), ("gap", 0), ("gap", 1)]
    assert np.isfinite(csv[list(shift.METRICS)].to_numpy(dtype=float)).all()
    for column in ("coverage_ood", "coverage_id", "auroc_epistemic", "auroc_total"):
        assert csv[column].between(0, 1).all(), column
    n_rows = len(load_dataset(str(default_data_dir()), "yacht")[1])
    rpf = csv[csv["method"] != "gp"]
    assert (rpf["n_train"] + rpf["n_ood"] + rpf["n_id"] == n_rows).all()
    assert (csv.loc[csv["method"] == "gp", "n_train"] == 60).all()

    summary = pd.read_csv(out / "shift.csv")
    assert len(summary) == 2 * 3 and (summary["n_features"] == 2).all()
    markdown = (out / "shift.md").read_text()
    for text in ("RPF (defaults)", "Bootstrap ensemble", "GP (ARD)", "RPF better on",
                 "Issue 10, out of distribution", "not judged, only 1 set(s) run"):
        assert text in markdown, text
    assert figure.read_bytes().startswith(b"\x89PNG")

    text = readme.read_text()
    assert text.startswith("# Title\n\nProse.\n\n<!-- shift:start -->\n")
    assert text.endswith("<!-- shift:end -->\n\nMore prose.\n") and "\nold\n" not in text
    assert "python -m benchmarks.shift --datasets yacht" in text
    assert "](docs/images/shift.png)" in text and "<details><summary>Every split</summary>" in text

    # Resuming reruns nothing and gives the same numbers.
    again = shift.main(["--datasets", "yacht", "--features", "2", "--methods", "rpf", "bootstrap",
                        "gp", "--gp-max-rows", "60", "--rpf-params", json.dumps(TINY),
                        "--out", str(tmp_path / "out"), "--no-progress", "--resume",
                        "--readme", str(readme)])
    pd.testing.assert_frame_equal(again[list(shift.METRICS)], raw[list(shift.METRICS)])
    assert "12 of 12 results reused" in (out / "shift.md").read_text()
    # The README block says so next to its wall time, which is no longer the fits'.
    assert "; 12 of 12 results reused from an earlier run)." in readme.read_text()


def test_ngboost_in_the_shift_benchmark(tmp_path):
    if not peers.find_python().is_file():
        pytest.skip("no peers environment .venv-peers (made by `make peers`): NGBoost not tested")
    raw = shift.main(["--datasets", "yacht", "--features", "1", "--kinds", "gap",
                      "--methods", "ngboost", "--ngboost-params", '{"n_estimators": 20}',
                      "--out", str(tmp_path), "--no-progress"])
    assert list(raw["method"]) == ["ngboost"] and (raw["error"] == "").all()
    assert np.isnan(raw["auroc_epistemic"]).all()  # no epistemic part
    assert np.isfinite(raw[["nll_ood", "nll_id", "auroc_total"]].to_numpy()).all()
    assert "n/a (no epistemic part)" in (tmp_path / "shift.md").read_text()


# ---------------------------------------------------------------------------- splits
@pytest.mark.parametrize("kind", _shift_splits.KINDS)
def test_splits_never_cut_ties_and_hold_out_what_they_say(kind):
    X, _ = load_dataset(str(default_data_dir()), "yacht")  # a designed experiment: many ties
    for feature in range(X.shape[1]):
        split = _shift_splits.make_split(X, "yacht", kind, feature)
        if split.skipped:
            continue
        values = X[:, feature]
        inside = values[np.r_[split.train, split.id_test]]
        held_out = values[split.ood]
        assert not set(held_out) & set(inside)  # a tie group is on one side only
        if kind == "gap":
            assert inside.min() < held_out.min() and held_out.max() < inside.max()
        else:
            assert ((held_out < inside.min()) | (held_out > inside.max())).all()
        everything = np.sort(np.r_[split.train, split.ood, split.id_test])
        np.testing.assert_array_equal(everything, np.arange(len(X)))  # disjoint, complete
        assert len(split.id_test) == round(0.1 * (len(split.train) + len(split.id_test)))
        assert split.ood_share == pytest.approx(len(split.ood) / len(X))
        again = _shift_splits.make_split(X, "yacht", kind, feature)
        np.testing.assert_array_equal(again.id_test, split.id_test)  # seeded


def test_distinct_values_give_thirds_and_sixths_and_few_values_are_skipped():
    X = np.column_stack([np.arange(600.0)[::-1], np.repeat([0.0, 1.0], 300)])
    gap = _shift_splits.make_split(X, "toy", "gap", 0)
    np.testing.assert_array_equal(np.sort(X[gap.ood, 0]), np.arange(200.0, 400.0))
    extrapolation = _shift_splits.make_split(X, "toy", "extrapolation", 0)
    np.testing.assert_array_equal(np.sort(X[extrapolation.ood, 0]),
                                  np.r_[np.arange(100.0), np.arange(500.0, 600.0)])
    two_values = _shift_splits.make_split(X, "toy", "gap", 1)  # groups at q = 1/4 and 3/4
    assert two_values.skipped.startswith("OOD share 0.00 outside [0.1, 0.5] (2 distinct values)")
    assert len(two_values.train) == len(two_values.ood) == 0
    with pytest.raises(ValueError, match="Unknown kind 'middle'"):
        _shift_splits.make_split(X, "toy", "middle", 0)


# ---------------------------------------------------------------------------- scores
def test_shift_scores():
    from sklearn_rpf.metrics import gaussian_nll

    y_ood, y_id = np.array([1.0, -2.0]), np.array([0.0, 0.5, 0.1])
    mean, std = np.zeros(5), np.array([2.0, 3.0, 1.0, 1.0, 1.5])
    epistemic = np.array([0.1, 0.9, 0.2, 0.3, 0.4])  # one OOD row below every in-dist. row
    scores = shift.shift_scores(y_ood, y_id, mean, std, epistemic)
    assert scores["nll_ood"] == pytest.approx(gaussian_nll(y_ood, mean[:2], std[:2]))
    assert scores["nll_id"] == pytest.approx(gaussian_nll(y_id, mean[2:], std[2:]))
    assert scores["auroc_total"] == 1.0 and scores["auroc_epistemic"] == pytest.approx(3 / 6)
    assert scores["coverage_ood"] == 1.0 and scores["rmse_id"] == pytest.approx(np.sqrt(0.26 / 3))
    assert np.isnan(shift.shift_scores(y_ood, y_id, mean, std, None)["auroc_epistemic"])


def test_log_target_scores_are_log_normal_in_the_targets_units():
    from scipy.stats import lognorm

    y_ood, y_id = np.array([0.5, 4.0]), np.array([1.0, 2.0, 3.0])
    mean, std = np.array([0.1, 1.0, 0.0, 0.5, 1.2]), np.array([0.5, 1.0, 0.3, 0.2, 0.4])
    scores = shift.shift_scores(np.log(y_ood), np.log(y_id), mean, std, None, log_target=True)
    expected = -lognorm.logpdf(y_ood, std[:2], scale=np.exp(mean[:2])).mean()
    assert scores["nll_ood"] == pytest.approx(expected, rel=1e-12)
    expected = -lognorm.logpdf(y_id, std[2:], scale=np.exp(mean[2:])).mean()
    assert scores["nll_id"] == pytest.approx(expected, rel=1e-12)


def test_shift_benchmark_with_log_target(tmp_path, monkeypatch):
    argv = ["--datasets", "yacht", "--features", "1", "--kinds", "gap", "--methods", "rpf",
            "--rpf-params", json.dumps(TINY), "--no-progress"]
    plain = shift.main([*argv, "--out", str(tmp_path / "plain")])
    # Resumed in the same folder: the log fits are other results, never the plain ones reused.
    logged = shift.main([*argv, "--out", str(tmp_path / "plain"), "--log-target", "--resume"])
    assert np.isfinite(logged[list(shift.METRICS)].to_numpy(float)).all()
    assert logged["nll_ood"].item() != plain["nll_ood"].item()
    markdown = (tmp_path / "plain" / "shift.md").read_text()
    assert "fitted to log(y)" in markdown and "reused" not in markdown
    # A target with values <= 0 is refused before any fit.
    X, y = load_dataset(str(default_data_dir()), "yacht")
    monkeypatch.setattr(shift, "load_dataset", lambda *a: (X, y - 1.0))
    with pytest.raises(SystemExit, match="--log-target: yacht has targets <= 0"):
        shift.main([*argv, "--out", str(tmp_path / "bad"), "--log-target"])


def test_gp_latent_std_is_the_predictive_std_without_the_fitted_noise():
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(40, 2))
    y = 3 * np.sin(X[:, 0]) + X[:, 1] + 0.3 * rng.normal(size=40) + 10
    pipeline = _common.make_gp(2, seed=0).fit(X, y)
    X_new = rng.uniform(-4, 4, size=(15, 2))
    latent = _common.gp_latent_std(pipeline, y, X_new)

    # The same from scikit-learn itself: the noise-free part of the fitted kernel, refitted with
    # the fitted noise as a fixed nugget on the training rows only.
    kernel = pipeline[-1].kernel_
    noise = kernel.k2.noise_level
    refit = GaussianProcessRegressor(kernel.k1, alpha=1e-10 + noise, optimizer=None, normalize_y=True)
    refit.fit(pipeline[0].transform(X), y)
    _, expected = refit.predict(pipeline[0].transform(X_new), return_std=True)
    np.testing.assert_allclose(latent, expected, rtol=1e-5)
    _, total = pipeline.predict(X_new, return_std=True)
    np.testing.assert_allclose(total**2, latent**2 + noise * np.var(y), rtol=1e-8)
    assert (latent < total).all()


def test_bad_shift_options_fail_early(capsys, tmp_path):
    with pytest.raises(SystemExit):
        shift.parse_args(["--kinds", "middle"])
    assert "unknown kinds ['middle']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        shift.parse_args(["--features", "two"])
    assert "expected a positive count or feature indices" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        shift.parse_args(["--features", "0"])
    assert "--features 0: expected a positive count" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"--features \[9\]: yacht has features 0 to 5"):
        shift.main(["--datasets", "yacht", "--features", "1", "9", "--no-progress",
                    "--out", str(tmp_path)])
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="<!-- shift:start -->"):
        shift.parse_args(["--readme", str(readme)])


@pytest.mark.parametrize("module", ["shift", "uci"])
@pytest.mark.parametrize(("params", "message"), [
    ('{"n_estimators": -1}', "'n_estimators' parameter of RandomizedPriorRegressor must be an int"),
    ('{"n_estimator": 3}', "unexpected keyword argument 'n_estimator'"),
    ('{"prior": "fourier:x"}', "the number after 'fourier:' must be positive and finite"),
    ('{"prior": "evidence:0.3", "lr": "fast"}', "'lr' parameter of RandomizedPriorRegressor"),
])
def test_bad_rpf_params_fail_before_any_fit(module, params, message, capsys):
    from benchmarks import uci

    parse_args = {"shift": shift, "uci": uci}[module].parse_args
    with pytest.raises(SystemExit):
        parse_args(["--datasets", "yacht", "--rpf-params", params])
    err = capsys.readouterr().err
    assert "--rpf-params: " in err and message in err


def test_a_resumed_run_does_not_reuse_results_of_other_regressor_defaults(monkeypatch):
    from sklearn_rpf import RandomizedPriorRegressor

    settings = {"rpf_params": {"n_estimators": 3}, "gp_max_rows": 60, "ngboost_params": {}}
    methods = ("rpf", "bootstrap", "gp", "ngboost")
    before = {m: shift.unit_key("yacht", "gap", 1, m, settings) for m in methods}
    defaults = RandomizedPriorRegressor.__init__.__kwdefaults__
    monkeypatch.setitem(defaults, "lr", defaults["lr"] / 2)
    after = {m: shift.unit_key("yacht", "gap", 1, m, settings) for m in methods}
    assert [m for m in methods if before[m] != after[m]] == ["rpf", "bootstrap"]
