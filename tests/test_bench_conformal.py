"""The conformal-cost benchmark (``python -m benchmarks.bench_conformal``) on one yacht split,
kept tiny: every variant timed, their ends compared, the table written."""

import numpy as np
import pytest

from benchmarks import bench_conformal
from benchmarks._uci_data import default_data_dir
from sklearn_rpf.ensemble import _jackknife_search

TINY = {"n_estimators": 4, "max_epochs": 5}


def test_every_variant_is_timed_and_exact():
    record = bench_conformal.measure(default_data_dir(), "yacht", 0, rounds=2,
                                     head_factors=[1.1, 2.0], params=TINY)
    labels = ["predict", "shipped", "one pass", "pruned, head 1.1", "pruned, head 2"]
    assert all(np.isfinite(record[label]) and record[label] > 0 for label in labels)
    assert record["rows"] * record["test"] > 0 and record["difference"] <= 1e-6
    # One pass forms every row's out-of-bag mean once at each test point, for both ends.
    if record["one pass shipped"]:
        assert record["values per point"] == record["rows"]
    assert record["one pass shipped"] is (record["rows"] * record["test"]
                                          <= _jackknife_search._SMALL_SEARCH)
    # The least work's rows are a subset of what any exact search forms: at most every row, twice.
    assert 0 <= record["undecided per point"] <= 2 * record["rows"]
    assert np.isfinite(record["least work"]) and record["least work"] > 0
    table = bench_conformal.report([record, {**record, "split": 1}], [1.1, 2.0])
    size = f"{record['rows']:,} x {record['test']:,}"  # rows out of bag for some member
    shipped = "one pass" if record["one pass shipped"] else "pruned"
    assert f"| yacht | 2 | {size} | {shipped} |" in table
    assert "pruned, head 1.1 (ms)" in table and "Largest difference" in table
    assert "least work: form + select (ms)" in table
    # The search's constants are restored after each variant.
    assert (_jackknife_search._SMALL_SEARCH, _jackknife_search._HEAD_FACTOR) == (25_000, 1.5)


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--splits", "20"],
                                  ["--head-factors", "0.5"], ["--datasets", "boston"]])
def test_bad_options_fail_early(argv, capsys):
    with pytest.raises(SystemExit):
        bench_conformal.main(argv)
    assert "error" in capsys.readouterr().err


def test_undecided_rows_are_those_whose_count_bounds_straddle_the_end():
    """Three rows, two members: a row left out by both lies at the members' mean, one left out
    by a single member anywhere between the two outputs."""
    rows = _jackknife_search.Rows(residual=np.array([0.0, 1.0, 5.0]),
                                  average=np.array([[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]]),
                                  weight=None)
    members = np.array([[0.0, 2.0], [2.0, 2.0]])  # two test points; the members agree at the second
    # First point, rows at 1 (exactly), 1 + [0, 2] and 5 + [0, 2]; second: 2, 3 and 7.
    straddling, above = bench_conformal.undecided(members, rows, np.array([2.5, 3.0]))
    assert straddling.tolist() == [1, 1]  # row 1 at the first point; row 1 (exactly 3) at the second
    assert above.tolist() == [1, 1]  # row 2 at both points
