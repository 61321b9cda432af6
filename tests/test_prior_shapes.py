"""The benchmarks' alternative prior shapes (``benchmarks/_prior_shapes.py``) used by the
prior-shape study of issue 10 (a random-Fourier-feature draw from an RBF Gaussian process, and
one from an ARD GP fitted to the data), and the study itself on two features of yacht."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks._common import make_rpf
from benchmarks._prior_shapes import EvidencePriorRegressor, RandomFourierPrior, resolve


def test_fourier_prior_is_stationary_with_unit_variance_and_its_length_scale():
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        priors = [RandomFourierPrior(2, 1, length_scale=1.0, n_components=512) for _ in range(200)]
    x = torch.randn(300, 2, generator=generator)
    far = x + 20.0  # far from the origin: a ReLU MLP grows there, a stationary prior does not
    near_out = torch.stack([p(x) for p in priors]).squeeze(-1)
    far_out = torch.stack([p(far) for p in priors]).squeeze(-1)
    assert near_out.var().item() == pytest.approx(1.0, abs=0.15)
    assert far_out.var().item() == pytest.approx(1.0, abs=0.15)
    # The covariance of two points at distance r is exp(-r**2 / 2) for length scale 1.
    r = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    pairs = torch.stack([p(r).squeeze(-1) for p in priors])
    assert np.corrcoef(pairs.T.numpy())[0, 1] == pytest.approx(np.exp(-0.5), abs=0.15)


def test_resolve_names_the_shape_and_leaves_other_priors_alone():
    factory = resolve("fourier:2.5")
    prior = factory(3, 2)
    assert isinstance(prior, RandomFourierPrior) and prior(torch.zeros(4, 3)).shape == (4, 2)
    assert prior.frequencies.std().item() == pytest.approx(1 / 2.5, rel=0.2)
    assert resolve(None) is None and resolve(torch.sin) is torch.sin
    with pytest.raises(ValueError, match="Unknown prior shape 'gauss:1'"):
        resolve("gauss:1")
    for bad in ("fourier:", "fourier:abc", "fourier:0", "fourier:-1", "fourier:nan",
                "evidence:inf"):
        with pytest.raises(ValueError, match="must be positive and finite"):
            make_rpf(0, {"prior": bad})


def test_make_rpf_with_a_named_shape_fits_reproducibly():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=60)
    params = {"prior": "fourier:1", "n_estimators": 3, "max_epochs": 5}
    first = make_rpf(1, params).fit(X, y).predict(X, return_std=True)
    second = make_rpf(1, params).fit(X, y).predict(X, return_std=True)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert params["prior"] == "fourier:1"  # the caller's settings are not rewritten
    members = make_rpf(1, params).fit(X, y)[-1]
    assert np.all(np.isfinite(first[1])) and first[1].min() > 0
    assert members.get_params()["prior"].func is RandomFourierPrior
    # Each member draws its own prior (from its own seeded stream), not one shared function.
    priors = members.predict_priors(X)
    assert priors.shape == (3, 60)
    assert np.corrcoef(priors).max(where=~np.eye(3, dtype=bool), initial=-1) < 0.99


def test_evidence_prior_fits_length_scales_that_ignore_an_irrelevant_feature():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    y = np.sin(2 * X[:, 0]) + 0.05 * rng.normal(size=120)  # feature 1 is noise
    model = make_rpf(3, {"prior": "evidence:0.5", "n_estimators": 3, "max_epochs": 5}).fit(X, y)
    evidence = model[-1]
    assert isinstance(evidence, EvidencePriorRegressor)
    assert evidence.length_scale_[1] > 10 * evidence.length_scale_[0]
    assert evidence.regressor_.prior_scale == pytest.approx(0.5 * evidence.amplitude_)
    mean, std = model.predict(X[:5], return_std=True)
    again = make_rpf(3, {"prior": "evidence:0.5", "n_estimators": 3, "max_epochs": 5}).fit(X, y)
    np.testing.assert_array_equal(again.predict(X[:5], return_std=True)[1], std)
    # The bootstrap ensemble of the same settings has no prior at all.
    assert make_rpf(3, {"prior": "evidence:0.5"}, prior=False)[-1].prior_scale == 0.0


def test_prior_study_on_two_features_of_yacht(tmp_path):
    from benchmarks import prior_study

    readme = tmp_path / "README.md"
    readme.write_text("Intro.\n<!-- prior-study:start -->\nold\n<!-- prior-study:end -->\nEnd.\n")
    tables = prior_study.main([
        "--datasets", "yacht", "--features", "0", "5", "--configs", "mlp-0.3", "evidence-0.3",
        "--spread-features", "2",
        "--rpf-params", json.dumps({"n_estimators": 3, "max_epochs": 5}),
        "--out", str(tmp_path / "out"), "--readme", str(readme), "--no-progress",
    ])
    raw = pd.read_csv(tmp_path / "out" / "prior_study_raw.csv")
    assert sorted(raw["config"].unique()) == ["bootstrap", "evidence-0.3", "mlp-0.3"]
    assert len(raw) == 3 * 2 * 2  # configurations x features x kinds
    for column in prior_study.MEASURES:
        assert tables[column].shape == (2, 1) and np.isfinite(tables[column].to_numpy()).all()
    # The gain is the mean over splits of bootstrap minus configuration, by hand.
    by_split = raw.set_index(["config", "kind", "feature"]).sort_index()
    for column, sign in (("nll_ood", -1), ("nll_id", -1), ("auroc_epistemic", 1)):
        for config in ("mlp-0.3", "evidence-0.3"):
            diff = by_split.loc[config, column] - by_split.loc["bootstrap", column]
            assert tables[column].loc[config, "yacht"] == pytest.approx(sign * diff.mean())
    spread = pd.read_csv(tmp_path / "out" / "prior_spread_raw.csv")
    assert sorted(set(zip(spread["feature"], spread["scale"], strict=True))) == [
        (f, s) for f in (0, 1) for s in (0.0, 0.3, 1.0)]
    assert (spread[["train", "in-dist", "held-out", "noise"]] > 0).all().all()
    text = readme.read_text()
    assert "| yacht | 0.3 |" in text and "Where the in-distribution cost comes from" in text
    assert (spread["amplitude"] > 0).all() and spread["flat"].between(0, 6).all()
    assert "The evidence prior's fitted kernel" in text and " of 6 |" in text
    assert text.startswith("Intro.\n<!-- prior-study:start -->\nCommand: `python -m "
                           "benchmarks.prior_study --datasets yacht")
    assert "ARD-GP draw fitted to the data" in text and "| better on |" in text
    assert text.endswith("<!-- prior-study:end -->\nEnd.\n") and "old" not in text
    better = [line for line in text.splitlines() if line.startswith("| MLP prior, scale 0.3")]
    assert [line.endswith(f"| {int(tables[c].loc['mlp-0.3', 'yacht'] > 0)} of 1 |")
            for line, c in zip(better, prior_study.MEASURES, strict=True)] == [True] * 3


def test_prior_study_splits_some_configuration_failed_on_are_left_out():
    from benchmarks import prior_study

    rows = [{"config": config, "dataset": "yacht", "kind": "gap", "feature": feature,
             "nll_ood": 1.0, "nll_id": 0.5, "auroc_epistemic": 0.7}
            for config in ("bootstrap", "mlp-0.3") for feature in (0, 1, 2)]
    rows[4]["nll_ood"] = np.nan  # mlp-0.3 failed on feature 1
    kept, dropped = prior_study.common_splits(pd.DataFrame(rows))
    assert dropped == 1 and sorted(set(kept["feature"])) == [0, 2] and len(kept) == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["--rpf-params", "[1]"], "--rpf-params must be a JSON object"),
    (["--rpf-params", '{"prior_scale": 1}'], "may not set ['prior_scale']"),
    (["--rpf-params", '{"prior": "evidence:1"}'], "may not set ['prior']"),
    (["--spread-features", "-1"], "--spread-features must be 0 or more"),
])
def test_prior_study_rejects_bad_options_before_any_fit(argv, message, capsys):
    from benchmarks import prior_study

    with pytest.raises(SystemExit):
        prior_study.parse_args(argv)
    assert message in capsys.readouterr().err


def test_evidence_prior_sets_its_own_scale():
    with pytest.raises(ValueError, match="sets prior_scale itself"):
        make_rpf(0, {"prior": "evidence:0.3", "prior_scale": 1.0})
