"""``examples/plot_log_target.py`` on one split: the log-normal NLL and the intervals mapped back
through exp are what the README's recipe says."""

import importlib.util
from pathlib import Path

import numpy as np
from scipy.stats import lognorm

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plot_log_target.py"


def _example():
    # As when run as a script: the examples' folder on sys.path (it imports plot_intervals).
    import sys

    if str(EXAMPLE.parent) not in sys.path:
        sys.path.insert(0, str(EXAMPLE.parent))
    spec = importlib.util.spec_from_file_location("plot_log_target", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_log_target_example_on_one_split(tmp_path, capsys):
    example = _example()
    results = example.main(["--splits", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "fitted to   test NLL  coverage  mean width" in out
    assert (tmp_path / "log_target.png").read_bytes().startswith(b"\x89PNG")
    plain, logged = results["y"][0], results["log(y)"][0]
    for r in (plain, logged):
        assert np.isfinite(r["nll"]) and 0.0 <= r["coverage"] <= 1.0
        assert (r["lower"] < r["upper"]).all()
    assert (logged["lower"] > 0).all()  # exp of the log-scale bounds
    # Fitted to y, the absolute-score interval has one width; fitted to log(y), a relative one.
    assert np.ptp(plain["upper"] - plain["lower"]) < 0.5 * np.ptp(logged["upper"] - logged["lower"])


def test_log_normal_nll_of_the_example():
    example = _example()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.exp(X[:, 0] + 0.1 * rng.normal(size=60))
    r = example.fit_and_score(X[:50], y[:50], X[50:], y[50:], log=True, seed=0)
    from sklearn_rpf import RandomizedPriorRegressor

    reg = RandomizedPriorRegressor(random_state=0).fit(X[:50], np.log(y[:50]))
    mean, std = reg.predict(X[50:], return_std=True)
    expected = -lognorm.logpdf(y[50:], std, scale=np.exp(mean)).mean()
    np.testing.assert_allclose(r["nll"], expected, rtol=1e-9)


def test_a_split_count_outside_the_published_ones_is_a_clear_error(tmp_path, capsys):
    # --splits 0 once failed on an empty list after the fits, 25 on a missing index file.
    import pytest

    example = _example()
    for count in ("0", "25"):
        with pytest.raises(SystemExit):
            example.main(["--splits", count, "--out", str(tmp_path)])
        assert "--splits must be between 1 and 20" in capsys.readouterr().err
