"""``python -m benchmarks.unshipped``: the data sets this project does not ship, written in the
layout of shared/uci from the packages that bundle them, and the UCI and shift benchmarks run on
them end to end (kept tiny)."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import shift, uci, unshipped
from benchmarks._uci_data import DATASETS, known_datasets, load_dataset, load_split, n_splits

TINY = json.dumps({"n_estimators": 3, "max_epochs": 5})
SHAPES = {"boston": (506, 13), "auto-mpg": (392, 7), "diabetes": (442, 10),
          "computers": (6259, 9)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unshipped")
    unshipped.write_all(folder)
    return folder


@pytest.mark.parametrize("name", list(unshipped.SOURCES))
def test_each_set_reads_back_as_its_source_gave_it(data_dir, name):
    X_source, y_source = unshipped.SOURCES[name]()
    assert X_source.shape == SHAPES[name] and y_source.shape == SHAPES[name][:1]
    X, y = load_dataset(str(data_dir), name)
    np.testing.assert_allclose(X, X_source, rtol=1e-9)
    np.testing.assert_allclose(y, y_source, rtol=1e-9)
    assert n_splits(data_dir, name) == unshipped.N_SPLITS


def test_known_rows_of_the_sources():
    X, y = unshipped.boston()
    assert y[0] == 24.0 and X[0, 0] == pytest.approx(0.00632)  # MASS::Boston, first row
    X, y = unshipped.auto_mpg()
    assert not np.isnan(X).any() and set(X[:, -1]) == {1.0, 2.0, 3.0}
    assert 1970 <= X[:, 5].min() and X[:, 5].max() <= 1982  # model years, not dates
    X, y = unshipped.computers()
    assert set(np.unique(X[:, 4:7])) == {0.0, 1.0}  # cd, multi, premium: yes/no coded 1/0
    X, y = unshipped.diabetes()
    assert X[:, 1].min() == 1.0 and X[:, 1].max() == 2.0  # raw sex codes, not scaled


@pytest.mark.parametrize("name", ["boston", "computers"])
def test_splits_are_disjoint_cover_every_row_and_never_change(data_dir, name):
    n = SHAPES[name][0]
    tests = []
    for split in range(unshipped.N_SPLITS):
        train = np.loadtxt(data_dir / name / f"index_train_{split}.txt", dtype=int)
        test = np.loadtxt(data_dir / name / f"index_test_{split}.txt", dtype=int)
        assert len(np.intersect1d(train, test)) == 0
        np.testing.assert_array_equal(np.union1d(train, test), np.arange(n))
        assert len(test) == round(0.1 * n)
        again = unshipped.split_rows(name, n, split)
        np.testing.assert_array_equal(again[1], test)
        tests.append(frozenset(test))
    assert len(set(tests)) == unshipped.N_SPLITS  # each split its own draw
    X_train, y_train, X_test, y_test = load_split(data_dir, name, 3)
    assert len(X_train) + len(X_test) == n


def test_the_benchmarks_accept_the_sets_found_in_their_data_dir(data_dir, capsys):
    assert known_datasets(data_dir)[:5] == list(DATASETS)
    assert set(unshipped.SOURCES) <= set(known_datasets(data_dir))
    args = uci.parse_args(["--data-dir", str(data_dir), "--datasets", "boston",
                           "--gp-splits", "3"])
    assert args.datasets == ["boston"] and args.gp_splits == {"boston": 3}
    for module in (uci, shift):
        with pytest.raises(SystemExit):
            module.parse_args(["--data-dir", str(data_dir), "--datasets", "bostn"])
        err = capsys.readouterr().err
        assert "unknown" in err and "['bostn']" in err and "'boston'" in err
    # A README without the second block is refused before the first benchmark runs.
    readme = data_dir / "README.md"
    readme.write_text(README.split("<!-- unshipped-shift")[0])
    with pytest.raises(ValueError, match="unshipped-shift"):
        unshipped.main(["--datasets", "diabetes", "--out", str(data_dir / "run"),
                        "--readme", str(readme)])
    assert not (data_dir / "run").exists()
    # A source package that is missing is named, with the way to get it.
    with pytest.raises(ModuleNotFoundError, match=r"no_such_pkg is not installed.*\[bench\]"):
        unshipped._package_file("no_such_pkg", "x")


README = """# Project

<!-- unshipped-uci:start -->
<!-- unshipped-uci:end -->

<!-- unshipped-shift:start -->
<!-- unshipped-shift:end -->
"""


def test_unshipped_benchmark_end_to_end_on_diabetes(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    results = unshipped.main([
        "--datasets", "diabetes", "--out", str(tmp_path / "out"), "--readme", str(readme),
        "--figures", str(tmp_path / "images"), "--no-progress",
        "--uci-args", f"--splits 2 --methods rpf bootstrap --rpf-params '{TINY}'",
        "--shift-args", f"--features 0 2 --methods rpf bootstrap --rpf-params '{TINY}'",
    ])
    out = tmp_path / "out"
    raw = pd.read_csv(out / "uci" / "results_raw.csv", keep_default_na=False)
    assert (raw["error"] == "").all() and set(raw["dataset"]) == {"diabetes"}
    assert sorted(zip(raw["method"], raw["split"], strict=True)) == [
        ("bootstrap", 0), ("bootstrap", 1), ("rpf", 0), ("rpf", 1)]
    assert np.isfinite(raw[["nll", "rmse", "coverage_95"]].to_numpy()).all()
    assert len(results["uci"]) == 2

    rows = pd.read_csv(out / "shift" / "shift_raw.csv", keep_default_na=False)
    assert (rows["error"] == "").all()
    assert sorted(set(zip(rows["kind"], rows["feature"], strict=True))) == [
        ("extrapolation", 0), ("extrapolation", 2), ("gap", 0), ("gap", 2)]
    assert np.isfinite(rows[["nll_ood", "auroc_epistemic"]].to_numpy(float)).all()

    text = readme.read_text()
    uci_block = text.split("<!-- unshipped-uci:start -->")[1].split("<!-- unshipped-uci:end -->")[0]
    shift_block = text.split("<!-- unshipped-shift:start -->")[1].split(
        "<!-- unshipped-shift:end -->")[0]
    assert "| diabetes | RPF (defaults) | 2 |" in uci_block
    assert "--readme-block unshipped-uci" in uci_block
    # No published figure exists for our splits of these sets: none is shown or compared.
    assert "published" not in uci_block and "Deep Ensembles" not in uci_block
    assert "diabetes" in shift_block and "OOD NLL: RPF better on" in shift_block
    for name in ("uci", "shift"):
        png = (tmp_path / "images" / f"unshipped_{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
