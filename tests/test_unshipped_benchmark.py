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
    # The first rows as the sources print them: the target is the column the set is known by.
    X, y = unshipped.boston()
    assert y[:2].tolist() == [24.0, 21.6] and X[0, 0] == pytest.approx(0.00632)  # medv, crim
    X, y = unshipped.auto_mpg()
    assert y[:2].tolist() == [18.0, 15.0] and X[0, :4].tolist() == [8, 307, 130, 3504]
    assert not np.isnan(X).any() and set(X[:, -1]) == {1.0, 2.0, 3.0}
    assert 1970 <= X[:, 5].min() and X[:, 5].max() <= 1982  # model years, not dates
    X, y = unshipped.computers()
    assert y[:2].tolist() == [1499, 1795] and X[0, :3].tolist() == [25, 80, 4]  # price; speed..
    assert set(np.unique(X[:, 4:7])) == {0.0, 1.0}  # cd, multi, premium: yes/no coded 1/0
    X, y = unshipped.diabetes()
    assert y[:2].tolist() == [151.0, 75.0]
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
        tests.append(frozenset(test))
    assert len(set(tests)) == unshipped.N_SPLITS  # each split its own draw
    # The same rows on every machine and run: pinned, so a change of the seeding shows.
    first = {"boston": (0, [19, 21, 33, 80, 83, 86]), "computers": (7, [3, 8, 13, 18])}[name]
    test = np.loadtxt(data_dir / name / f"index_test_{first[0]}.txt", dtype=int)
    assert test[:len(first[1])].tolist() == first[1]
    X_train, y_train, X_test, y_test = load_split(data_dir, name, 3)
    assert len(X_train) + len(X_test) == n


def test_the_benchmarks_accept_the_sets_found_in_their_data_dir(data_dir, capsys):
    assert known_datasets(data_dir) == [*DATASETS, "auto-mpg", "boston", "computers", "diabetes"]
    assert known_datasets(data_dir / "nowhere") == list(DATASETS)
    args = uci.parse_args(["--data-dir", str(data_dir), "--datasets", "boston",
                           "--gp-splits", "3"])
    assert args.datasets == ["boston"] and args.gp_splits == {"boston": 3}
    # Limits on sets that do not run are dropped (no report mentions them); a misspelt one fails.
    args = shift.parse_args(["--data-dir", str(data_dir), "--datasets", "diabetes",
                             "--gp-features", "computers=3,diabetes=2"])
    assert args.gp_features == {"diabetes": 2}
    with pytest.raises(SystemExit, match="--gp-splits: unknown data set 'bostn'"):
        uci.parse_args(["--data-dir", str(data_dir), "--datasets", "boston",
                        "--gp-splits", "bostn=3"])
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
    # A bad option for the second benchmark fails before the first one runs.
    ran = []
    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as patch:
        patch.setattr(uci, "main", lambda argv: ran.append(argv))
        with pytest.raises(SystemExit):
            unshipped.main(["--datasets", "diabetes", "--out", str(data_dir / "run2"),
                            "--shift-args", "--kinds middle"])
    assert ran == [] and "['middle']" in capsys.readouterr().err
    # What the command sets itself cannot be overridden, and a broken string is named.
    for extra, message in (("--readme-block uci", "--readme-block are set by this command"),
                           ("--figure=x.png", "--figure are set by this command"),
                           ("--features '0", "--shift-args: No closing quotation")):
        option = "--shift-args" if "features" in extra else "--uci-args"
        with pytest.raises(SystemExit):
            unshipped.parse_args([f"{option}={extra}"])
        assert message in capsys.readouterr().err
    args = unshipped.parse_args(["--datasets", "diabetes", "diabetes", "--benchmarks", "uci",
                                 "uci"])
    assert args.datasets == ["diabetes"] and args.benchmarks == ["uci"]
    # A run on some of the sets passes no GP or MAPIE limit for the others.
    argv = unshipped.benchmark_argv(args, "uci", data_dir)
    assert argv[argv.index("--gp-splits") + 1] == "diabetes=20"
    assert "computers" not in " ".join(argv)
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


def test_bad_out_and_n_jobs_are_refused_before_anything_runs(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for argv, message in ((["--out", str(a_file), "--data-only"], "a file, not a folder"),
                          (["--n-jobs", "0"], "--n-jobs 0 has no meaning")):
        with pytest.raises(SystemExit):
            unshipped.parse_args(argv)
        assert message in capsys.readouterr().err
    for module in (uci, shift):
        with pytest.raises(SystemExit):
            module.parse_args(["--n-jobs", "0"])
        assert "--n-jobs 0 has no meaning" in capsys.readouterr().err
