"""``python -m benchmarks.prior_cost``: the prior's in-distribution cost by thirds of the target."""

import numpy as np
import pytest

from benchmarks import prior_cost
from benchmarks._common import make_rpf
from benchmarks._uci_data import default_data_dir, inner_split
from sklearn_rpf.metrics import gaussian_nll

TINY = {"n_estimators": 3, "max_epochs": 5}


def test_thirds_split_the_rows_and_the_cost_is_the_difference():
    rng = np.random.default_rng(0)
    y = rng.exponential(size=300)
    scores = {name: {"nll": rng.normal(size=300) + shift, "std": rng.uniform(1, 2, 300),
                     "error": rng.uniform(0, 1, 300)} for name, shift in (("rpf", 1.0),
                                                                          ("bootstrap", 0.0))}
    rows = prior_cost.by_thirds(y, scores)
    assert [r["n"] for r in rows] == [100, 100, 100]
    low = y <= rows[0]["high"]
    assert rows[0]["nll_rpf"] == pytest.approx(scores["rpf"]["nll"][low].mean(), rel=1e-12)
    for r in rows:
        assert r["nll_cost"] == r["nll_rpf"] - r["nll_bootstrap"]
    # Tied targets (wine's integer scores) still give three equal parts, none empty.
    tied = np.repeat([5.0, 6.0], [40, 260])
    assert [r["n"] for r in prior_cost.by_thirds(tied, scores)] == [100, 100, 100]
    text = prior_cost.table("toy", rows, y)
    assert text.count("\n| ") == 4 and "+" in text.splitlines()[-1]


def test_row_scores_on_validation_rows_of_a_training_split():
    data_dir = str(default_data_dir())
    y, scores = prior_cost.row_scores(data_dir, "yacht", 0, TINY)
    # The validation part of the inner split, never a test split.
    np.testing.assert_array_equal(y, inner_split(data_dir, "yacht", 0, seed=0)[3])
    for s in scores.values():
        assert all(np.isfinite(v).all() and v.shape == y.shape for v in s.values())
        assert (s["std"] > 0).all()
    # With and without the prior: two different ensembles.
    assert not np.allclose(scores["rpf"]["std"], scores["bootstrap"]["std"])


def test_log_target_scores_the_log_normal_density_in_the_targets_units():
    data_dir = str(default_data_dir())
    y, scores = prior_cost.row_scores(data_dir, "yacht", 1, TINY, log_target=True)
    X_tr, y_tr, X_va, _ = inner_split(data_dir, "yacht", 1, seed=0)
    model = make_rpf(1, TINY, prior=True).fit(X_tr, np.log(y_tr))
    mean, std = model.predict(X_va, return_std=True)
    # Row by row, the log-normal density of y, and its mean the NLL of log(y) plus log(y).
    from scipy.stats import lognorm

    np.testing.assert_allclose(scores["rpf"]["nll"], -lognorm.logpdf(y, std, scale=np.exp(mean)),
                               rtol=1e-9, atol=1e-12)
    expected = gaussian_nll(np.log(y), mean, std) + np.log(y).mean()
    np.testing.assert_allclose(scores["rpf"]["nll"].mean(), expected, rtol=1e-10)
    np.testing.assert_allclose(scores["rpf"]["error"], np.abs(np.log(y) - mean))


def test_log_target_refuses_targets_that_are_not_positive(monkeypatch):
    X = np.ones((4, 1))
    for y_train, y_valid in ((np.array([1.0, 0.0, 2.0, 3.0]), np.ones(4)),
                             (np.ones(4), np.array([1.0, 2.0, -1.0, 3.0]))):
        monkeypatch.setattr(prior_cost, "inner_split",
                            lambda *a, y_train=y_train, y_valid=y_valid, **k: (X, y_train, X, y_valid))
        with pytest.raises(ValueError, match="targets <= 0"):
            prior_cost.row_scores("unused", "yacht", 0, TINY, log_target=True)


def test_main_pools_the_splits_and_checks_them(monkeypatch, capsys):
    calls = []

    def fake(data_dir, dataset, split, rpf_params=None, log_target=False):
        calls.append(split)
        y = np.arange(6.0) + 10 * split
        nll = {"rpf": np.full(6, 1.0 + split), "bootstrap": np.zeros(6)}
        return y, {name: {"nll": v, "std": np.ones(6), "error": np.ones(6)}
                   for name, v in nll.items()}

    monkeypatch.setattr(prior_cost, "row_scores", fake)
    rows = prior_cost.main(["--dataset", "yacht", "--splits", "2", "0", "2"])
    assert calls == [0, 2]  # each split once, in order
    assert [r["n"] for r in rows] == [4, 4, 4]
    out = capsys.readouterr().out
    assert "mean NLL RPF 2.000, bootstrap 0.000; RPF minus bootstrap +2.000 nats" in out
    with pytest.raises(SystemExit):
        prior_cost.main(["--dataset", "yacht", "--splits", "0", "20"])
    assert "--splits [20]: yacht has splits 0 to 19" in capsys.readouterr().err
